"""Role-based access control for ``--rbac``: role definitions and assignments (Azure's JSON shapes)
decide which actions a principal may perform at a scope; anything else is 403 AuthorizationFailed
naming the missing action. Data-plane routes (Key Vault) check a permission's ``dataActions`` and
``notDataActions`` instead, as Azure does: ``actions: ["*"]`` grants no data action. ``permissions`` answers
Permissions - List (the caller's own permissions at a scope), which needs no role (``OPEN_ACTIONS``).

    {"roleDefinitions": [{"id": "vm-fixer", "roleName": "VM Fixer",
                          "permissions": [{"actions": ["Microsoft.Compute/virtualMachines/*"], "notActions": []}]}],
     "roleAssignments": [{"principalId": "<oid>", "roleDefinitionId": "vm-fixer", "scope": "/subscriptions/<id>"}]}
"""

from __future__ import annotations

import fnmatch
from typing import Any

from armsim.authorization.models import target_of
from armsim.errors import AuthorizationFailed, BadRequest, LinkedAuthorizationFailed
from armsim.http import ArmRequest
from armsim.routing import Route
from armsim.state import World


def validate(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("roleDefinitions", []), list) or not isinstance(
            doc.get("roleAssignments", []), list):
        raise BadRequest("RBAC document must be an object with 'roleDefinitions' and 'roleAssignments' lists.")
    for d in doc.get("roleDefinitions", []):
        if not isinstance(d, dict) or not (d.get("id") or d.get("roleName")) or not isinstance(
                d.get("permissions", []), list):
            raise BadRequest("Each role definition needs an 'id' or 'roleName' and a 'permissions' list.")
    for a in doc.get("roleAssignments", []):
        if not isinstance(a, dict) or not a.get("principalId") or not a.get("scope") or not (
                a.get("roleDefinitionId") or a.get("roleName")):
            raise BadRequest("Each role assignment needs 'principalId', 'scope' and 'roleDefinitionId'.")
    return {"roleDefinitions": doc.get("roleDefinitions", []), "roleAssignments": doc.get("roleAssignments", [])}


def _matches(patterns: list[str], action: str) -> bool:
    """Azure's wildcards: ``*`` matches anything, and a whole ``/*/`` segment may also match none, so the
    built-in Managed Identity Operator's ``userAssignedIdentities/*/assign/action`` grants
    ``userAssignedIdentities/assign/action``."""
    a = action.lower()
    lowered = [str(p).lower() for p in patterns]
    return any(fnmatch.fnmatchcase(a, p) or ("/*/" in p and fnmatch.fnmatchcase(a, p.replace("/*/", "/")))
               for p in lowered)


def _roles_covering(world: World, principal: str, scope: str) -> list[dict[str, Any]]:
    """The role definitions of ``principal``'s assignments at ``scope`` or above it, one per assignment (in
    the RBAC document's order; an assignment naming an unknown role contributes nothing)."""
    target = scope.lower().rstrip("/") + "/"
    defs = {str(d.get("id") or d.get("roleName")).lower(): d for d in world.rbac["roleDefinitions"]}
    defs.update({str(d.get("roleName")).lower(): d for d in world.rbac["roleDefinitions"] if d.get("roleName")})
    roles = []
    for a in world.rbac["roleAssignments"]:
        if str(a["principalId"]).lower() != principal.lower():
            continue
        if not target.startswith(str(a["scope"]).lower().rstrip("/") + "/"):
            continue
        role = defs.get(str(a.get("roleDefinitionId") or a.get("roleName")).lower().rsplit("/", 1)[-1]) or defs.get(
            str(a.get("roleDefinitionId") or a.get("roleName")).lower())
        if role is not None:
            roles.append(role)
    return roles


def allowed(world: World, principal: str, action: str, scope: str, *, data: bool = False) -> bool:
    """Does a role assigned to ``principal`` at or above ``scope`` grant ``action`` (a data action if ``data``)?"""
    granted, denied = ("dataActions", "notDataActions") if data else ("actions", "notActions")
    for role in _roles_covering(world, principal, scope):
        for perm in role.get("permissions", []):
            if _matches(perm.get(granted, []), action) and not _matches(perm.get(denied, []), action):
                return True
    return False


# What Permissions - List answers for a caller when RBAC is off: the built-in Owner role's one permission.
OWNER = {"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []}
PERMISSION_KEYS = ("actions", "notActions", "dataActions", "notDataActions")

# Actions every caller may perform without a role, as in ARM: reading one's own permissions.
OPEN_ACTIONS = {"microsoft.authorization/permissions/read"}


def permissions(world: World, principal: str, scope: str) -> list[dict[str, list[str]]]:
    """Azure's Permissions - List for ``scope``: each permission of each role assigned to ``principal`` at
    ``scope`` or above (not below), with all four lists; Owner's when RBAC is off."""
    if not world.config.rbac:
        return [{k: list(v) for k, v in OWNER.items()}]
    return [{k: [str(x) for x in perm.get(k) or []] for k in PERMISSION_KEYS}
            for role in _roles_covering(world, principal, scope) for perm in role.get("permissions", [])]


# ARM's linked access checks: writing a resource that references another one needs an action on that one too.
# (action of the write, JSON path to the referenced ids, action needed on each referenced id). In a path,
# ``name[]`` walks every item of a list and ``name{}`` takes the keys of an object (userAssignedIdentities).
LINKED = [
    ("Microsoft.Network/networkInterfaces/write", "properties.ipConfigurations[].properties.subnet.id",
     "Microsoft.Network/virtualNetworks/subnets/join/action"),
    ("Microsoft.Network/networkInterfaces/write", "properties.ipConfigurations[].properties.publicIPAddress.id",
     "Microsoft.Network/publicIPAddresses/join/action"),
    ("Microsoft.Network/networkInterfaces/write", "properties.networkSecurityGroup.id",
     "Microsoft.Network/networkSecurityGroups/join/action"),
    ("Microsoft.Network/networkInterfaces/write",
     "properties.ipConfigurations[].properties.applicationSecurityGroups[].id",
     "Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action"),
    ("Microsoft.Network/networkInterfaces/write",
     "properties.ipConfigurations[].properties.loadBalancerBackendAddressPools[].id",
     "Microsoft.Network/loadBalancers/backendAddressPools/join/action"),
    ("Microsoft.Network/networkInterfaces/write",
     "properties.ipConfigurations[].properties.loadBalancerInboundNatRules[].id",
     "Microsoft.Network/loadBalancers/inboundNatRules/join/action"),
    ("Microsoft.Network/networkInterfaces/write",
     "properties.ipConfigurations[].properties.applicationGatewayBackendAddressPools[].id",
     "Microsoft.Network/applicationGateways/backendAddressPools/join/action"),
    ("Microsoft.Compute/virtualMachines/write", "properties.networkProfile.networkInterfaces[].id",
     "Microsoft.Network/networkInterfaces/join/action"),
    ("Microsoft.Compute/virtualMachines/write", "properties.storageProfile.imageReference.id",
     "Microsoft.Compute/images/read"),
    ("Microsoft.Compute/virtualMachines/write", "identity.userAssignedIdentities{}",
     "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"),
]


def _ids_at(body: Any, path: str) -> list[str]:
    """The resource ids at a dotted path in which ``name[]`` walks every item of a list and ``name{}`` takes
    the keys of an object (but those set to null); ids get a leading slash, as ARM accepts them without one."""
    values = [body]
    for part in path.split("."):
        many, keys = part.endswith("[]"), part.endswith("{}")
        key = part.removesuffix("[]").removesuffix("{}")
        nxt: list[Any] = []
        for v in values:
            item = v.get(key) if isinstance(v, dict) else None
            if many and isinstance(item, list):
                nxt.extend(item)
            elif keys and isinstance(item, dict):
                nxt.extend(k for k, val in item.items() if val is not None)  # {"<id>": null} removes, joins none
            elif not many and not keys and item is not None:
                nxt.append(item)
        values = nxt
    return ["/" + v.strip().strip("/") for v in values if isinstance(v, str) and v.strip().strip("/")]


def authorize(world: World, req: ArmRequest, route: Route) -> None:
    if route.action.lower() in OPEN_ACTIONS:
        return
    scope = target_of(req, route)
    if not allowed(world, req.principal, route.action, scope):
        raise AuthorizationFailed(req.principal, route.action, scope)
    checks = [(path, needed) for action, path, needed in LINKED if action == route.action]
    if req.method != "PUT" or not checks:
        return
    body = req.json()
    missing = [(needed, linked) for path, needed in checks
               for linked in _ids_at(body, path) if not allowed(world, req.principal, needed, linked)]
    if missing:
        raise LinkedAuthorizationFailed(req.principal, route.action, scope, missing)
