"""Permissions - List For Resource Group / For Resource (Microsoft.Authorization/permissions), over real HTTPS
through the SDK's own pipeline: the caller's permissions from its role assignments at the scope or above it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from armsim_env import REPO_ROOT, Env
from azure.core.rest import HttpRequest

from armsim import ArmSim

API = "2022-04-01"
OWNER = {"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []}
READER = {"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}


def permissions_url(arm: ArmSim, rg: str, resource: str | None = None, api: str = API) -> str:
    scope = f"/subscriptions/{arm.subscription_id}/resourcegroups/{rg}"
    if resource is not None:
        scope += f"/providers/{resource}"
    return f"{arm.endpoint}{scope}/providers/Microsoft.Authorization/permissions?api-version={api}"


def list_permissions(arm: ArmSim, principal: str, rg: str, resource: str | None = None,
                     url: str | None = None) -> tuple[int, Any]:
    """GET the permissions as ``principal`` with the SDK's pipeline (its bearer-token policy, TLS to armsim)."""
    client = arm.compute_client(credential=arm.credential(principal), retry_total=0)
    resp = client._client.send_request(HttpRequest("GET", url or permissions_url(arm, rg, resource)))
    return resp.status_code, resp.json()


def remediator() -> dict[str, list[str]]:
    doc = json.loads((REPO_ROOT / "runbooks/automation/roles/remediator.json").read_text())
    return {"actions": doc["Actions"], "notActions": doc["NotActions"], "dataActions": doc["DataActions"],
            "notDataActions": doc["NotDataActions"]}


def rbac_on(arm: ArmSim, assignments: list[tuple[str, str, str]]) -> None:
    """Turn RBAC on with the remediator and a reader role; ``assignments`` are (principal, role, scope)."""
    with arm.world.lock:
        arm.world.rbac = {"roleDefinitions": [{"id": "remediator", "roleName": "VM Remediator",
                                               "permissions": [remediator()]},
                                              {"id": "reader", "roleName": "Reader", "permissions": [READER]}],
                          "roleAssignments": [{"principalId": p, "roleDefinitionId": role, "scope": scope}
                                              for p, role, scope in assignments]}
        arm.world.config.rbac = True


def test_rbac_off_answers_as_for_an_owner(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    assert list_permissions(arm, "anyone", "rg") == (200, {"value": [OWNER]})
    # any api-version, any case in the path (ARM's router is case-insensitive)
    url = permissions_url(arm, "RG", api="2015-07-01").replace("/providers/Microsoft.Authorization/permissions",
                                                                "/PROVIDERS/microsoft.authorization/Permissions")
    assert list_permissions(arm, "anyone", "rg", url=url) == (200, {"value": [OWNER]})


def test_a_role_at_the_resource_group_is_listed_exactly(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    rbac_on(arm, [("runbook-identity", "remediator", env.rg_id("rg"))])
    status, body = list_permissions(arm, "runbook-identity", "rg")
    assert status == 200
    assert body == {"value": [remediator()]}
    assert body["value"][0]["actions"] == remediator()["actions"] and body["value"][0]["notActions"] == []


def test_assignments_of_other_groups_children_and_principals_are_not_listed(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    env.rg("rg-other")
    vm = "Microsoft.Compute/virtualMachines/vm1"
    rbac_on(arm, [("runbook-identity", "remediator", env.rg_id("rg")),
                  ("runbook-identity", "reader", env.rg_id("rg-other")),
                  ("runbook-identity", "reader", f"{env.rg_id('rg')}/providers/{vm}"),
                  ("someone-else", "reader", f"/subscriptions/{env.sub}")])
    assert list_permissions(arm, "runbook-identity", "rg") == (200, {"value": [remediator()]})
    assert list_permissions(arm, "runbook-identity", "rg-other") == (200, {"value": [READER]})
    # List For Resource counts the resource's own assignment and the group's (the resource is not looked up)
    assert list_permissions(arm, "runbook-identity", "rg", vm) == (200, {"value": [remediator(), READER]})


def test_a_subscription_assignment_is_listed_for_a_resource_group(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    rbac_on(arm, [("runbook-identity", "reader", f"/subscriptions/{env.sub}"),
                  ("runbook-identity", "remediator", env.rg_id("rg"))])
    assert list_permissions(arm, "runbook-identity", "rg") == (200, {"value": [READER, remediator()]})


def test_the_caller_needs_no_role_to_read_its_permissions(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    rbac_on(arm, [("runbook-identity", "remediator", env.rg_id("rg"))])
    assert list_permissions(arm, "stranger", "rg") == (200, {"value": []})
    # but under --rbac the token must still be one armsim issued
    resp = env.raw("GET", f"/subscriptions/{env.sub}/resourcegroups/rg/providers/Microsoft.Authorization/permissions",
                   api=API, headers={"Authorization": "Bearer not-a-jwt"})
    assert resp.status_code == 401


@pytest.mark.parametrize("rbac", [False, True])
def test_a_missing_resource_group_is_404(arm: ArmSim, env: Env, rbac: bool) -> None:
    if rbac:
        rbac_on(arm, [("runbook-identity", "remediator", f"/subscriptions/{env.sub}")])
    status, body = list_permissions(arm, "runbook-identity", "rg-missing")
    assert status == 404
    assert body["error"] == {"code": "ResourceGroupNotFound",
                             "message": "Resource group 'rg-missing' could not be found."}
