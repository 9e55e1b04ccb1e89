"""Microsoft.Storage routes and their RBAC actions."""

from __future__ import annotations

from armsim.routing import Router
from armsim.storage import responses as r

SUB = "/subscriptions/{subscriptionId}"
RG = SUB + "/resourceGroups/{resourceGroupName}"
NS = "/providers/Microsoft.Storage"
A = "Microsoft.Storage/"


def register(router: Router) -> None:
    add = router.add
    one = RG + NS + "/storageAccounts/{accountName}"
    add("PUT", one, r.create, A + "storageAccounts/write")
    add("GET", one, r.get, A + "storageAccounts/read")
    add("DELETE", one, r.delete, A + "storageAccounts/delete")
    add("GET", RG + NS + "/storageAccounts", r.list_accounts, A + "storageAccounts/read")
    add("GET", SUB + NS + "/storageAccounts", r.list_accounts, A + "storageAccounts/read")
    add("GET", SUB + NS + "/locations/{location}/asyncoperations/{operationId}", r.get_operation,
        A + "locations/asyncoperations/read", lro_poll=True)
