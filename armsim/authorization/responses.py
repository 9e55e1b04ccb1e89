"""Management-lock handlers, at any scope (subscription, resource group, resource), and Permissions - List
(the caller's own permissions at a resource group or a resource)."""

from __future__ import annotations

from armsim.authorization import rbac
from armsim.authorization.models import LEVELS, Lock
from armsim.errors import BadRequest, NotFound
from armsim.http import ArmRequest, ArmResponse, ok
from armsim.state import Subscription, World

SUFFIX = "/providers/Microsoft.Authorization/locks"


def _scope_sub(world: World, scope: str) -> tuple[Subscription, str]:
    scope = "/" + scope.strip("/")
    parts = scope.split("/")
    if len(parts) < 3 or parts[1].lower() != "subscriptions":
        raise BadRequest(f"The scope '{scope}' is not valid for a management lock.", code="InvalidScope")
    sub = world.sub(parts[2])
    if len(parts) >= 5:
        sub.rg(parts[4])
    return sub, scope


def create_or_update(world: World, req: ArmRequest, scope: str, lockName: str) -> ArmResponse:
    sub, scope = _scope_sub(world, scope)
    body = req.json()
    props = body.get("properties") or {}
    level = props.get("level")
    if level not in LEVELS:
        raise BadRequest(f"The lock level '{level}' is not valid. Valid values are {', '.join(LEVELS)}.",
                         code="LockLevelInvalid")
    lock_id = f"{scope}{SUFFIX}/{lockName}"
    created = lock_id.lower() not in sub.locks.locks
    sub.locks.locks[lock_id.lower()] = Lock(lock_id, lockName, scope, level, props.get("notes"),
                                            list(props.get("owners") or []))
    return ok(sub.locks.locks[lock_id.lower()].to_dict(), status=201 if created else 200)


def get(world: World, req: ArmRequest, scope: str, lockName: str) -> ArmResponse:
    sub, scope = _scope_sub(world, scope)
    lock = sub.locks.locks.get(f"{scope}{SUFFIX}/{lockName}".lower())
    if lock is None:
        raise NotFound(f"The lock '{lockName}' could not be found.", code="LockNotFound")
    return ok(lock.to_dict())


def delete(world: World, req: ArmRequest, scope: str, lockName: str) -> ArmResponse:
    sub, scope = _scope_sub(world, scope)
    lock = sub.locks.locks.pop(f"{scope}{SUFFIX}/{lockName}".lower(), None)
    return ArmResponse(200 if lock else 204)


def list_locks(world: World, req: ArmRequest, scope: str) -> ArmResponse:
    """Locks at this scope, above it and (for the subscription/resource-group lists) below it."""
    sub, scope = _scope_sub(world, scope)
    low = scope.lower().rstrip("/") + "/"
    items = [lk for lk in sub.locks.locks.values()
             if low.startswith(lk.scope.lower().rstrip("/") + "/") or lk.scope.lower().startswith(low)]
    return ok({"value": [lk.to_dict() for lk in sorted(items, key=lambda lk: lk.id.lower())]})


def list_permissions(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                     resource: str | None = None) -> ArmResponse:
    """Permissions - List For Resource Group / For Resource: one entry per permission of each role assigned to
    the caller at this scope or above it (assignments below it are not counted); Owner's when RBAC is off.
    The resource group must exist (404 ResourceGroupNotFound); the resource itself is not looked up."""
    sub = world.sub(subscriptionId)
    rg = sub.rg(resourceGroupName)
    scope = rg.id if resource is None else f"{rg.id}/providers/{resource.strip('/')}"
    return ok({"value": rbac.permissions(world, req.principal, scope)})
