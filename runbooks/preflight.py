"""Preflight: before the first write, can the caller make every call of the plan?

A VM deleted under a role that lacks a join action cannot be rebuilt (ARM's linked access check refuses the
NIC), so the engine asks ARM first: ``Microsoft.Authorization/permissions`` on each resource group the plan
writes or links to lists the caller's actions (one entry per role assignment). The plan's calls give the
actions they need (``OPERATION_ACTIONS``) and, through their bodies, the linked actions on what they
reference (``LINKED``, ARM's linked access checks). Anything missing refuses the plan before anything is
changed, naming each action and scope.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from runbooks.azure import AZURE_ERRORS, Azure, Call, resource_parts
from runbooks.errors import StepRefused

PERMISSIONS_API = "2022-04-01"
# The action each operation the steps use needs on its own resource.
OPERATION_ACTIONS = {
    "snapshots.begin_create_or_update": "Microsoft.Compute/snapshots/write",
    "disks.begin_create_or_update": "Microsoft.Compute/disks/write",
    "virtual_machines.begin_delete": "Microsoft.Compute/virtualMachines/delete",
    "virtual_machines.begin_create_or_update": "Microsoft.Compute/virtualMachines/write",
    "virtual_machines.begin_update": "Microsoft.Compute/virtualMachines/write",
    "virtual_machines.begin_start": "Microsoft.Compute/virtualMachines/start/action",
    "virtual_machines.begin_deallocate": "Microsoft.Compute/virtualMachines/deallocate/action",
    "virtual_machines.begin_restart": "Microsoft.Compute/virtualMachines/restart/action",
    "virtual_machines.begin_redeploy": "Microsoft.Compute/virtualMachines/redeploy/action",
    "virtual_machine_extensions.begin_create_or_update": "Microsoft.Compute/virtualMachines/extensions/write",
    "network_interfaces.begin_create_or_update": "Microsoft.Network/networkInterfaces/write",
    "public_ip_addresses.begin_create_or_update": "Microsoft.Network/publicIPAddresses/write",
    "virtual_machines.begin_power_off": "Microsoft.Compute/virtualMachines/powerOff/action",
    "management_locks.delete_by_scope": "Microsoft.Authorization/locks/delete",
    "management_locks.create_or_update_by_scope": "Microsoft.Authorization/locks/write",
    # names from the provider's operations list (azure-rest-api-specs marketplaceordering 2021-01-01)
    "marketplace_agreements.create":
        "Microsoft.MarketplaceOrdering/offertypes/publishers/offers/plans/agreements/write",
    "marketplace_agreements.cancel": "Microsoft.MarketplaceOrdering/agreements/offers/plans/cancel/action",
}
# ARM's linked access checks: (operation, path in its body to referenced ids, action needed on each). ``name[]``
# walks a list, ``name{}`` takes an object's keys.
_NIC, _VM = "network_interfaces.begin_create_or_update", "virtual_machines.begin_create_or_update"
LINKED = [
    (_NIC, "properties.ipConfigurations[].properties.subnet.id",
     "Microsoft.Network/virtualNetworks/subnets/join/action"),
    (_NIC, "properties.ipConfigurations[].properties.publicIPAddress.id",
     "Microsoft.Network/publicIPAddresses/join/action"),
    (_NIC, "properties.networkSecurityGroup.id", "Microsoft.Network/networkSecurityGroups/join/action"),
    (_NIC, "properties.ipConfigurations[].properties.applicationSecurityGroups[].id",
     "Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action"),
    (_NIC, "properties.ipConfigurations[].properties.loadBalancerBackendAddressPools[].id",
     "Microsoft.Network/loadBalancers/backendAddressPools/join/action"),
    (_NIC, "properties.ipConfigurations[].properties.loadBalancerInboundNatRules[].id",
     "Microsoft.Network/loadBalancers/inboundNatRules/join/action"),
    (_NIC, "properties.ipConfigurations[].properties.applicationGatewayBackendAddressPools[].id",
     "Microsoft.Network/applicationGateways/backendAddressPools/join/action"),
    (_VM, "properties.networkProfile.networkInterfaces[].id", "Microsoft.Network/networkInterfaces/join/action"),
    (_VM, "properties.storageProfile.imageReference.id", "Microsoft.Compute/images/read"),
    (_VM, "identity.userAssignedIdentities{}", "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"),
    ("virtual_machines.begin_update", "properties.networkProfile.networkInterfaces[].id",
     "Microsoft.Network/networkInterfaces/join/action"),
]


@dataclass(frozen=True)
class Need:
    """An action the plan needs on a resource, and why."""

    action: str
    resource: str
    why: str

    @property
    def resource_group(self) -> str:
        """The resource group of the resource (its subscription for a subscription-level one: legal terms)."""
        if "/resourcegroups/" not in self.resource.lower():
            return "/".join(self.resource.split("/")[:3])
        p = resource_parts(self.resource)
        return f"/subscriptions/{p.subscription}/resourceGroups/{p.resource_group}"


def _ids_at(body: Any, path: str) -> list[str]:
    nodes = [body]
    for part in path.split("."):
        nxt: list[Any] = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            if part.endswith("[]"):
                nxt += [x for x in node.get(part[:-2]) or [] if isinstance(x, dict | str)]
            elif part.endswith("{}"):
                nxt += list((node.get(part[:-2]) or {}).keys())
            elif part in node:
                nxt.append(node[part])
        nodes = nxt
    return [str(n) for n in nodes if isinstance(n, str) and n.startswith("/subscriptions/")]


def needs(calls: Iterable[Call]) -> list[Need]:
    """Every action the calls need, on their own resource and on what their bodies reference."""
    out: list[Need] = []
    for call in calls:
        action = OPERATION_ACTIONS.get(call.op)
        if action:
            out.append(Need(action, call.resource_id, call.summary))
        body = next((v for k, v in call.args.items() if isinstance(v, dict)), {})
        for op, path, linked in LINKED:
            if op == call.op:
                out += [Need(linked, rid, f"{call.summary} references it") for rid in _ids_at(body, path)]
    return out


def _matches(patterns: Iterable[str], action: str) -> bool:
    """Azure's wildcards: ``*`` matches anything, and a ``/*/`` segment may also match none."""
    a = action.lower()
    return any(fnmatch.fnmatchcase(a, p.lower()) or ("/*/" in p and fnmatch.fnmatchcase(a, p.lower().replace(
        "/*/", "/"))) for p in patterns)


def granted(permissions: list[dict[str, Any]], action: str) -> bool:
    """Does any entry (one per role assignment) grant ``action`` and not exclude it?"""
    return any(_matches(p.get("actions") or [], action) and not _matches(p.get("notActions") or [], action)
               for p in permissions)


def read_permissions(az: Azure, scope: str) -> list[dict[str, Any]] | None:
    """The caller's permissions at a resource group (None when ARM cannot tell: the check is then skipped)."""
    from azure.core.rest import HttpRequest

    url = f"{az.conn.endpoint}{scope}/providers/Microsoft.Authorization/permissions?api-version={PERMISSIONS_API}"
    try:
        response = az.compute._client.send_request(HttpRequest("GET", url))
    except AZURE_ERRORS:
        return None
    if response.status_code != 200:
        return None
    try:
        return list(response.json().get("value") or [])
    except (ValueError, AttributeError):
        return None


def preflight(az: Azure, calls: Iterable[Call], progress: Callable[[str], None] | None = None) -> None:
    """Refuse (StepRefused, before any write) when the caller lacks an action the calls need."""
    wanted = needs(calls)
    if not wanted:
        return
    by_scope: dict[str, list[dict[str, Any]] | None] = {}
    missing: list[str] = []
    for need in wanted:
        scope = need.resource_group
        if scope.lower() not in by_scope:
            by_scope[scope.lower()] = read_permissions(az, scope)
        perms = by_scope[scope.lower()]
        if perms is not None and not granted(perms, need.action):
            entry = f"{need.action} on {need.resource.rsplit('/', 1)[-1]} ({need.why})"
            if entry not in missing:
                missing.append(entry)
    unknown = [s for s, p in by_scope.items() if p is None]
    if unknown and progress is not None:
        progress(f"  ! permissions could not be read at {', '.join(unknown)}: not checked before the first write")
    if missing:
        raise StepRefused("the caller lacks what the plan needs, so nothing was changed: " + "; ".join(missing)
                          + ". Grant them (the shipped role is runbooks/automation/roles/remediator.json) and run "
                            "the same command again")
