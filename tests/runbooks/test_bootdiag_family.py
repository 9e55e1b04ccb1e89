"""The bootdiag-storage family end to end, real SDK over real HTTPS against armsim's ``bootdiag-storage`` world:
diag-01 (its boot-diagnostics account was deleted) and diag-02 (a Premium account) cannot start; diag-03 (a
healthy Standard account), diag-04 (managed, deallocated by choice) and diag-05 (boot diagnostics disabled) must
be left alone. Faces: the library (run_diagnosis, remediate_vm, sweep, rollback), the CLI and an Automation job;
and a fault matrix over each write the fix makes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from remediation_helpers import Rig

from runbooks.automation.entry import remediate_main, sweep_main
from runbooks.errors import RunbookError
from runbooks.observe import VmRef
from runbooks.playbook import load_playbooks
from runbooks.remediate import pending_run, remediate_vm, rollback_run, run_diagnosis
from runbooks.sweep import REMEDIATED, sweep

RG = "rg-bootdiag"
TARGETS = ("diag-01", "diag-02")
DISTRACTORS = ("diag-03", "diag-04", "diag-05")
CODES = {"diag-01": "StorageAccountNotFound", "diag-02": "StorageAccountTypeNotSupported"}
OLD_URIS = {"diag-01": "https://bootdiaggone01.blob.core.windows.net/",
            "diag-02": "https://bootdiagprem01.blob.core.windows.net/"}


def seed(rig: Rig) -> dict[str, Any]:
    seeded = rig.arm.seed("bootdiag-storage")
    assert sorted(v.rsplit("/", 1)[-1] for v in seeded["targets"]) == list(TARGETS)
    return seeded


def state(rig: Rig, name: str) -> dict[str, Any]:
    """What a remediation may change about a VM: its model and the codes of its instance view and agent."""
    compute = rig.arm.compute_client(retry_total=0)
    view = compute.virtual_machines.instance_view(RG, name)
    agent = [s.display_status for s in (view.vm_agent.statuses if view.vm_agent else None) or []]
    vm = compute.virtual_machines.get(RG, name)
    return {"model": vm.as_dict(), "provisioning": vm.provisioning_state,
            "statuses": [s.code for s in view.statuses or []], "agent": agent}


def distractors(rig: Rig) -> dict[str, Any]:
    return {name: state(rig, name) for name in DISTRACTORS}


def boot_diagnostics(rig: Rig, name: str) -> tuple[bool | None, str | None]:
    """(enabled, storageUri) of the VM's boot diagnostics."""
    bd = rig.arm.compute_client(retry_total=0).virtual_machines.get(RG, name).diagnostics_profile.boot_diagnostics
    return bd.enabled, bd.storage_uri


def assert_fixed(rig: Rig, name: str) -> None:
    """Running, agent Ready, managed boot diagnostics, and Azure serves its boot-diagnostics blobs."""
    now = state(rig, name)
    assert "PowerState/running" in now["statuses"] and now["agent"] == ["Ready"], now
    assert now["provisioning"] == "Succeeded"
    assert boot_diagnostics(rig, name) == (True, None)  # managed: no storageUri
    data = rig.arm.compute_client(retry_total=0).virtual_machines.retrieve_boot_diagnostics_data(RG, name)
    assert ".blob.storage.azure.net/" in data.console_screenshot_blob_uri
    assert data.serial_console_log_blob_uri.split("?")[0].endswith(".serialconsole.log")


# --- diagnosis ------------------------------------------------------------------------------------------------


def test_diagnose_names_the_playbook_for_each_target_and_nothing_for_the_distractors(rig: Rig) -> None:
    seed(rig)
    az = rig.az()
    mark = rig.arm.last_request
    for name in TARGETS:
        diag = run_diagnosis(az, VmRef(RG, name))
        assert diag.matched == ["bootdiag-storage"], name
        assert diag.recommended is not None and diag.recommended.id == "use-managed"
        assert diag.signals["boot-storage-unusable"].holds and diag.signals["failed-op-boot-storage"].holds
        failed = diag.signals["failed-op-storage-missing" if name == "diag-01" else "failed-op-storage-type"]
        assert failed.holds and CODES[name] in failed.detail
        assert diag.signals["boot-storage-missing"].holds == (name == "diag-01")
        assert diag.signals["boot-storage-premium"].holds == (name == "diag-02")
    for name in DISTRACTORS:
        other = run_diagnosis(az, VmRef(RG, name))
        assert other.matched == [] and other.playbook is None, name
    named = run_diagnosis(az, VmRef(RG, "diag-05"), playbook="bootdiag-storage")
    assert named.signals["boot-diagnostics-disabled"].holds and not named.signals["boot-storage-unusable"].holds
    report = rig.invoke("diagnose", "--vm", f"{RG}/diag-02", "--json")
    assert report.returncode == 0, report.stderr
    got = json.loads(report.stdout)
    assert got["playbook"] == "bootdiag-storage" and got["recommended"] == "use-managed"
    assert rig.arm.writes(mark) == []


def test_a_failure_that_no_longer_stands_and_a_fixed_setting_read_right(rig: Rig) -> None:
    """The same failed start reads as resolved once a start succeeded; a VM whose setting was fixed by hand but not
    started yet is offered a plain start."""
    seed(rig)
    compute = rig.arm.compute_client(retry_total=0)
    compute.virtual_machines.begin_update(RG, "diag-01", {"properties": {"diagnosticsProfile": {
        "bootDiagnostics": {"enabled": False}}}}, polling_interval=0.05).result()
    diag = run_diagnosis(rig.az(), VmRef(RG, "diag-01"))
    assert diag.matched == ["bootdiag-storage"] and diag.recommended is not None
    assert diag.recommended.id == "start-again"
    result = remediate_vm(rig.az(), VmRef(RG, "diag-01"), rig.hooks(), yes=True)
    assert result.outcome is not None and result.outcome.made_calls == 1  # the start alone
    assert run_diagnosis(rig.az(), VmRef(RG, "diag-01")).matched == []


# --- dry run, remediate, again --------------------------------------------------------------------------------


def test_dry_run_writes_nothing_and_shows_the_model_put_and_the_start(rig: Rig) -> None:
    seed(rig)
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", f"{RG}/diag-01", "--dry-run", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert rig.arm.writes(mark) == []
    plan = json.loads(done.stdout)
    assert [(s["name"], s["destructive"]) for s in plan["steps"]] == [
        ("export-vm-definition", False), ("use-managed-boot-diagnostics", False), ("start-vm", False)]
    assert "managed" in plan["steps"][1]["summary"] and "bootdiaggone01" in plan["steps"][1]["summary"]


def test_remediate_yes_fixes_both_targets_with_two_writes_each_and_a_second_run_writes_nothing(rig: Rig) -> None:
    seed(rig)
    before = distractors(rig)
    for name in TARGETS:
        mark = rig.arm.last_request
        if name == "diag-01":  # through the CLI
            done = rig.invoke("remediate", "--vm", f"{RG}/{name}", "--yes")
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"Remediated {RG}/{name} (use-managed): 2 call(s) made" in done.stdout, done.stdout
        else:  # through the library
            result = remediate_vm(rig.az(), VmRef(RG, name), rig.hooks(), yes=True)
            assert result.outcome is not None and result.outcome.made_calls == 2
        writes = [(w["method"], w["path"].rsplit("/", 1)[-1]) for w in rig.arm.writes(mark)]
        assert writes == [("PUT", name), ("POST", "start")], writes
        assert_fixed(rig, name)
        assert pending_run(rig.az(), VmRef(RG, name)) is None
        mark = rig.arm.last_request
        again = rig.invoke("remediate", "--vm", f"{RG}/{name}", "--yes")
        assert again.returncode == 2 and "shows nothing a playbook covers" in again.stderr, again.stderr
        assert rig.arm.writes(mark) == []
        detail = run_diagnosis(rig.az(), VmRef(RG, name), playbook="bootdiag-storage").signals
        failed = detail["failed-op-boot-storage"]
        assert not failed.holds and "succeeded later" in failed.detail, failed.detail
    assert distractors(rig) == before


def test_a_named_standard_account_is_used_and_a_premium_one_is_refused_before_any_write(rig: Rig) -> None:
    seed(rig)
    ref = VmRef(RG, "diag-02")
    mark = rig.arm.last_request
    with pytest.raises(RunbookError, match=r"cannot use storage account bootdiagprem01: it is Premium_LRS"):
        remediate_vm(rig.az(), ref, rig.hooks(), yes=True, settings={"use-managed-boot-diagnostics": {
            "storage_uri": "https://bootdiagprem01.blob.core.windows.net/"}})
    with pytest.raises(RunbookError, match=r"bootdiagwest01: it is in westus, the VM in eastus"):
        remediate_vm(rig.az(), ref, rig.hooks(), yes=True, settings={"use-managed-boot-diagnostics": {
            "storage_uri": "https://bootdiagwest01.blob.core.windows.net/"}})
    bad = rig.invoke("remediate", "--vm", f"{RG}/diag-02", "--yes", "--set",
                     "use-managed-boot-diagnostics.storage_uri=http://not-a-blob-endpoint")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stdout + bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "storage_uri" in bad.stderr, bad.stderr
    assert rig.arm.writes(mark) == []
    ok = "https://bootdiagok01.blob.core.windows.net/"
    result = remediate_vm(rig.az(), ref, rig.hooks(), yes=True,
                          settings={"use-managed-boot-diagnostics": {"storage_uri": ok}})
    assert result.outcome is not None
    assert boot_diagnostics(rig, "diag-02") == (True, ok)
    assert "PowerState/running" in state(rig, "diag-02")["statuses"]
    data = rig.arm.compute_client(retry_total=0).virtual_machines.retrieve_boot_diagnostics_data(RG, "diag-02")
    assert data.console_screenshot_blob_uri.startswith(ok + "bootdiagnostics-")


# --- confirm mode and rollback ------------------------------------------------------------------------------------


def test_confirm_mode_asks_once_and_rollback_deallocates_but_cannot_restore_a_missing_account(rig: Rig) -> None:
    seed(rig)
    asked: list[str] = []
    hooks = rig.hooks()
    answer = hooks.confirm
    hooks.confirm = lambda q: asked.append(q) or answer(q)
    result = remediate_vm(rig.az(), VmRef(RG, "diag-01"), hooks)
    assert result.outcome is not None
    assert len(asked) == 1 and asked[0].startswith("Apply this plan")  # nothing destructive to ask about
    assert_fixed(rig, "diag-01")
    back, outcome = rollback_run(rig.az(), result.plan.run_id, rig.hooks(), yes=True)
    assert back.plan is not None and outcome is not None
    assert any("bootdiaggone01" in line and "Azure refuses to put it back" in line for line in back.cannot), back.cannot
    assert "PowerState/deallocated" in state(rig, "diag-01")["statuses"]  # the start is undone
    assert boot_diagnostics(rig, "diag-01") == (True, None)  # the broken account is not put back


# --- sweep and automation ---------------------------------------------------------------------------------------


def test_sweep_reports_exactly_the_targets_and_remediates_them(rig: Rig) -> None:
    seed(rig)
    before = distractors(rig)
    only = {"bootdiag-storage": load_playbooks()["bootdiag-storage"]}
    mark = rig.arm.last_request
    report = sweep(rig.az(), playbooks=only)
    assert sorted(i.name for i in report.items) == list(TARGETS), [i.to_dict() for i in report.items]
    assert rig.arm.writes(mark) == []
    fixed = sweep(rig.az(), remediate=True, playbooks=only)
    assert fixed.ok and sorted((i.name, i.scenario, i.result) for i in fixed.items) == [
        (name, "use-managed", REMEDIATED) for name in TARGETS], [i.to_dict() for i in fixed.items]
    for name in TARGETS:
        assert_fixed(rig, name)
    assert sweep(rig.az(), playbooks=only).items == []
    assert distractors(rig) == before


def test_an_automation_remediate_vm_job_fixes_a_target(rig: Rig, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in rig.arm.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RUNBOOKS_POLL_INTERVAL_S", "0.1")
    seed(rig)
    mark = rig.arm.last_request
    assert remediate_main([f'{{"vm": "{RG}/diag-02"}}']) == 0  # plan only by default
    assert sweep_main([f'{{"resource_group": "{RG}"}}']) == 0  # a Sweep-VMs job reports by default
    report = capsys.readouterr().out
    assert "diag-01" in report and "diag-02" in report, report
    assert not any(name in report for name in DISTRACTORS), report
    assert rig.arm.writes(mark) == []
    assert remediate_main([f'{{"vm": "{RG}/diag-02", "apply": true, "allow_local_store": true}}']) == 0
    out = capsys.readouterr().out
    assert f"Remediated {RG}/diag-02" in out and "ERROR:" not in out, out
    assert_fixed(rig, "diag-02")


# --- faults ---------------------------------------------------------------------------------------------------------

WRITES = {"put": ("PUT", r"/virtualMachines/diag-01$"), "start": ("POST", r"/virtualMachines/diag-01/start$")}
FAULTS: dict[str, dict[str, Any]] = {
    "500": {"action": "error", "status": 500, "times": 1,
            "error": {"code": "InternalServerError", "message": "Injected 500."}},
    "drop-after": {"action": "drop", "when": "after", "times": 1},
    "async-failed": {"action": "async-failed", "times": 1,
                     "error": {"code": "InternalExecutionError", "message": "Injected async failure."}},
}
CASES = [(w, f) for w in WRITES for f in FAULTS]


@pytest.mark.parametrize(("write", "fault"), CASES, ids=[f"{w}-{f}" for w, f in CASES])
def test_a_fault_at_each_write_then_a_rerun_converges(rig: Rig, write: str, fault: str) -> None:
    seed(rig)
    before = distractors(rig)
    method, path = WRITES[write]
    rule = rig.arm.add_fault(method=method, path=path, **FAULTS[fault])
    ref = VmRef(RG, "diag-01")
    try:
        remediate_vm(rig.az(), ref, rig.hooks(), yes=True, verify_timeout=30)
    except RunbookError as e:
        assert "\n" not in str(e)
        with rig.arm.world.lock:
            rig.arm.world.faults.clear()
        again = remediate_vm(rig.az(), ref, rig.hooks(), yes=True, verify_timeout=30)
        assert again.outcome is not None
    assert rule["fired"] >= 1, f"the fault never fired at the {write}"
    assert_fixed(rig, "diag-01")
    assert pending_run(rig.az(), ref) is None
    assert distractors(rig) == before
