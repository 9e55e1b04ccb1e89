"""Azure Policy's deny effect: a write a policy assignment rules out is refused 403 RequestDisallowedByPolicy, naming
the assignment, and lands in the activity log; reads, other scopes and DoNotEnforce assignments pass."""

from __future__ import annotations

import json

import pytest
from armsim_env import Env
from azure.core.exceptions import HttpResponseError

from armsim import ArmSim


def _policy(arm: ArmSim, env: Env, scope: str, *, enforce: bool = True) -> str:
    client = env.compute._client  # any client's pipeline sends a raw request
    from azure.core.rest import HttpRequest

    sub = f"/subscriptions/{arm.subscription_id}"
    definition = f"{sub}/providers/Microsoft.Authorization/policyDefinitions/allowed-sizes"
    rule = {"if": {"allOf": [{"field": "type", "equals": "Microsoft.Compute/virtualMachines"},
                             {"not": {"field": "Microsoft.Compute/virtualMachines/sku.name",
                                      "in": "[parameters('listOfAllowedSKUs')]"}}]},
            "then": {"effect": "deny"}}
    for url, body in ((definition, {"properties": {"displayName": "Allowed VM sizes", "policyRule": rule,
                                                   "parameters": {"listOfAllowedSKUs": {"type": "Array"}}}}),
                      (f"{scope}/providers/Microsoft.Authorization/policyAssignments/vm-sizes",
                       {"properties": {"policyDefinitionId": definition,
                                       "enforcementMode": "Default" if enforce else "DoNotEnforce",
                                       "parameters": {"listOfAllowedSKUs": {"value": ["Standard_D2s_v5"]}}}})):
        resp = client.send_request(HttpRequest("PUT", f"{arm.endpoint}{url}?api-version=2023-04-01", json=body))
        assert resp.status_code == 201, resp.text()
    return f"{scope}/providers/Microsoft.Authorization/policyAssignments/vm-sizes"


def test_a_denied_resize_is_refused_naming_the_assignment_and_logged(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.compute.virtual_machines.begin_create_or_update("rg", "vm1", env.vm_body("rg", "vm1")).result()
    assignment = _policy(arm, env, f"/subscriptions/{arm.subscription_id}/resourceGroups/rg")
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_update("rg", "vm1", {"properties": {"hardwareProfile": {
            "vmSize": "Standard_D8s_v5"}}})
    assert e.value.status_code == 403 and e.value.error.code == "RequestDisallowedByPolicy"
    message = e.value.error.message
    assert message.startswith("Resource 'vm1' was disallowed by policy. Policy identifiers: '")
    ids = json.loads(message.split("Policy identifiers: '", 1)[1].rsplit("'.", 1)[0])
    assert ids[0]["policyAssignment"] == {"name": "vm-sizes", "id": assignment}
    # a tag update keeps the allowed size: it passes; a size in the list passes
    env.compute.virtual_machines.begin_update("rg", "vm1", {"tags": {"a": "b"}}).result()
    events = [ev for ev in arm.monitor_client().activity_logs.list(filter="eventTimestamp ge '2020-01-01T00:00:00Z'")
              if ev.status.value == "Failed"]
    assert any("RequestDisallowedByPolicy" in (ev.properties or {}).get("statusMessage", "") for ev in events)


def test_do_not_enforce_and_other_scopes_pass(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.rg("rg2")
    _policy(arm, env, f"/subscriptions/{arm.subscription_id}/resourceGroups/rg2")
    body = env.vm_body("rg", "vm1")
    body["properties"]["hardwareProfile"]["vmSize"] = "Standard_D4s_v5"
    env.compute.virtual_machines.begin_create_or_update("rg", "vm1", body).result()  # rg: no assignment
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_create_or_update("rg2", "vm2", {**env.vm_body("rg2", "vm2"), "properties": {
            **env.vm_body("rg2", "vm2")["properties"], "hardwareProfile": {"vmSize": "Standard_D4s_v5"}}})
    assert e.value.error.code == "RequestDisallowedByPolicy"
    _policy(arm, env, f"/subscriptions/{arm.subscription_id}/resourceGroups/rg2", enforce=False)
    env.compute.virtual_machines.begin_create_or_update("rg2", "vm2", {**env.vm_body("rg2", "vm2"), "properties": {
        **env.vm_body("rg2", "vm2")["properties"], "hardwareProfile": {"vmSize": "Standard_D4s_v5"}}}).result()
