"""Role-based access control for ``--rbac``: role definitions and assignments (Azure's JSON shapes)
decide which actions a principal may perform at a scope; anything else is 403 AuthorizationFailed
naming the missing action.

    {"roleDefinitions": [{"id": "vm-fixer", "roleName": "VM Fixer",
                          "permissions": [{"actions": ["Microsoft.Compute/virtualMachines/*"], "notActions": []}]}],
     "roleAssignments": [{"principalId": "<oid>", "roleDefinitionId": "vm-fixer", "scope": "/subscriptions/<id>"}]}
"""

from __future__ import annotations

import fnmatch
from typing import Any

from armsim.authorization.models import target_of
from armsim.errors import AuthorizationFailed, BadRequest
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
    return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in patterns)


def allowed(world: World, principal: str, action: str, scope: str) -> bool:
    target = scope.lower().rstrip("/") + "/"
    defs = {str(d.get("id") or d.get("roleName")).lower(): d for d in world.rbac["roleDefinitions"]}
    defs.update({str(d.get("roleName")).lower(): d for d in world.rbac["roleDefinitions"] if d.get("roleName")})
    for a in world.rbac["roleAssignments"]:
        if str(a["principalId"]).lower() != principal.lower():
            continue
        if not target.startswith(str(a["scope"]).lower().rstrip("/") + "/"):
            continue
        role = defs.get(str(a.get("roleDefinitionId") or a.get("roleName")).lower().rsplit("/", 1)[-1]) or defs.get(
            str(a.get("roleDefinitionId") or a.get("roleName")).lower())
        for perm in (role or {}).get("permissions", []):
            if _matches(perm.get("actions", []), action) and not _matches(perm.get("notActions", []), action):
                return True
    return False


def authorize(world: World, req: ArmRequest, route: Route) -> None:
    scope = target_of(req, route)
    if not allowed(world, req.principal, route.action, scope):
        raise AuthorizationFailed(req.principal, route.action, scope)
