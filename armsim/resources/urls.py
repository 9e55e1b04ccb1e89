"""Microsoft.Resources routes."""

from __future__ import annotations

from armsim import schema as S
from armsim.resources import responses as r
from armsim.routing import Router

SUB = "/subscriptions/{subscriptionId}"
A = "Microsoft.Resources/"


def register(router: Router) -> None:
    rg = SUB + "/resourceGroups/{resourceGroupName}"
    router.add("PUT", rg, r.create_or_update, A + "subscriptions/resourceGroups/write", schema=S.RESOURCE_GROUP)
    router.add("GET", rg, r.get, A + "subscriptions/resourceGroups/read")
    router.add("DELETE", rg, r.delete, A + "subscriptions/resourceGroups/delete")
    router.add("GET", SUB + "/resourceGroups", r.list_groups, A + "subscriptions/resourceGroups/read")
    router.add("GET", SUB + "/operationresults/{operationId}", r.get_operation_result,
               A + "subscriptions/operationresults/read", lro_poll=True)
