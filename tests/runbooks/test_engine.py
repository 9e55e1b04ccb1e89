"""The engine, on armsim through the real SDK: steps fold over the predicted state, apply checks each step's
goal against Azure (never against "the resource exists"), a step whose goal holds is skipped with its reason,
a no-op whose goal no longer holds is planned again, and diagnosis reads only what the playbooks need."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from remediation_helpers import Rig

from runbooks.errors import StepRefused
from runbooks.journal import LocalStore
from runbooks.observe import VmRef
from runbooks.playbook import Playbook, load_playbook
from runbooks.remediate import plan_remediation, remediate_vm, run_diagnosis
from runbooks.runs import list_runs
from runbooks.steps.backup import SNAPSHOT_NAME_MAX, snapshot_name

VM = "rg-web/web-01"  # the "healthy" seed: running, agent Ready
RESIZE = """\
id: resize-test
title: Test playbook
articles: [Test_Article]
detect: [exists]
signals:
  - {id: exists, description: the VM exists, source: vm-property, property: hardwareProfile.vmSize, exists: true}
  - {id: running, description: running, source: instance-view, status_code: PowerState/running}
scenarios:
  - id: resize
    title: Deallocate, resize, start
    when: [exists]
    steps:
      - run: deallocate-vm
      - run: resize-vm
        with: {size: Standard_D4s_v5}
      - run: start-vm
    verify:
      - {signal: running, holds: true, wait: true}
    verify_timeout_s: 60
  - id: start-only
    title: Start
    when: [exists]
    steps:
      - run: start-vm
"""


def _pool(tmp_path: Path) -> dict[str, Playbook]:
    path = tmp_path / "resize-test.yaml"
    path.write_text(textwrap.dedent(RESIZE))
    return {"resize-test": load_playbook(path)}


def _vm(rig: Rig) -> tuple[str, str | None]:
    vm = rig.arm.compute_client().virtual_machines.get("rg-web", "web-01", expand="instanceView").as_dict()
    power = next(s["code"].split("/", 1)[1] for s in vm["properties"]["instanceView"]["statuses"]
                 if s["code"].startswith("PowerState/"))
    return power, vm["properties"]["hardwareProfile"]["vmSize"]


def _deallocate(rig: Rig) -> None:
    rig.arm.compute_client().virtual_machines.begin_deallocate("rg-web", "web-01").result()


def _writes(rig: Rig, mark: int) -> list[str]:
    return [f"{w['method']} {str(w['path']).split('/virtualMachines/', 1)[-1]}" for w in rig.arm.writes(mark)]


def test_planning_folds_steps_over_the_predicted_state(rig: Rig, tmp_path: Path) -> None:
    rig.arm.seed("healthy")
    pool = _pool(tmp_path)
    _, plan = plan_remediation(rig.az(), VmRef.parse(VM), "resize", playbooks=pool)
    # running: deallocate is a change, the resize sees the deallocated VM, the start sees it deallocated again
    assert [(s.name, s.kind) for s in plan.steps] == [("deallocate-vm", "change"), ("resize-vm", "change"),
                                                    ("start-vm", "change")]
    assert plan.steps[2].summary == "start VM web-01 (it is deallocated)"
    assert ("properties.hardwareProfile.vmSize", "Standard_D2s_v5", "Standard_D4s_v5") in plan.diff
    _, start_only = plan_remediation(rig.az(), VmRef.parse(VM), "start-only", playbooks=pool)
    assert [(s.kind, s.summary) for s in start_only.steps] == [("noop", "VM web-01 is running")]
    assert start_only.writes == 0


def test_apply_starts_and_resizes_a_deallocated_vm_it_never_skips_them_because_it_exists(rig: Rig,
                                                                                      tmp_path: Path) -> None:
    rig.arm.seed("healthy")
    _deallocate(rig)
    mark = rig.arm.last_request
    result = remediate_vm(rig.az(), VmRef.parse(VM), rig.hooks(), playbook="resize-test", scenario="resize",
                          yes=True, playbooks=_pool(tmp_path))
    assert result.outcome is not None
    assert _vm(rig) == ("running", "Standard_D4s_v5")
    assert _writes(rig, mark) == ["PATCH web-01", "POST web-01/start"]
    assert result.outcome.made_calls == 2
    assert "[1/3] deallocate-vm: VM web-01 is deallocated" in rig.progress  # a no-op, planned as one


def test_a_step_whose_goal_already_holds_is_skipped_with_its_reason(rig: Rig, tmp_path: Path) -> None:
    rig.arm.seed("healthy")
    _deallocate(rig)
    pool = _pool(tmp_path)
    _, plan = plan_remediation(rig.az(), VmRef.parse(VM), "start-only", playbooks=pool)
    assert plan.steps[0].kind == "change"  # planned while deallocated
    rig.arm.compute_client().virtual_machines.begin_start("rg-web", "web-01").result()  # someone else starts it
    mark = rig.arm.last_request
    from runbooks.remediate import remediate

    outcome = remediate(rig.az(), plan, rig.hooks(), yes=True)
    assert _writes(rig, mark) == []
    assert outcome.skipped_steps == ["start-vm"] and outcome.made_calls == 0
    assert any("its goal already holds: web-01 powerState = running" in line for line in rig.progress)


def test_a_noop_whose_goal_no_longer_holds_is_planned_again_and_applied(rig: Rig, tmp_path: Path) -> None:
    rig.arm.seed("healthy")
    pool = _pool(tmp_path)
    _, plan = plan_remediation(rig.az(), VmRef.parse(VM), "start-only", playbooks=pool)
    assert plan.steps[0].kind == "noop"
    _deallocate(rig)  # the world moved after planning
    mark = rig.arm.last_request
    from runbooks.remediate import remediate

    outcome = remediate(rig.az(), plan, rig.hooks(), yes=True)
    assert _writes(rig, mark) == ["POST web-01/start"]
    assert outcome.made_calls == 1 and _vm(rig)[0] == "running"
    assert any("planning the step again" in line for line in rig.progress)


def test_a_destructive_step_is_confirmed_and_no_stops_before_any_write(rig: Rig, tmp_path: Path) -> None:
    from runbooks.errors import Aborted

    rig.arm.seed("healthy")
    asked: list[str] = []

    def no(question: str) -> bool:
        asked.append(question)
        return question.startswith("Apply this plan")  # the plan is approved, its destructive step is not

    from runbooks.apply import Hooks

    mark = rig.arm.last_request
    with pytest.raises(Aborted, match="stopped before step 1 \\(deallocate-vm\\)"):
        remediate_vm(rig.az(), VmRef.parse(VM), Hooks(confirm=no, progress=rig.progress.append),
                     playbook="resize-test", scenario="resize", playbooks=_pool(tmp_path))
    assert len(asked) == 2 and "3 call(s): 3 updates" in asked[0] and "destructive" in asked[1], asked
    assert _writes(rig, mark) == [] and _vm(rig) == ("running", "Standard_D2s_v5")
    # the declined run waits, stopped: runs.list says so and the next remediate resumes it
    runs = list_runs(LocalStore(rig.home))
    assert [r["status"] for r in runs] == ["stopped"]
    result = remediate_vm(rig.az(), VmRef.parse(VM), rig.hooks(), playbook="resize-test", scenario="resize",
                          yes=True, playbooks=_pool(tmp_path))
    assert result.resumed and result.plan.run_id == runs[0]["run_id"]
    assert _vm(rig) == ("running", "Standard_D4s_v5")


def test_a_plan_not_approved_writes_nothing_and_records_no_run(rig: Rig, tmp_path: Path) -> None:
    from runbooks.errors import Aborted

    rig.arm.seed("healthy")
    mark = rig.arm.last_request
    with pytest.raises(Aborted, match="was not approved: nothing was changed and no run was recorded"):
        remediate_vm(rig.az(), VmRef.parse(VM), rig.hooks(approve_plan=False), playbook="resize-test",
                     scenario="resize", playbooks=_pool(tmp_path))
    assert _writes(rig, mark) == [] and list_runs(LocalStore(rig.home)) == []


def test_deleting_a_disk_without_a_snapshot_before_is_refused_at_planning(rig: Rig, tmp_path: Path) -> None:
    rig.arm.seed("generalized-after-capture")
    pb = load_playbook(Path(__file__).resolve().parents[2] / "playbooks" / "generalized-vm.yaml")
    text = pb.path.read_text().replace("      - run: snapshot-disks\n        with: {incremental: false}\n", "", 1)
    path = tmp_path / "generalized-vm.yaml"
    path.write_text(text)
    with pytest.raises(StepRefused, match="would be deleted by delete-vm and no snapshot of it is planned"):
        plan_remediation(rig.az(), VmRef.parse("rg-demo/app-01"), "from-image",
                         playbooks={"generalized-vm": load_playbook(path)})


def test_diagnosis_reads_only_what_the_matched_playbooks_need(rig: Rig) -> None:
    rig.arm.seed("healthy")
    rig.arm.seed("generalized-after-capture")
    mark = rig.arm.last_request
    diag = run_diagnosis(rig.az(), VmRef.parse(VM))
    assert diag.playbook is None
    paths = [str(r["path"]) for r in rig.arm.requests(mark)]
    assert not any(p.endswith("/images") for p in paths), paths  # no playbook applies: no image list
    assert not any("/disks/" in p or "/networkInterfaces/" in p for p in paths), paths
    mark = rig.arm.last_request
    diag = run_diagnosis(rig.az(), VmRef.parse("rg-demo/app-01"))
    assert diag.playbook is not None and diag.playbook.id == "generalized-vm"
    assert any(str(r["path"]).endswith("/images") for r in rig.arm.requests(mark))  # its scenarios need images


def test_snapshot_names_are_unique_per_disk_and_within_azures_limit() -> None:
    prefix = "d" * 75
    a = snapshot_name(f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/{prefix}-a", prefix + "-a",
                      "0badc0de")
    b = snapshot_name(f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/{prefix}-b", prefix + "-b",
                      "0badc0de")
    assert a != b and len(a) <= SNAPSHOT_NAME_MAX and len(b) <= SNAPSHOT_NAME_MAX
    assert a.endswith("-rb0badc0de")
    again = snapshot_name(f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/{prefix}-a",
                          prefix + "-a", "0badc0de")
    assert again == a  # deterministic: a resumed run finds the snapshot it made


def test_a_resource_stuck_in_flight_is_waited_for_saying_so_then_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An edge armsim does not produce (a start that never settles): the goal read's wait says what it waits for,
    its deadline and the state seen, and after its timeout refuses with one line instead of deciding from a
    transitional state."""
    from runbooks import apply
    from runbooks.errors import ApplyFailed

    vm_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
    stuck = {"id": vm_id, "properties": {"provisioningState": "Succeeded", "instanceView": {
        "statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/starting"}]}}}
    reads: list[str] = []
    monkeypatch.setattr(apply, "get_resource", lambda az, rid: reads.append(rid) or stuck)
    said: list[str] = []
    reality = apply.Reality(None, set(), timeout=0.3, progress=said.append)  # type: ignore[arg-type]
    with pytest.raises(ApplyFailed) as e:
        reality.view(vm_id)
    assert "vm1 is still starting after 0.3 s" in str(e.value) and "\n" not in str(e.value)
    # one wait: what it waits for and its deadline, the state seen (said once, it never changed), how it ended
    assert said[0] == "    → vm1: an operation is still running on it (waiting up to 0.3s)", said
    assert [line for line in said[1:-1] if line.endswith(": starting")] == said[1:-1] and len(said) == 3, said
    assert said[-1].startswith("    ✗ vm1: an operation is still running on it: vm1 is still starting"), said
    assert len(reads) > 1  # it did wait and read again


def test_a_disk_set_to_go_with_the_vm_since_the_plan_stops_the_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    """An edge armsim cannot produce for a generalized VM (Azure refuses its updates): a data disk attached, or
    switched to deleteOption Delete, after planning would go with the VM; the backup guard reads the VM right
    before the delete and refuses, since the plan has no snapshot of that disk."""
    from types import SimpleNamespace

    from runbooks import apply
    from runbooks.errors import StepRefused
    from runbooks.plan import PlannedStep

    rg = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute"
    vm_id, os_disk, late = f"{rg}/virtualMachines/vm1", f"{rg}/disks/vm1-os", f"{rg}/disks/vm1-late"
    snap = f"{rg}/snapshots/vm1-os-rb1"
    now = {vm_id: {"id": vm_id, "properties": {"storageProfile": {
        "osDisk": {"managedDisk": {"id": os_disk}, "deleteOption": "Delete"},
        "dataDisks": [{"lun": 3, "managedDisk": {"id": late}, "deleteOption": "Delete"}]}}},
        snap: {"id": snap, "properties": {"provisioningState": "Succeeded",
                                           "creationData": {"sourceResourceId": os_disk}}}}
    monkeypatch.setattr(apply, "get_resource", lambda az, rid: now.get(rid))
    backup = PlannedStep("snapshot-disks", "snapshot", backs_up={os_disk.lower(): snap})
    delete = PlannedStep("delete-vm", "delete VM vm1", destructive=True, deletes=[vm_id, os_disk])
    plan = SimpleNamespace(steps=[backup, delete])
    with pytest.raises(StepRefused, match="disk vm1-late would be deleted and the plan has no snapshot of it"):
        apply._guard_backups(None, plan, delete)  # type: ignore[arg-type]
    now[vm_id]["properties"]["storageProfile"]["dataDisks"][0]["deleteOption"] = "Detach"
    apply._guard_backups(None, plan, delete)  # type: ignore[arg-type]  # as planned: the OS disk's snapshot holds
