"""Microsoft.MarketplaceOrdering handlers (azure-mgmt-marketplaceordering ``marketplace_agreements``)."""

from __future__ import annotations

from armsim.http import ArmRequest, ArmResponse, ok
from armsim.marketplaceordering import exceptions as mx
from armsim.marketplaceordering.models import MarketplaceState
from armsim.state import World


def _state(world: World, subscription: str) -> MarketplaceState:
    return world.sub(subscription).marketplace


def _offer_type(offer_type: str) -> None:
    if offer_type.lower() != "virtualmachine":
        raise mx.unsupported_offer_type(offer_type)


def get(world: World, req: ArmRequest, subscriptionId: str, offerType: str, publisherId: str, offerId: str,
        planId: str) -> ArmResponse:
    _offer_type(offerType)
    return ok(_state(world, subscriptionId).agreement(publisherId, offerId, planId).to_dict(
        world.sub(subscriptionId).id))


def create(world: World, req: ArmRequest, subscriptionId: str, offerType: str, publisherId: str, offerId: str,
           planId: str) -> ArmResponse:
    """Accept (``accepted: true``) or revoke the terms; the signature must be the one a GET returned."""
    _offer_type(offerType)
    state = _state(world, subscriptionId)
    sub_id = world.sub(subscriptionId).id
    props = req.json().get("properties") or {}
    current = state.agreement(publisherId, offerId, planId)
    if str(props.get("signature") or "") != current.signature(sub_id):
        raise mx.signature_mismatch()
    return ok(state.set_accepted(publisherId, offerId, planId, bool(props.get("accepted"))).to_dict(sub_id))


def get_agreement(world: World, req: ArmRequest, subscriptionId: str, publisherId: str, offerId: str,
                  planId: str) -> ArmResponse:
    return ok(_state(world, subscriptionId).agreement(publisherId, offerId, planId).legacy_dict(
        world.sub(subscriptionId).id))


def _sign_or_cancel(accepted: bool):  # type: ignore[no-untyped-def]
    def handler(world: World, req: ArmRequest, subscriptionId: str, publisherId: str, offerId: str,
                planId: str) -> ArmResponse:
        agreement = _state(world, subscriptionId).set_accepted(publisherId, offerId, planId, accepted)
        return ok(agreement.legacy_dict(world.sub(subscriptionId).id))

    return handler


sign = _sign_or_cancel(True)
cancel = _sign_or_cancel(False)


def list_agreements(world: World, req: ArmRequest, subscriptionId: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    sub_id = world.sub(subscriptionId).id
    return ok({"value": [a.legacy_dict(sub_id) for _, a in sorted(state.agreements.items()) if a.accepted]})
