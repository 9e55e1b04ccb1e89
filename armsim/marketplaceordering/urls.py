"""Microsoft.MarketplaceOrdering routes and their RBAC actions (names from the provider's operations list in
Azure/azure-rest-api-specs, marketplaceordering 2021-01-01 OperationsList.json)."""

from __future__ import annotations

from armsim.marketplaceordering import responses as r
from armsim.routing import Router

NS = "/subscriptions/{subscriptionId}/providers/Microsoft.MarketplaceOrdering"
A = "Microsoft.MarketplaceOrdering/"


def register(router: Router) -> None:
    add = router.add
    current = NS + "/offerTypes/{offerType}/publishers/{publisherId}/offers/{offerId}/plans/{planId}/agreements/current"
    add("GET", current, r.get, A + "offertypes/publishers/offers/plans/agreements/read")
    add("PUT", current, r.create, A + "offertypes/publishers/offers/plans/agreements/write")
    legacy = NS + "/agreements/{publisherId}/offers/{offerId}/plans/{planId}"
    add("GET", legacy, r.get_agreement, A + "agreements/offers/plans/read")
    add("POST", legacy + "/sign", r.sign, A + "agreements/offers/plans/sign/action")
    add("POST", legacy + "/cancel", r.cancel, A + "agreements/offers/plans/cancel/action")
    add("GET", NS + "/agreements", r.list_agreements, A + "agreements/read")
