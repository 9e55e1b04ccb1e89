"""``GET {vm id}/providers/Microsoft.ResourceHealth/availabilityStatuses[/current]`` (api-version 2025-05-01)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from armsim.compute.models import norm_id
from armsim.errors import ResourceNotFound
from armsim.http import ArmRequest, ArmResponse, ok
from armsim.responses import page
from armsim.state import World

if TYPE_CHECKING:
    from armsim.compute.models import VirtualMachine
    from armsim.state import Subscription


def _vm(world: World, subscriptionId: str, resourceGroupName: str, vmName: str) -> tuple[Subscription,
                                                                                          VirtualMachine]:
    sub = world.sub(subscriptionId)
    sub.rg(resourceGroupName)
    vm = sub.compute.vms.get(norm_id(f"{sub.rg_id(resourceGroupName)}/providers/Microsoft.Compute/virtualMachines/"
                                     f"{vmName}").lower())
    if vm is None:
        raise ResourceNotFound("Microsoft.Compute/virtualMachines", vmName, resourceGroupName)
    return sub, vm


def list_statuses(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                  vmName: str) -> ArmResponse:
    sub, vm = _vm(world, subscriptionId, resourceGroupName, vmName)
    return page(req, sub.health.statuses(vm), lambda s: s, world.config.page_size)


def current_status(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                   vmName: str) -> ArmResponse:
    sub, vm = _vm(world, subscriptionId, resourceGroupName, vmName)
    return ok(sub.health.statuses(vm)[0])
