"""Microsoft.ResourceHealth routes (VMs only)."""

from __future__ import annotations

from armsim.resourcehealth import responses as r
from armsim.routing import Router

_VM = ("/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/"
       "virtualMachines/{vmName}/providers/Microsoft.ResourceHealth/availabilityStatuses")


def register(router: Router) -> None:
    router.add("GET", _VM, r.list_statuses, "Microsoft.ResourceHealth/availabilityStatuses/read")
    router.add("GET", _VM + "/current", r.current_status, "Microsoft.ResourceHealth/availabilityStatuses/read")
