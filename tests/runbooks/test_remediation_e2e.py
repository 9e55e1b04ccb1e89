"""End to end through the library, real SDK over HTTPS against armsim: both seed scenarios converge, keep
the VM's definition and every disk's content, make exactly the planned (minimum) writes, dry-run makes none,
the admin secret never leaves memory, and a sysprepped disk attached as specialized fails verification."""

from __future__ import annotations

from pathlib import Path

import pytest
from remediation_helpers import (
    PASSWORD,
    Rig,
    assert_converged,
    before,
    run_to_completion,
    seed,
)

from runbooks.errors import NotApplicable, VerifyFailed
from runbooks.journal import store_from_env
from runbooks.observe import VmRef
from runbooks.remediate import pending_run, plan_remediation, remediate

# The minimum set of writes, by resource, derived by hand from each seed: one snapshot per disk, the delete,
# a rebuild of each disk/NIC Azure deletes with the VM (and that the new VM needs), the VM, each extension;
# a public IP Azure would delete is kept instead (one NIC update before the delete sets its deleteOption to
# Detach). from-image does not rebuild the old OS disk (the image gives the VM a new one).
MINIMUM_WRITES = {
    "rg-demo/app-01": [
        "PUT snapshots/app-01_OsDisk-rb*", "PUT snapshots/app-01_data0-rb*", "PUT snapshots/app-01_data1-rb*",
        "DELETE virtualMachines/app-01", "PUT disks/app-01_data0", "PUT networkInterfaces/app-01-nic",
        "PUT networkInterfaces/app-01-nic", "PUT virtualMachines/app-01",
        "PUT virtualMachines/app-01/extensions/bootstrap",
    ],
    "rg-demo/api-01": [
        "PUT snapshots/api-01_OsDisk-rb*", "PUT snapshots/api-01_data0-rb*", "DELETE virtualMachines/api-01",
        "PUT disks/api-01_OsDisk", "PUT disks/api-01_data0", "PUT networkInterfaces/api-01-nic",
        "PUT networkInterfaces/api-01-nic", "PUT virtualMachines/api-01",
        "PUT virtualMachines/api-01/extensions/bootstrap",
    ],
}


def _write_key(entry: dict[str, object]) -> str:
    tail = str(entry["path"]).split("/providers/", 1)[1].split("/", 1)[1]
    if tail.startswith("snapshots/"):
        tail = tail.rsplit("-rb", 1)[0].rsplit("-", 1)[0] + "-rb*"  # name-<disk hash>-rb<run>
    return f"{entry['method']} {tail}"


@pytest.mark.parametrize("vm", ["rg-demo/app-01", "rg-demo/api-01"])
def test_seed_scenario_converges_with_minimum_writes_and_nothing_lost(rig: Rig, vm: str) -> None:
    seed(rig, vm)
    scenario = {"rg-demo/app-01": "from-image", "rg-demo/api-01": "from-os-disk"}[vm]
    b = before(rig, vm)
    az = rig.az()

    mark = rig.arm.last_request
    w0 = az.counter.writes
    _, plan = plan_remediation(az, VmRef.parse(vm), scenario)
    assert rig.arm.writes(mark) == [], "planning (the dry run) must not write"
    assert az.counter.writes == w0 == 0

    mark = rig.arm.last_request
    outcome = remediate(az, plan, rig.hooks(), yes=True)
    writes = rig.arm.writes(mark)
    assert sorted(_write_key(w) for w in writes) == sorted(MINIMUM_WRITES[vm])
    assert plan.writes == len(MINIMUM_WRITES[vm]) == outcome.made_calls == az.counter.writes
    assert outcome.skipped_calls == 0
    assert all(w["status"] < 300 for w in writes)

    now = assert_converged(rig, b, scenario)
    # from-image: the OS disk is new and from the image; the identity is new (reported as fallout)
    if scenario == "from-image":
        assert now.props["storageProfile"]["osDisk"]["managedDisk"]["id"].lower() != \
            b.obs.props["storageProfile"]["osDisk"]["managedDisk"]["id"].lower()
    assert any("new principal" in f for f in outcome.fallout)
    assert pending_run(az, VmRef.parse(vm)) is None

    # a second remediation has nothing to do and writes nothing
    mark = rig.arm.last_request
    with pytest.raises(NotApplicable, match="shows nothing a playbook covers"):  # the old failed start is past
        plan_remediation(az, VmRef.parse(vm), scenario)
    assert rig.arm.writes(mark) == []


def test_rare_properties_are_carried_over(rig: Rig) -> None:
    """Creation-only and rarely set properties the seeds lack, added to armsim's model of app-01 (a test-side
    edit of the emulated world; a generalized VM cannot be updated through ARM)."""
    seed(rig, "rg-demo/app-01")
    vm_id = VmRef.parse("rg-demo/app-01").vm_id(rig.sub).lower()
    with rig.arm.world.lock:
        model = rig.arm.world.sub(rig.sub).compute.vms[vm_id]
        model.properties.update(licenseType="Windows_Server", priority="Regular",
                                additionalCapabilities={"hibernationEnabled": False},
                                billingProfile={"maxPrice": -1})
        model.tags["cost-center"] = "4711"
    b = before(rig, "rg-demo/app-01")
    assert b.obs.props["licenseType"] == "Windows_Server"
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/app-01"), "from-image")
    remediate(az, plan, rig.hooks(), yes=True)
    now = assert_converged(rig, b, "from-image")
    assert now.props["licenseType"] == "Windows_Server" and now.vm is not None
    assert now.vm["tags"]["cost-center"] == "4711"


def test_secret_never_leaves_memory(rig: Rig, tmp_path: Path) -> None:
    """The real CLI: the admin password is in no output, no journal file, no plan file (byte search)."""
    seed(rig, "rg-demo/app-01")
    plan_file = tmp_path / "plan.json"
    dry = rig.invoke("remediate", "--vm", "rg-demo/app-01", "--scenario", "from-image", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    done = rig.invoke("remediate", "--vm", "rg-demo/app-01",
                      "--scenario", "from-image", "--yes", "--plan-out", str(plan_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Remediated rg-demo/app-01" in done.stdout
    secret = PASSWORD.encode()
    for out in (dry.stdout, dry.stderr, done.stdout, done.stderr):
        assert PASSWORD not in out
    assert b'"$secret": "env:RUNBOOKS_ADMIN_PASSWORD"' in plan_file.read_bytes()
    files = [plan_file, *(p for p in rig.home.rglob("*") if p.is_file())]
    assert any(p.name == "journal.jsonl" for p in files) and any(p.name == "plan.json" for p in files)
    for path in files:
        assert secret not in path.read_bytes(), f"the admin password leaked into {path}"


def test_from_os_disk_on_a_sysprepped_vm_fails_verification_with_ways_back(rig: Rig) -> None:
    seed(rig, "rg-demo/app-01")
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/app-01"), "from-os-disk", verify_timeout=2)
    with pytest.raises(VerifyFailed) as info:
        remediate(az, plan, rig.hooks(), yes=True)
    message = str(info.value)
    assert "agent-ready: VM agent status: Not Ready" in message
    assert "Ways back" in message
    assert "run the alternative in one command (it closes this run): invoke remediate --vm rg-demo/app-01 " \
        "--scenario from-image" in message
    assert "invoke runs.abandon " + plan.run_id in message  # the advice closes the failed run first
    assert "app-01_OsDisk-" in message and f"-rb{plan.run_id.replace('-', '')[:8]}" in message  # snapshots named
    assert any("agent" in f for f in info.value.failures)
    # the snapshots it names exist and hold the disks' original contents
    snaps = rig.snapshot_contents()
    assert len(snaps) == 3


def test_after_a_failed_verification_the_fallback_scenario_is_one_command(rig: Rig) -> None:
    """from-os-disk on a guest that was in fact sysprepped boots into setup and fails verification. The command
    the failure prints runs from-image on the VM as it is now, in one go: the failed run is closed, the VM comes
    back from the image with its data disks' content, and the next remediate has no unfinished run."""
    seed(rig, "rg-demo/app-01")
    b = before(rig, "rg-demo/app-01")
    az, store = rig.az(), store_from_env(str(rig.home))
    _, failed = plan_remediation(az, VmRef.parse("rg-demo/app-01"), "from-os-disk", verify_timeout=2)
    with pytest.raises(VerifyFailed):
        remediate(az, failed, rig.hooks(), yes=True)
    assert not rig.observe("rg-demo/app-01").generalized  # from-image no longer fits on today's evidence
    dry = rig.invoke("remediate", "--vm", "rg-demo/app-01", "--scenario", "from-image", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    shown = " ".join(dry.stdout.split())  # the plan wraps within 100 columns
    assert f"fallback of run {failed.run_id}" in shown and "closes it" in shown
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", "rg-demo/app-01", "--scenario", "from-image", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert rig.arm.writes(mark), "the fallback wrote nothing"
    assert "Remediated rg-demo/app-01" in done.stdout
    now = assert_converged(rig, b, "from-image")  # the admin account and computer name of the first VM included
    assert "imageReference" in now.props["storageProfile"]
    journal = store.open(failed.run_id)
    assert journal.events()[-1]["event"] == "run-end" and journal.events()[-1]["status"] == "abandoned"
    assert any(e.get("event") == "run-abandoned" and "fallback scenario from-image" in e.get("reason", "")
               for e in journal.events())
    assert pending_run(az, VmRef.parse("rg-demo/app-01"), store=store) is None


def test_confirm_mode_declined_before_the_delete_changes_nothing_destructive(rig: Rig) -> None:
    from runbooks.errors import Aborted

    seed(rig, "rg-demo/app-01")
    b = before(rig, "rg-demo/app-01")
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/app-01"), "from-image")
    mark = rig.arm.last_request
    with pytest.raises(Aborted, match="nothing was deleted"):
        remediate(az, plan, rig.hooks(answer=False), yes=False)
    assert {w["method"] for w in rig.arm.writes(mark)} == {"PUT"}  # snapshots only
    assert rig.observe("rg-demo/app-01").generalized
    assert rig.disk_contents() == b.disks


def test_a_long_call_says_it_is_still_running(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """At Azure's pace a VM create takes a minute or more: the wait prints a line every RUNBOOKS_PROGRESS_EVERY_S
    seconds instead of nothing (here: armsim at 5% of Azure's durations, a line every 0.3 s)."""
    monkeypatch.setenv("RUNBOOKS_PROGRESS_EVERY_S", "0.3")
    seed(rig, "rg-demo/api-01")
    scale = rig.arm.world.config.latency_scale
    rig.arm.world.config.latency_scale = 0.05
    try:
        run_to_completion(rig, "rg-demo/api-01")
    finally:
        rig.arm.world.config.latency_scale = scale
    waits = [line for line in rig.progress if "still running" in line]
    assert any("create VM api-01" in line for line in waits), rig.progress


def test_a_snapshot_deleted_while_the_operator_is_asked_stops_the_delete(rig: Rig) -> None:
    """The backup guard reads the snapshots right before the delete, not the answers of their creates: another
    actor deleting one while the question waits stops the run with the VM and its disks untouched."""
    from runbooks.apply import Hooks
    from runbooks.errors import StepRefused

    seed(rig, "rg-demo/app-01")
    b = before(rig, "rg-demo/app-01")
    az = rig.az()
    _, plan = plan_remediation(az, VmRef.parse("rg-demo/app-01"), "from-image")
    compute = rig.arm.compute_client(retry_total=0)

    def confirm(question: str) -> bool:
        if "destructive" in question:  # meanwhile a cleanup job removes the run's OS-disk snapshot
            compute.snapshots.begin_delete("rg-demo", plan.snapshots[0].rsplit("/", 1)[-1]).result()
        return True

    with pytest.raises(StepRefused, match="missing; nothing will be deleted"):
        remediate(az, plan, Hooks(confirm=confirm, progress=rig.progress.append), yes=False)
    assert rig.observe("rg-demo/app-01").generalized  # the VM is still there
    assert rig.disk_contents() == b.disks
