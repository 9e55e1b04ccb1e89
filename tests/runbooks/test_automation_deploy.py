"""`invoke automation.deploy` and a started job, end to end on armsim: the real azure-mgmt-automation client
deploys the real wheel set; armsim's sandbox runs the published runbook under CPython 3.10 with the account's
managed identity, and the runbook remediates through ARM like any other client."""

from __future__ import annotations

import json
from typing import Any

from automation_helpers import AA_RG as RG
from automation_helpers import ACCOUNT
from remediation_helpers import Rig

from runbooks.automation.deploy import deploy
from runbooks.automation.jobs import follow_job
from runbooks.automation.package import RUNBOOKS, WheelSet


def _wheel_count(wheel_set: WheelSet) -> int:
    return len(wheel_set.wheels)


def test_deploy_creates_everything_and_a_redeploy_changes_nothing(rig: Rig, deployed: Any,
                                                                 wheel_set: WheelSet) -> None:
    client, settings, report = deployed
    assert report.principal_id
    packages = list(client.package.list_by_runtime_environment(RG, ACCOUNT, settings.runtime_environment))
    assert len(packages) == _wheel_count(wheel_set)
    assert {p.properties.provisioning_state for p in packages} == {"Succeeded"}
    for name in RUNBOOKS:
        runbook = client.runbook.get(RG, ACCOUNT, name)
        assert runbook.properties.state == "Published"
        assert runbook.properties.runtime_environment == settings.runtime_environment
        content = client.runbook.get_content(RG, ACCOUNT, name)
        assert (content.decode() if isinstance(content, bytes) else content) == wheel_set.script_text(name)
    schedules = list(client.job_schedule.list_by_automation_account(RG, ACCOUNT))
    assert len(schedules) == 1
    assert json.loads(schedules[0].properties.parameters["parameter"]) == {"max_vms": 5}

    since = rig.arm.last_request
    again = deploy(client, RG, ACCOUNT, wheel_set, settings, progress=lambda line: None)
    assert again.writes == 0, again.changes
    assert rig.arm.writes(since) == []


def test_new_sweep_parameters_replace_the_job_schedule(rig: Rig, deployed: Any, wheel_set: WheelSet) -> None:
    client, settings, _ = deployed
    old = [js.properties.job_schedule_id for js in client.job_schedule.list_by_automation_account(RG, ACCOUNT)]
    settings.sweep_parameters = {"max_vms": 2, "remediate": True}
    report = deploy(client, RG, ACCOUNT, wheel_set, settings, progress=lambda line: None)
    assert [a for _, a in report.changes if a != "unchanged"] == ["deleted", "created"]
    now = list(client.job_schedule.list_by_automation_account(RG, ACCOUNT))
    assert len(now) == 1 and now[0].properties.job_schedule_id not in old
    assert json.loads(now[0].properties.parameters["parameter"]) == {"max_vms": 2, "remediate": True}


def test_a_job_remediates_a_vm_with_the_accounts_identity(rig: Rig, deployed: Any) -> None:
    client, _, report = deployed
    rig.arm.seed("generalized-without-sysprep")
    since = rig.arm.last_request
    lines: list[str] = []
    result = follow_job(client, RG, ACCOUNT, "Remediate-VM",
                        json.dumps({"vm": "rg-demo/api-01", "scenario": "from-os-disk", "apply": True,
                                    "allow_local_store": True}),
                        timeout=120, progress=lines.append)
    assert result.status == "Completed", lines
    assert any(s["text"].startswith("Remediated rg-demo/api-01") for s in result.streams if s["type"] == "Output")
    assert not [s for s in result.streams if s["type"] == "Error"]
    writes = rig.arm.writes(since)
    vm_writes = [w for w in writes if "/virtualMachines/" in w["path"]]
    assert vm_writes and {w["principal"] for w in vm_writes} == {report.principal_id}
    assert "osstate/generalized" not in [s.lower() for s in rig.observe("rg-demo/api-01").statuses()]


def test_a_failing_job_ends_failed_with_its_error_stream(rig: Rig, deployed: Any) -> None:
    client, _, _ = deployed
    rig.arm.seed("healthy")
    result = follow_job(client, RG, ACCOUNT, "Remediate-VM",
                        '{"vm": "rg-web/web-01", "apply": true, "allow_local_store": true}',
                        timeout=120, progress=lambda line: None)
    assert result.status == "Failed"
    errors = [s["text"] for s in result.streams if s["type"] == "Error"]
    assert len(errors) == 1 and "shows nothing a playbook covers" in errors[0]


def test_a_sweep_job_reports(rig: Rig, deployed: Any) -> None:
    client, _, _ = deployed
    rig.arm.seed("generalized-without-sysprep")
    rig.arm.seed("healthy")
    since = rig.arm.last_request
    result = follow_job(client, RG, ACCOUNT, "Sweep-VMs", "{}", timeout=120, progress=lambda line: None)
    assert result.status == "Completed", result.streams
    report = json.loads(result.output.splitlines()[-1])
    found = json.dumps(report).lower()
    assert "rg-demo/providers/microsoft.compute/virtualmachines/api-01" in found
    assert "web-01" not in found
    assert [w for w in rig.arm.writes(since) if "/Microsoft.Automation/" not in w["path"]] == []


def test_a_job_under_the_remediator_role_reads_the_admin_secret_from_key_vault(rig: Rig, deployed: Any) -> None:
    """RBAC on: the account's identity holds only the shipped remediator role; the from-image admin password
    comes from Key Vault through that identity and appears nowhere in the job's streams."""
    from importlib import resources

    client, _, report = deployed
    rig.arm.seed("generalized-after-capture")
    password = "Kv-Adm1n-Only-In-The-Vault!"
    secret_url = rig.arm.set_secret("kv-ops", "vm-admin", password)
    remediator = json.loads(resources.files("runbooks.automation").joinpath("roles/remediator.json").read_text())
    with rig.arm.world.lock:
        rig.arm.world.rbac = {
            "roleDefinitions": [
                {"id": "remediator", "permissions": [{"actions": remediator["Actions"], "notActions": [],
                                                      "dataActions": remediator["DataActions"]}]},
                {"id": "operator", "permissions": [{"actions": ["*"], "notActions": []}]}],
            "roleAssignments": [
                {"principalId": report.principal_id, "roleDefinitionId": "remediator",
                 "scope": f"/subscriptions/{rig.sub}"},
                {"principalId": "armsim-user", "roleDefinitionId": "operator",  # who starts the job
                 "scope": f"/subscriptions/{rig.sub}/resourceGroups/{RG}"}]}
        rig.arm.world.config.rbac = True
    parameter = json.dumps({"vm": "rg-demo/app-01", "scenario": "from-image", "admin_secret": secret_url,
                            "apply": True, "allow_local_store": True})
    result = follow_job(client, RG, ACCOUNT, "Remediate-VM", parameter, timeout=180,
                        progress=lambda line: None)
    assert result.status == "Completed", result.streams
    assert password not in json.dumps(result.streams) and password not in result.output
    rig.arm.world.config.rbac = False  # the test's own look at the VM
    assert "osstate/generalized" not in [s.lower() for s in rig.observe("rg-demo/app-01").statuses()]
