"""Policy definitions and assignments, and the deny effect: a write (PUT or PATCH) of a resource in an
assignment's scope whose rule's ``if`` holds is refused with 403 ``RequestDisallowedByPolicy``.

Rules are evaluated on the request body (a PATCH merged over the resource as it is), with the conditions
Azure Policy's built-ins use most: ``allOf``, ``anyOf``, ``not``; ``field`` with ``equals``, ``notEquals``,
``in``, ``notIn``, ``like``, ``notLike``, ``exists``; ``[parameters('name')]`` values. Fields: ``type``,
``location``, ``name``, ``tags['key']`` (or ``tags.key``) and a few aliases (``ALIASES``). Only ``deny``
is enforced; ``enforcementMode: DoNotEnforce`` assignments are skipped, as in Azure.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from armsim.errors import BadRequest, NotFound
from armsim.policy.exceptions import RequestDisallowedByPolicy
from armsim.state import Collections

if TYPE_CHECKING:
    from armsim.http import ArmRequest
    from armsim.state import Subscription

ALIASES = {
    "microsoft.compute/virtualmachines/sku.name": "properties.hardwareProfile.vmSize",
    "microsoft.compute/virtualmachines/storageprofile.osdisk.ostype": "properties.storageProfile.osDisk.osType",
    "microsoft.compute/virtualmachines/imagepublisher": "properties.storageProfile.imageReference.publisher",
    "microsoft.compute/virtualmachines/imageoffer": "properties.storageProfile.imageReference.offer",
    "microsoft.compute/virtualmachines/imagesku": "properties.storageProfile.imageReference.sku",
}
_PARAM = re.compile(r"^\[parameters\('([^']+)'\)\]$")


@dataclass
class PolicyDefinition:
    id: str
    name: str
    properties: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": "Microsoft.Authorization/policyDefinitions",
                "properties": {"policyType": "Custom", "mode": "All", **self.properties}}


@dataclass
class PolicyAssignment:
    id: str
    name: str
    scope: str
    properties: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": "Microsoft.Authorization/policyAssignments",
                "properties": {"scope": self.scope, "enforcementMode": "Default", **self.properties}}


class PolicyState(Collections):
    MODELS = {"definitions": PolicyDefinition, "assignments": PolicyAssignment}

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.definitions: dict[str, PolicyDefinition] = {}
        self.assignments: dict[str, PolicyAssignment] = {}

    def put_definition(self, name: str, body: dict[str, Any]) -> PolicyDefinition:
        props = body.get("properties")
        if not isinstance(props, dict) or not isinstance(props.get("policyRule"), dict):
            raise BadRequest("The policy definition must have 'properties.policyRule'.", code="InvalidPolicyRule")
        pid = f"/subscriptions/{self.sub.id}/providers/Microsoft.Authorization/policyDefinitions/{name}"
        made = PolicyDefinition(pid, name, copy.deepcopy(props))
        self.definitions[pid.lower()] = made
        return made

    def put_assignment(self, scope: str, name: str, body: dict[str, Any]) -> PolicyAssignment:
        props = dict(body.get("properties") or {})
        definition = str(props.get("policyDefinitionId") or "")
        if definition.lower() not in self.definitions:
            raise NotFound(f"The policy definition '{definition}' could not be found.",
                           code="PolicyDefinitionNotFound")
        aid = f"{scope.rstrip('/')}/providers/Microsoft.Authorization/policyAssignments/{name}"
        made = PolicyAssignment(aid, name, scope.rstrip("/"), props)
        self.assignments[aid.lower()] = made
        return made

    def check(self, resource_id: str, body: dict[str, Any]) -> None:
        """Refuse the write of ``resource_id`` (its full new JSON ``body``) if a deny assignment rules it out."""
        target = resource_id.lower().rstrip("/") + "/"
        for a in self.assignments.values():
            if not target.startswith(a.scope.lower() + "/") or a.properties.get("enforcementMode") == "DoNotEnforce":
                continue
            definition = self.definitions.get(str(a.properties.get("policyDefinitionId")).lower())
            if definition is None:
                continue
            rule = definition.properties["policyRule"]
            params = {k: (v or {}).get("value") for k, v in (a.properties.get("parameters") or {}).items()}
            for k, v in (definition.properties.get("parameters") or {}).items():
                params.setdefault(k, (v or {}).get("defaultValue"))
            effect = str(_value((rule.get("then") or {}).get("effect"), params) or "").lower()
            if effect == "deny" and _holds(rule.get("if") or {}, body, params):
                raise RequestDisallowedByPolicy(str(body.get("name") or resource_id.rsplit("/", 1)[-1]),
                                                {"name": a.name, "id": a.id},
                                                {"name": definition.name, "id": definition.id})


def _value(v: Any, params: dict[str, Any]) -> Any:
    if isinstance(v, str) and (m := _PARAM.match(v)):
        return params.get(m.group(1))
    return v


def _field(body: dict[str, Any], name: str) -> Any:
    lower = name.lower()
    if lower in ("type", "location", "name"):
        return body.get(lower)
    if m := re.match(r"^tags(?:\['([^']+)'\]|\.(.+))$", name, re.IGNORECASE):
        return (body.get("tags") or {}).get(m.group(1) or m.group(2))
    path = ALIASES.get(lower)
    if path is None:
        raise BadRequest(f"armsim does not evaluate the policy field '{name}'.", code="InvalidPolicyRule")
    data: Any = body
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _holds(cond: dict[str, Any], body: dict[str, Any], params: dict[str, Any]) -> bool:
    if "allOf" in cond:
        return all(_holds(c, body, params) for c in cond["allOf"])
    if "anyOf" in cond:
        return any(_holds(c, body, params) for c in cond["anyOf"])
    if "not" in cond:
        return not _holds(cond["not"], body, params)
    name = str(cond.get("field"))
    actual = _field(body, name)
    # ARM compares locations by their short name ("East US" is "eastus")
    norm = (lambda v: str(v or "").replace(" ", "").lower()) if name.lower() == "location" else \
        (lambda v: str(v or "").lower())
    text = norm(actual)
    for op, raw in cond.items():
        if op == "field":
            continue
        want = _value(raw, params)
        if op == "equals":
            return text == norm(want)
        if op == "notEquals":
            return text != norm(want)
        if op in ("in", "notIn"):
            found = text in {norm(w) for w in (want if isinstance(want, list) else [want])}
            return found if op == "in" else not found
        if op in ("like", "notLike"):
            matched = fnmatch.fnmatch(text, str(want).lower())
            return matched if op == "like" else not matched
        if op == "exists":
            return (actual is not None) == (str(want).lower() == "true")
    raise BadRequest(f"armsim does not evaluate the policy condition {sorted(cond)}.", code="InvalidPolicyRule")


def check_policy(sub: Subscription, req: ArmRequest) -> None:
    """Before a PUT or PATCH of a resource reaches its provider: the deny assignments covering it."""
    method, path = req.method, req.path
    parts = [p for p in path.split("/") if p]
    if method not in ("PUT", "PATCH") or not sub.policy.assignments or len(parts) != 8 \
            or parts[4].lower() != "providers" or parts[5].lower() == "microsoft.authorization":
        return  # only top-level resources of a resource group
    new: dict[str, Any] = copy.deepcopy(req.json())
    vm = sub.compute.vms.get(path.lower().rstrip("/")) if parts[6].lower() == "virtualmachines" else None
    if vm is not None:
        new = _merged({"location": vm.location, "tags": dict(vm.tags), "properties": copy.deepcopy(vm.properties)},
                      new) if method == "PATCH" else {"location": vm.location, **new}
    new.update(name=parts[7], type=f"{parts[5]}/{parts[6]}")
    sub.policy.check(path, new)


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
