"""Microsoft.Resources: resource groups (create, get, check existence, list, delete with contents)."""

from __future__ import annotations

from typing import Any

from armsim.errors import InvalidParameter
from armsim.http import ArmRequest, ArmResponse, ok
from armsim.lro import Operation, completer
from armsim.responses import accepted, begin, page
from armsim.state import World


def create_or_update(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str) -> ArmResponse:
    sub = world.sub(subscriptionId)
    body = req.json()
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise InvalidParameter("Required parameter 'location' is missing (null).", target="location")
    existing = sub.resource_groups.get(resourceGroupName.lower())
    rg = sub.ensure_rg(resourceGroupName, location.replace(" ", "").lower(), body.get("tags"))
    if existing is not None and "tags" in body:
        rg.tags = dict(body.get("tags") or {})
    return ok(rg.to_dict(), status=200 if existing else 201)


def get(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str) -> ArmResponse:
    rg = world.sub(subscriptionId).rg(resourceGroupName)
    if req.method == "HEAD":
        return ArmResponse(204)
    return ok(rg.to_dict())


def list_groups(world: World, req: ArmRequest, subscriptionId: str) -> ArmResponse:
    sub = world.sub(subscriptionId)
    groups = sorted(sub.resource_groups.values(), key=lambda g: g.name.lower())
    return page(req, groups, lambda g: g.to_dict(), world.config.page_size)


def delete(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str) -> ArmResponse:
    sub = world.sub(subscriptionId)
    rg = sub.rg(resourceGroupName)
    op = begin(world, req, subscription=sub.id, kind="resourceGroup.delete", target=rg.id, namespace="resources",
               location=rg.location)
    response = accepted(world, req, op)
    response.headers.pop("Azure-AsyncOperation", None)  # ARM answers resource-group deletes with Location only
    return response


def get_operation_result(world: World, req: ArmRequest, subscriptionId: str, operationId: str) -> ArmResponse:
    from armsim.errors import NotFound
    from armsim.responses import operation_status

    op = world.operations.get(operationId)
    if op is None or op.namespace != "resources":
        raise NotFound(f"The operation '{operationId}' was not found.", code="OperationNotFound")
    return operation_status(world, req, op)


@completer("resourceGroup.delete")
def _rg_deleted(world: World, op: Operation) -> None:
    """Delete the group and everything in it (VMs first, so their disks and NICs are released)."""
    if not op.succeeded:
        return
    sub = world.sub(op.subscription)
    prefix = op.target.lower() + "/"
    for vm in [v for k, v in sub.compute.vms.items() if k.startswith(prefix)]:
        sub.compute.remove_vm(vm)
    tables: list[dict[str, Any]] = [sub.compute.extensions, sub.compute.disks, sub.compute.snapshots,
                                    sub.compute.images, sub.network.nics, sub.network.pips, sub.network.vnets,
                                    sub.locks.locks, sub.storage.accounts]
    for table in tables:
        for key in [k for k in table if k.startswith(prefix)]:
            del table[key]
    sub.resource_groups.pop(op.target.rsplit("/", 1)[-1].lower(), None)
