"""The provisioning-failure family end to end, real SDK over real HTTPS against armsim's ``provisioning-failure``
world: app-01 (Windows) and api-01 (Linux) were deployed from images captured without Sysprep/deprovision, so
their creates timed out in OS provisioning although the guest agent ran. They are rebuilt by attaching their
own OS disk (no osProfile). web-01 (a plain timeout on a faulty host) is redeploy-vm's, and app-02 is healthy:
neither may be touched. Disk contents are armsim's hidden fingerprints; the request log proves what was written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from automation_helpers import AA_RG, ACCOUNT
from azure.core.exceptions import HttpResponseError
from remediation_helpers import Rig, assert_converged, assert_preserved_or_untouched, before, run_to_completion

from runbooks.apply import Hooks
from runbooks.automation.jobs import follow_job
from runbooks.detect import detected
from runbooks.errors import Aborted, RunbookError
from runbooks.observe import VmRef, observe
from runbooks.playbook import load_playbooks
from runbooks.remediate import pending_run, remediate_vm, resume, rollback_run, run_diagnosis
from runbooks.sweep import REMEDIATED, sweep

RG = "rg-prov"
TARGETS = ("app-01", "api-01")
OTHERS = ("web-01", "app-02")
SCENARIO = "attach-os-disk"
AGENT_RAN = "However, the VM guest agent was detected running"


def seed(rig: Rig) -> dict[str, str]:
    """Seed the provisioning-failure world; VM name → VM id."""
    seeded = rig.arm.seed("provisioning-failure")
    ids = {vm_id.rsplit("/", 1)[-1]: vm_id for vm_id in seeded["vms"]}
    assert set(ids) == {*TARGETS, *OTHERS}
    assert [i.rsplit("/", 1)[-1] for i in seeded["targets"]] == list(TARGETS)
    return ids


def untouched_state(rig: Rig) -> dict[str, Any]:
    """What a remediation of the targets must leave alone: the distractors' model, statuses, agent and hidden
    host, and the content of their disks."""
    compute = rig.arm.compute_client()
    contents = rig.disk_contents()
    out: dict[str, Any] = {}
    for name in OTHERS:
        vm = compute.virtual_machines.get(RG, name)
        view = compute.virtual_machines.instance_view(RG, name)
        sp = vm.storage_profile
        disks = [sp.os_disk.managed_disk.id, *(d.managed_disk.id for d in sp.data_disks)]
        out[name] = {"model": vm.as_dict(),
                     "statuses": [s.code for s in view.statuses or []],
                     "agent": [s.display_status for s in (view.vm_agent.statuses if view.vm_agent else None) or []],
                     "host": rig.arm.vm_facts(vm.id)["host"],
                     "disks": [contents[d.lower()] for d in disks]}
    return out


def deletes_of(writes: list[dict[str, Any]]) -> list[str]:
    return [w["path"].split("?")[0].rsplit("/", 1)[-1] for w in writes if w["method"] == "DELETE"]


# --- armsim refuses and fails the way Azure does ------------------------------------------------------------------


def test_armsim_the_unprepared_image_timeout_and_an_os_profile_beside_an_attached_disk(rig: Rig) -> None:
    seed(rig)
    compute = rig.arm.compute_client()
    vm = compute.virtual_machines.get(RG, "app-01", expand="instanceView")
    assert vm.provisioning_state == "Failed"
    failed = vm.instance_view.statuses[0]
    assert failed.code == "ProvisioningState/failed/OSProvisioningTimedOut"
    assert f"OS Provisioning for VM 'app-01' did not finish in the allotted time. {AGENT_RAN}" in failed.message
    assert "use the VHD as is with CreateOption=Attach" in failed.message
    # the host-fault timeout keeps CRP's plain wording: nothing in it blames the image
    web = compute.virtual_machines.get(RG, "web-01", expand="instanceView").instance_view.statuses[0]
    assert web.code == "ProvisioningState/failed/OSProvisioningTimedOut" and "guest agent" not in web.message

    # the article's refusal: attaching an existing (specialized) OS disk with an osProfile
    body = vm.as_dict()
    disk_id = vm.storage_profile.os_disk.managed_disk.id
    attach = {"location": body["location"], "properties": {
        "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
        "storageProfile": {"osDisk": {"osType": "Windows", "createOption": "Attach", "managedDisk": {"id": disk_id}}},
        "osProfile": {"computerName": "app-09", "adminUsername": "azureuser", "adminPassword": "Only-A-Test-1!"},
        "networkProfile": {"networkInterfaces": []}}}
    mark = rig.arm.last_request
    with pytest.raises(HttpResponseError) as e:
        compute.virtual_machines.begin_create_or_update(RG, "app-09", attach).result()
    assert e.value.status_code == 400
    assert e.value.error.code == "InvalidParameter"
    assert e.value.error.message == "Parameter 'osProfile' is not allowed."
    assert e.value.error.target == "osProfile"
    assert [w["status"] for w in rig.arm.writes(mark)] == [400]
    with pytest.raises(HttpResponseError):
        compute.virtual_machines.get(RG, "app-09")


# --- 1. diagnosis -------------------------------------------------------------------------------------------------


def test_diagnose_claims_the_targets_and_leaves_web01_to_redeploy_only(rig: Rig) -> None:
    seed(rig)
    az = rig.az()
    mark = rig.arm.last_request
    for name in TARGETS:
        diag = run_diagnosis(az, VmRef(RG, name))
        assert diag.playbook is not None and diag.playbook.id == "provisioning-failure", name
        assert diag.matched == ["provisioning-failure"], name  # redeploy-vm rules itself out (detect_unless)
        assert diag.recommended is not None and diag.recommended.id == SCENARIO
        assert AGENT_RAN in diag.signals["image-not-prepared"].detail
        assert diag.signals["provisioning-timed-out"].holds and not diag.signals["provisioned"].holds
    web = run_diagnosis(az, VmRef(RG, "web-01"))
    assert web.playbook is not None and web.playbook.id == "redeploy-vm" and web.matched == ["redeploy-vm"]
    assert web.recommended is not None and web.recommended.id == "redeploy"
    healthy = run_diagnosis(az, VmRef(RG, "app-02"))
    assert healthy.playbook is None and healthy.matched == []
    assert rig.arm.writes(mark) == []

    done = rig.invoke("diagnose", "--vm", f"{RG}/api-01", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["playbook"] == "provisioning-failure" and report["recommended"] == SCENARIO
    assert report["matched"] == ["provisioning-failure"]
    assert [op["error_code"] for op in report["failed_operations"]] == ["OSProvisioningTimedOut"]
    assert rig.arm.writes(mark) == []


def test_redeploy_named_on_a_target_does_not_claim_it(rig: Rig) -> None:
    """Even asked by name, redeploy-vm's detection holds only for a host problem: its redeploy scenario could not
    help a guest that never ran provisioning."""
    seed(rig)
    pb = load_playbooks()["redeploy-vm"]
    obs = observe(rig.az(), VmRef(RG, "app-01"), {"vm", "instance-view", "activity-log"})
    assert pb.signal("provisioning-timed-out").evaluate(obs).holds  # what alone would make it match
    assert pb.signal("image-not-prepared").evaluate(obs).holds
    assert not detected(obs, pb)
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", f"{RG}/app-01", "--playbook", "redeploy-vm", "--yes")
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "playbook redeploy-vm does not apply" in line and "image-not-prepared holds (rules it out)" in line
    assert rig.arm.writes(mark) == []


# --- 2. dry run -------------------------------------------------------------------------------------------------


def test_dry_run_shows_the_rebuild_and_writes_nothing(rig: Rig) -> None:
    seed(rig)
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", f"{RG}/app-01", "--dry-run", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert rig.arm.writes(mark) == []
    plan = json.loads(done.stdout)
    assert plan["playbook"] == "provisioning-failure" and plan["scenario"] == SCENARIO
    steps = [(s["name"], s["destructive"]) for s in plan["steps"]]
    assert ("delete-vm", True) in steps and ("deallocate-vm", True) in steps
    names = [n for n, _ in steps]
    assert names.index("snapshot-disks") < names.index("delete-vm") < names.index("create-vm-from-os-disk")
    assert not (rig.home / "runs").exists() or not any((rig.home / "runs").rglob("journal.jsonl"))


# --- 3. remediate --yes -----------------------------------------------------------------------------------------


def test_remediate_yes_rebuilds_app01_on_its_own_disk_and_leaves_the_others(rig: Rig) -> None:
    seed(rig)
    b = before(rig, f"{RG}/app-01")
    others = untouched_state(rig)
    outcome = run_to_completion(rig, f"{RG}/app-01", SCENARIO)
    assert outcome.plan.playbook == "provisioning-failure"
    now = assert_converged(rig, b, "from-os-disk")  # same OS disk id, no osProfile, data disks' content kept
    os_disk = now.props["storageProfile"]["osDisk"]
    assert os_disk["createOption"] == "Attach" and "imageReference" not in now.props["storageProfile"]
    assert len(now.props["storageProfile"]["dataDisks"]) == 2
    assert untouched_state(rig) == others
    assert pending_run(rig.az(), VmRef(RG, "app-01")) is None
    again = run_diagnosis(rig.az(), VmRef(RG, "app-01"))  # the failed create no longer stands
    assert again.playbook is None and again.matched == []


def test_cli_remediate_yes_rebuilds_the_linux_target(rig: Rig) -> None:
    seed(rig)
    b = before(rig, f"{RG}/api-01")
    others = untouched_state(rig)
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", f"{RG}/api-01", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Remediated {RG}/api-01 ({SCENARIO})" in done.stdout
    assert deletes_of(rig.arm.writes(mark)) == ["api-01"]  # the VM only: its disks and NIC were kept or rebuilt
    assert_converged(rig, b, "from-os-disk")
    assert untouched_state(rig) == others


# --- 4. confirm mode ----------------------------------------------------------------------------------------------


def test_confirm_mode_asks_before_the_delete_and_a_no_deletes_nothing(rig: Rig) -> None:
    seed(rig)
    b = before(rig, f"{RG}/app-01")
    others = untouched_state(rig)
    asked: list[str] = []

    def no_to_the_delete(question: str) -> bool:
        asked.append(question)
        return "delete VM" not in question

    mark = rig.arm.last_request
    with pytest.raises(Aborted, match="nothing was deleted"):
        remediate_vm(rig.az(), VmRef(RG, "app-01"), Hooks(confirm=no_to_the_delete, progress=rig.progress.append))
    assert any("destructive" in q and "delete VM app-01" in q for q in asked), asked
    writes = rig.arm.writes(mark)
    assert writes and deletes_of(writes) == []
    assert rig.observe(f"{RG}/app-01").vm is not None
    assert {k: v for k, v in rig.disk_contents().items() if k in b.disks} == b.disks
    assert untouched_state(rig) == others


# --- 5. sweep -----------------------------------------------------------------------------------------------------


def test_sweep_lists_the_targets_and_web01_under_redeploy(rig: Rig) -> None:
    seed(rig)
    mark = rig.arm.last_request
    report = sweep(rig.az())
    found = {i.name: (i.playbook, i.scenario) for i in report.items}
    assert found == {"app-01": ("provisioning-failure", SCENARIO), "api-01": ("provisioning-failure", SCENARIO),
                     "web-01": ("redeploy-vm", "redeploy")}
    only_redeploy = sweep(rig.az(), playbooks={"redeploy-vm": load_playbooks()["redeploy-vm"]})
    assert [i.name for i in only_redeploy.items] == ["web-01"]  # detect_unless holds in the sweep too
    assert rig.arm.writes(mark) == []

    others = untouched_state(rig)
    only = {"provisioning-failure": load_playbooks()["provisioning-failure"]}
    done = sweep(rig.az(), remediate=True, max_vms=2, playbooks=only)
    assert done.ok and done.failures() == []
    assert sorted((i.name, i.result) for i in done.items) == [("api-01", REMEDIATED), ("app-01", REMEDIATED)]
    assert untouched_state(rig) == others
    assert sweep(rig.az(), playbooks=only).items == []


# --- 6. rollback --------------------------------------------------------------------------------------------------


def test_rollback_says_what_cannot_be_undone(rig: Rig) -> None:
    seed(rig)
    outcome = run_to_completion(rig, f"{RG}/app-01", SCENARIO)
    mark = rig.arm.last_request
    dry, nothing = rollback_run(rig.az(), outcome.plan.run_id, rig.hooks(), dry_run=True)
    assert nothing is None and rig.arm.writes(mark) == []
    text = "\n".join(dry.cannot)
    assert "delete-vm) cannot be undone: a deleted VM cannot come back as it was" in text
    assert "the run's snapshots are kept" in text and "app-01_OsDisk-" in text


# --- 7. faults: the writes this playbook adds to the recreate steps, failed, then the same command again -----------

PF_WRITES = {"deallocate": ("POST", r"/virtualMachines/app-01/deallocate$"),
             "vm-delete": ("DELETE", r"/virtualMachines/app-01$"),
             "vm-put-attach": ("PUT", r"/virtualMachines/app-01$")}
PF_FAULTS = {"500": {"action": "error", "status": 500, "times": 1,
                     "error": {"code": "InternalServerError", "message": "Injected 500."}},
             "async-failed": {"action": "async-failed",
                              "error": {"code": "InternalExecutionError", "message": "Injected async failure."}},
             "drop-after": {"action": "drop", "when": "after"}}
PF_CASES = [(w, f) for w in PF_WRITES for f in PF_FAULTS]


@pytest.mark.parametrize(("write", "fault"), PF_CASES, ids=[f"{w}-{f}" for w, f in PF_CASES])
def test_a_failed_write_then_the_same_command_converges(rig: Rig, write: str, fault: str) -> None:
    seed(rig)
    b = before(rig, f"{RG}/app-01")
    method, path = PF_WRITES[write]
    rule = rig.arm.add_fault(method=method, path=path, **PF_FAULTS[fault])
    try:
        run_to_completion(rig, f"{RG}/app-01", SCENARIO, verify_timeout=30.0)
    except RunbookError as e:
        assert "\n" not in str(e), "errors reaching the user are one line"
        assert_preserved_or_untouched(rig, b, "from-os-disk")
        rig.arm.world.faults.clear()  # the outage is over
        ref = VmRef(RG, "app-01")
        if pending_run(rig.az(), ref) is not None:
            resume(rig.az(), ref, rig.hooks(), yes=True)
        else:  # refused by ARM before anything changed: the next run plans afresh
            run_to_completion(rig, f"{RG}/app-01", SCENARIO)
    assert rule["fired"] >= 1, f"the fault never fired: {write} is not a write of this remediation"
    assert_converged(rig, b, "from-os-disk")


# --- the ASR-success articles, claimed by allocation-failure: deploy again with the same parameters ---------------


def test_a_new_vm_whose_create_failed_allocation_is_started_again(rig: Rig) -> None:
    """A create refused for capacity leaves a Failed, deallocated VM; once the region has room (what the Allocation
    Success Recommender reports), allocation-failure's start-again places it with the parameters it was given."""
    from armsim.scenarios import Builder

    b = Builder(rig.arm.app)
    b.rg("rg-asr")
    subnet = b.network("rg-asr")
    rig.arm.fail_allocations("eastus", 1, size="Standard_D4s_v5")
    b.vm("rg-asr", "new-01", subnet=subnet, size="Standard_D4s_v5", extensions=False)
    rig.arm.world.settle()
    obs = rig.observe("rg-asr/new-01")
    assert obs.props["provisioningState"] == "Failed" and obs.power_state == "deallocated"
    diag = run_diagnosis(rig.az(), VmRef("rg-asr", "new-01"))
    assert diag.playbook is not None and diag.playbook.id == "allocation-failure"
    assert diag.recommended is not None and diag.recommended.id == "start-again"
    assert "virtualmachine-tdp-gt-rca-vm-allocation-failure-asr-success-newvm" in diag.playbook.articles
    outcome = run_to_completion(rig, "rg-asr/new-01")
    assert outcome.plan.scenario == "start-again"
    now = rig.observe("rg-asr/new-01")
    assert now.power_state == "running" and now.props["provisioningState"] == "Succeeded"
    assert now.props["hardwareProfile"]["vmSize"] == "Standard_D4s_v5"  # the same parameters


# --- 8. an Azure Automation job -----------------------------------------------------------------------------------


def test_an_automation_job_rebuilds_app01_with_the_accounts_identity(rig: Rig, deployed: Any) -> None:
    client, _, report = deployed
    seed(rig)
    b = before(rig, f"{RG}/app-01")
    others = untouched_state(rig)
    since = rig.arm.last_request
    lines: list[str] = []
    result = follow_job(client, AA_RG, ACCOUNT, "Remediate-VM",
                        json.dumps({"vm": f"{RG}/app-01", "apply": True, "allow_local_store": True}),
                        timeout=180, progress=lines.append)
    assert result.status == "Completed", (lines, result.streams)
    assert any(s["text"].startswith(f"Remediated {RG}/app-01") for s in result.streams if s["type"] == "Output")
    assert not [s for s in result.streams if s["type"] == "Error"]
    vm_writes = [w for w in rig.arm.writes(since) if "/Microsoft.Automation/" not in w["path"]]
    assert vm_writes and {w["principal"] for w in vm_writes} == {report.principal_id}
    assert deletes_of(vm_writes) == ["app-01"]
    assert_converged(rig, b, "from-os-disk")
    assert untouched_state(rig) == others
