"""Rollback on armsim: a run's changes undone as far as Azure allows, through the same engine, and what cannot
be undone said plainly."""

from __future__ import annotations

from pathlib import Path

from remediation_helpers import Rig, before, run_to_completion, seed
from test_engine import VM, _deallocate, _pool, _vm, _writes

from runbooks.journal import LocalStore
from runbooks.observe import VmRef
from runbooks.remediate import remediate_vm, rollback_run
from runbooks.runs import list_runs


def test_rollback_puts_the_size_and_the_power_state_back(rig: Rig, tmp_path: Path) -> None:
    rig.arm.seed("healthy")
    result = remediate_vm(rig.az(), VmRef.parse(VM), rig.hooks(), playbook="resize-test", scenario="resize",
                          yes=True, playbooks=_pool(tmp_path))
    assert _vm(rig) == ("running", "Standard_D4s_v5")
    mark = rig.arm.last_request
    dry, nothing = rollback_run(rig.az(), result.plan.run_id, rig.hooks(), dry_run=True)
    assert nothing is None and _writes(rig, mark) == []
    assert dry.plan is not None
    # newest first: the start is undone (deallocate), the resize (back to D2s_v5), the deallocate (start)
    assert [s.name for s in dry.plan.steps] == ["undo-start-vm", "undo-resize-vm", "undo-deallocate-vm"]
    _, outcome = rollback_run(rig.az(), result.plan.run_id, rig.hooks(), yes=True)
    assert outcome is not None
    assert _vm(rig) == ("running", "Standard_D2s_v5")
    assert _writes(rig, mark) == ["POST web-01/deallocate", "PATCH web-01", "POST web-01/start"]
    statuses = {r["run_id"]: r["status"] for r in list_runs(LocalStore(rig.home))}
    assert statuses[outcome.plan.run_id] == "succeeded"


def test_rollback_of_a_failed_run_closes_it_and_undoes_what_it_did(rig: Rig, tmp_path: Path) -> None:
    from runbooks.errors import ApplyFailed

    rig.arm.seed("healthy")
    rig.arm.add_fault(method="POST", path="/virtualMachines/web-01/start$", action="error", status=409, times=0,
                      error={"code": "AllocationFailed", "message": "Allocation failed."})
    try:
        remediate_vm(rig.az(), VmRef.parse(VM), rig.hooks(), playbook="resize-test", scenario="resize", yes=True,
                     playbooks=_pool(tmp_path))
    except ApplyFailed:
        pass
    else:
        raise AssertionError("the start was meant to fail")
    assert _vm(rig) == ("deallocated", "Standard_D4s_v5")
    with rig.arm.world.lock:
        rig.arm.world.faults.clear()
    failed = next(r for r in list_runs(LocalStore(rig.home)) if r["status"] == "failed")
    _, outcome = rollback_run(rig.az(), failed["run_id"], rig.hooks(), yes=True)
    assert outcome is not None and _vm(rig) == ("running", "Standard_D2s_v5")
    statuses = {r["run_id"]: r["status"] for r in list_runs(LocalStore(rig.home))}
    assert statuses[failed["run_id"]] == "abandoned"  # closed under the lock: the next remediate plans afresh


def test_a_rebuilt_vm_gets_its_disks_pre_run_content_back_and_what_cannot_be_undone_is_said(rig: Rig) -> None:
    """from-os-disk rebuilt api-01 on its own disks; the guest then wrote to them. Rollback makes a disk from each
    of the run's snapshots, swaps them in (OS disk and data disk, same LUN) while the VM is deallocated and starts
    it again. The disks taken off are kept, detached, with what was written since. Nothing is deleted."""
    seed(rig, "rg-demo/api-01")
    b = before(rig, "rg-demo/api-01")
    outcome = run_to_completion(rig, "rg-demo/api-01")
    compute = rig.arm.world.sub(rig.sub).compute
    with rig.arm.world.lock:
        for disk in compute.disks.values():
            disk.content = f"written after the run to {disk.name}"
    mark = rig.arm.last_request
    dry, nothing = rollback_run(rig.az(), outcome.plan.run_id, rig.hooks(), dry_run=True)
    assert nothing is None and rig.arm.writes(mark) == []
    text = "\n".join(dry.cannot)
    assert "delete-vm) cannot be undone: a deleted VM cannot come back as it was" in text
    assert "system-assigned identity principal" in text
    assert "the run's snapshots are kept" in text and "api-01_OsDisk-" in text
    assert dry.plan is not None
    assert [s.name for s in dry.plan.steps if s.kind == "change"] == ["undo-create-vm-from-os-disk"]
    _, done = rollback_run(rig.az(), outcome.plan.run_id, rig.hooks(), yes=True)
    assert done is not None
    writes = rig.arm.writes(mark)
    assert not [w for w in writes if w["method"] == "DELETE"]
    now = rig.observe("rg-demo/api-01")
    assert now.power_state == "running"
    sp = now.props["storageProfile"]
    attached = [sp["osDisk"], *sp["dataDisks"]]
    contents = rig.disk_contents()
    originals = sorted(v for k, v in b.disks.items())
    assert sorted(contents[e["managedDisk"]["id"].lower()] for e in attached) == originals
    assert all("-pre-" in e["name"] for e in attached)
    assert [d["lun"] for d in sp["dataDisks"]] == [d["lun"] for d in b.obs.props["storageProfile"]["dataDisks"]]
    for old_id in b.disks:  # the disks taken off: kept, detached, with what was written since
        assert contents[old_id].startswith("written after the run")
        assert compute.disks[old_id].managed_by is None
    # a second rollback of the same run finds every goal met: nothing more is written
    again = rig.arm.last_request
    rollback_run(rig.az(), outcome.plan.run_id, rig.hooks(), yes=True)
    assert [w for w in rig.arm.writes(again) if "disks" in w["path"] or w["method"] != "GET"] == []


def test_a_deallocated_vm_started_by_a_run_is_deallocated_again(rig: Rig, tmp_path: Path) -> None:
    rig.arm.seed("healthy")
    _deallocate(rig)
    result = remediate_vm(rig.az(), VmRef.parse(VM), rig.hooks(), playbook="resize-test", scenario="start-only",
                          yes=True, playbooks=_pool(tmp_path))
    assert _vm(rig)[0] == "running"
    rollback_run(rig.az(), result.plan.run_id, rig.hooks(), yes=True)
    assert _vm(rig)[0] == "deallocated"
