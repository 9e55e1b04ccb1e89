"""Marketplace agreements: one per subscription and publisher/offer/plan, not accepted until someone accepts it
(``PUT …/agreements/current`` with ``accepted: true`` and the signature a GET returned, or ``POST …/sign``).

The terms of a plan exist for every plan the image catalog sells (armsim.compute.vmimages); a GET of a plan never
accepted answers the terms with ``accepted: false`` without storing anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from armsim.compute import vmimages
from armsim.marketplaceordering import exceptions as mx
from armsim.state import Collections

if TYPE_CHECKING:
    from armsim.state import Subscription


@dataclass
class Agreement:
    publisher: str
    offer: str
    plan: str
    accepted: bool = False
    retrieve_datetime: str = ""

    def signature(self, subscription: str) -> str:
        basis = f"{subscription}/{self.publisher}/{self.offer}/{self.plan}".lower()
        return hashlib.sha256(basis.encode()).hexdigest()[:40].upper()

    def legacy_dict(self, subscription: str) -> dict[str, Any]:
        """The older agreements API's shape (sign, cancel, get_agreement, list; SignMarketplaceTerms.json)."""
        rid = (f"/subscriptions/{subscription}/providers/Microsoft.MarketplaceOrdering/agreements/{self.publisher}"
               f"/offers/{self.offer}/plans/{self.plan}")
        props: dict[str, Any] = {"id": rid, "publisher": self.publisher, "offer": self.offer,
                                 "state": "Active" if self.accepted else "Canceled"}
        props["signDate" if self.accepted else "cancelDate"] = self.retrieve_datetime
        return {"id": rid, "name": self.plan, "type": "Microsoft.MarketplaceOrdering/agreements", "properties": props}

    def to_dict(self, subscription: str) -> dict[str, Any]:
        rid = (f"/subscriptions/{subscription}/providers/Microsoft.MarketplaceOrdering/offerTypes/VirtualMachine/"
               f"publishers/{self.publisher}/offers/{self.offer}/plans/{self.plan}/agreements/current")
        links = f"https://mpcprodsa.blob.core.windows.net/legalterms/3E5ED_legalterms_{self.publisher.upper()}"
        return {
            "id": rid, "name": self.plan, "type": "Microsoft.MarketplaceOrdering/offertypes",
            "properties": {
                "publisher": self.publisher, "product": self.offer, "plan": self.plan,
                "licenseTextLink": f"{links}%253a24{self.offer.upper()}%253a24{self.plan.upper()}.txt",
                "privacyPolicyLink": f"https://www.{self.publisher.lower()}.example/privacy",
                "marketplaceTermsLink": "https://mpcprodsa.blob.core.windows.net/marketplaceterms/3EDEF_marketplaceterms_"
                                        "VIRTUALMACHINE%253a24AAK2OAIZEAWW5H4MSP5KSTVB6NDKKRTUBAU23BRFTWN4YC2MQLJUB5ZE"
                                        "YUOUJBVF3YK34CIVPZL2HWYASPGDUY5O2FWEGRBYOXWZE5Y.txt",
                "retrieveDatetime": self.retrieve_datetime, "signature": self.signature(subscription),
                "accepted": self.accepted,
            },
        }


class MarketplaceState(Collections):
    MODELS: ClassVar[dict[str, type]] = {"agreements": Agreement}

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.agreements: dict[str, Agreement] = {}

    @staticmethod
    def key(publisher: str, offer: str, plan: str) -> str:
        return f"{publisher}/{offer}/{plan}".lower()

    def agreement(self, publisher: str, offer: str, plan: str) -> Agreement:
        """The stored agreement, or the plan's terms not accepted yet (404 for a plan no image is sold under)."""
        stored = self.agreements.get(self.key(publisher, offer, plan))
        if stored is not None:
            return stored
        image = vmimages.find_plan(publisher, offer, plan)
        if image is None:
            raise mx.offer_not_found(publisher, offer, plan)
        from armsim.compute.models import now_iso

        return Agreement(image.publisher, image.offer, image.sku, retrieve_datetime=now_iso(self.sub.world))

    def accepted(self, publisher: str, offer: str, plan: str) -> bool:
        stored = self.agreements.get(self.key(publisher, offer, plan))
        return stored is not None and stored.accepted

    def set_accepted(self, publisher: str, offer: str, plan: str, accepted: bool) -> Agreement:
        from armsim.compute.models import now_iso

        agreement = self.agreement(publisher, offer, plan)
        agreement.accepted, agreement.retrieve_datetime = accepted, now_iso(self.sub.world)
        self.agreements[self.key(publisher, offer, plan)] = agreement
        return agreement
