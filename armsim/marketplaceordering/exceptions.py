"""Microsoft.MarketplaceOrdering errors. The REST spec's readme documents 400 for a signature that does not match the
terms and 404 for a publisher/offer/plan that is not a virtual machine offer; the codes and wording are from memory,
not verified."""

from __future__ import annotations

from armsim.errors import ArmError, BadRequest, NotFound


def offer_not_found(publisher: str, offer: str, plan: str) -> ArmError:
    return NotFound(f"Offer with PublisherId: '{publisher}', OfferId: '{offer}', PlanId: '{plan}' not found.",
                    code="ResourceNotFound")


def unsupported_offer_type(offer_type: str) -> ArmError:
    return BadRequest(f"The offer type '{offer_type}' is not supported. Supported offer types: virtualmachine.",
                      code="BadRequest")


def signature_mismatch() -> ArmError:
    return BadRequest("Signature doesn't match, please retrieve terms again and request acceptance.",
                      code="BadRequest")
