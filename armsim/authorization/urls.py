"""Microsoft.Authorization routes: management locks at any scope."""

from __future__ import annotations

from armsim import schema as S
from armsim.authorization import responses as r
from armsim.routing import Router

A = "Microsoft.Authorization/locks/"


def register(router: Router) -> None:
    one = "/{scope:path}/providers/Microsoft.Authorization/locks/{lockName}"
    router.add("PUT", one, r.create_or_update, A + "write", schema=S.LOCK)
    router.add("GET", one, r.get, A + "read")
    router.add("DELETE", one, r.delete, A + "delete")
    router.add("GET", "/{scope:path}/providers/Microsoft.Authorization/locks", r.list_locks, A + "read")
