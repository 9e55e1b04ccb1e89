"""Microsoft.Storage handlers: storage accounts (create as an LRO, get, delete, list) and their operation status."""

from __future__ import annotations

from typing import Any

from armsim.errors import NotFound
from armsim.http import ArmRequest, ArmResponse, ok
from armsim.lro import Operation, completer
from armsim.responses import begin, iso, page, retry_hint, status_url
from armsim.state import World
from armsim.storage.models import StorageState

CREATE_SECONDS = 20.0  # at latency scale 1.0


def _state(world: World, subscription: str) -> StorageState:
    return world.sub(subscription).storage


def create(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
           accountName: str) -> ArmResponse:
    """Like Azure's storage RP: a new account is 202 Accepted with a Location to poll (no body); an existing one
    is updated at once, 200 with its body."""
    state = _state(world, subscriptionId)
    account, created = state.put(resourceGroupName, accountName, req.json(), iso(world.clock()))
    if not created:
        return ok(account.to_dict())
    op = begin(world, req, subscription=state.sub.id, kind="storage.create", target=account.id, namespace="storage",
               location=account.location, duration=CREATE_SECONDS * world.config.latency_scale)
    return ArmResponse(202, None, {"Location": status_url(req, op, monitor=True),
                                   **retry_hint(world, op.end - op.start, "storage")})


def get(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, accountName: str) -> ArmResponse:
    return ok(_state(world, subscriptionId).get(resourceGroupName, accountName).to_dict())


def delete(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
           accountName: str) -> ArmResponse:
    """Synchronous, like Azure's: 200 when deleted, 204 when there was nothing to delete."""
    state = _state(world, subscriptionId)
    state.sub.rg(resourceGroupName)
    if state.accounts.pop(state.rid(resourceGroupName, accountName).lower(), None) is None:
        return ArmResponse(204)
    return ArmResponse(200)


def list_accounts(world: World, req: ArmRequest, subscriptionId: str,
                  resourceGroupName: str | None = None) -> ArmResponse:
    state = _state(world, subscriptionId)
    return page(req, state.items_in(resourceGroupName), lambda a: a.to_dict(), world.config.page_size)


def get_operation(world: World, req: ArmRequest, subscriptionId: str, location: str, operationId: str) -> ArmResponse:
    """The Location URL of a create: 202 while it runs, then 200 with the account (or the error it failed with)."""
    op = world.operations.get(operationId)
    if op is None or op.namespace != "storage" or op.subscription.lower() != subscriptionId.lower():
        raise NotFound(f"The operation '{operationId}' was not found.", code="OperationNotFound")
    if not op.done:
        return ArmResponse(202, None, {"Location": status_url(req, op, monitor=True),
                                       **retry_hint(world, max(0.0, op.end - world.clock()), "storage")})
    if op.error is not None:
        return ArmResponse(200, {"status": op.status, "error": op.error})
    account = world.sub(op.subscription).storage.accounts.get(op.target.lower())
    return ok(account.to_dict() if account is not None else None)


@completer("storage.create")
def _created(world: World, op: Operation) -> None:
    account = world.sub(op.subscription).storage.accounts.get(op.target.lower())
    if account is not None:
        account.provisioning_state = "Succeeded" if op.succeeded else "Failed"


def seed_account(world: World, subscription: str, rg: str, name: str, *, location: str, sku: str = "Standard_LRS",
                 kind: str = "StorageV2") -> dict[str, Any]:
    """Control/seed helper: an account that exists at once (no operation), for scenarios and tests."""
    state = _state(world, subscription)
    state.sub.ensure_rg(rg, location)
    account, _ = state.put(rg, name, {"location": location, "sku": {"name": sku}, "kind": kind}, iso(world.clock()))
    account.provisioning_state = "Succeeded"
    world.dirty = True
    return account.to_dict()
