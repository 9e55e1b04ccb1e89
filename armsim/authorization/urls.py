"""Microsoft.Authorization routes: management locks at any scope; the caller's permissions at a resource
group or a resource (Permissions - List For Resource Group / For Resource)."""

from __future__ import annotations

from armsim import schema as S
from armsim.authorization import responses as r
from armsim.routing import Router

A = "Microsoft.Authorization/locks/"
# Needs no role (armsim.authorization.rbac.OPEN_ACTIONS): every caller may read its own permissions.
PERMISSIONS_READ = "Microsoft.Authorization/permissions/read"


def register(router: Router) -> None:
    one = "/{scope:path}/providers/Microsoft.Authorization/locks/{lockName}"
    router.add("PUT", one, r.create_or_update, A + "write", schema=S.LOCK)
    router.add("GET", one, r.get, A + "read")
    router.add("DELETE", one, r.delete, A + "delete")
    router.add("GET", "/{scope:path}/providers/Microsoft.Authorization/locks", r.list_locks, A + "read")
    rg = "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}"
    router.add("GET", rg + "/providers/Microsoft.Authorization/permissions", r.list_permissions, PERMISSIONS_READ)
    router.add("GET", rg + "/providers/{resource:path}/providers/Microsoft.Authorization/permissions",
               r.list_permissions, PERMISSIONS_READ)
