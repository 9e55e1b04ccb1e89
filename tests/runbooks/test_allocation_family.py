"""The allocation-failure playbook on armsim's allocator (scenario ``allocation-failure``, rg-alloc): detection
from the failed start in the activity log, the retry that fails honestly while the region has no capacity and
converges once it has, and distractors that are never touched."""

from __future__ import annotations

import json

import pytest
from remediation_helpers import Rig

from runbooks.errors import ApplyFailed
from runbooks.journal import LocalStore
from runbooks.observe import VmRef
from runbooks.remediate import remediate_vm, run_diagnosis
from runbooks.runs import list_runs

RG = "rg-alloc"
DISTRACTORS = ("app-02", "app-03")  # running and healthy; deallocated and never failed


def _power(rig: Rig, name: str) -> str:
    view = rig.arm.compute_client(retry_total=0).virtual_machines.instance_view(RG, name)
    return next(s.code for s in view.statuses if s.code.startswith("PowerState/"))


def test_diagnose_finds_the_failed_starts_and_leaves_the_distractors(rig: Rig) -> None:
    rig.arm.seed("allocation-failure")
    az = rig.az()
    mark = rig.arm.last_request
    for name in ("app-01", "web-01"):
        diag = run_diagnosis(az, VmRef(RG, name))
        assert diag.matched == ["allocation-failure"], name
        assert diag.recommended is not None and diag.recommended.id == "start-again", name
        assert "AllocationFailed" in diag.signals["failed-op-allocation"].detail
    assert run_diagnosis(az, VmRef(RG, "web-01")).signals["in-availability-set"].holds
    for name in DISTRACTORS:
        other = run_diagnosis(az, VmRef(RG, name))
        assert other.playbook is None and other.matched == [], name
    assert rig.arm.writes(mark) == []


def test_the_retry_fails_honestly_without_capacity_and_converges_once_capacity_is_back(rig: Rig) -> None:
    rig.arm.seed("allocation-failure")
    before = {name: _power(rig, name) for name in DISTRACTORS}
    with pytest.raises(ApplyFailed) as e:  # eastus still has no Standard_E4s_v5 capacity
        remediate_vm(rig.az(), VmRef(RG, "app-01"), rig.hooks(), yes=True)
    assert e.value.code == "AllocationFailed" and e.value.step == "start-vm"
    assert _power(rig, "app-01") == "PowerState/deallocated"
    [run] = list_runs(LocalStore(rig.home))
    assert run["status"] == "failed"
    rig.arm.set_capacity("eastus", None, size="Standard_E4s_v5")  # capacity is back
    done = rig.invoke("remediate", "--vm", f"{RG}/app-01", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming it" in done.stdout and "every condition holds" in done.stdout
    assert _power(rig, "app-01") == "PowerState/running"
    size = rig.arm.compute_client(retry_total=0).virtual_machines.get(RG, "app-01").hardware_profile.vm_size
    assert size == "Standard_E4s_v5"  # the retry does not change the size
    assert rig.arm.vm_facts(f"/subscriptions/{rig.sub}/resourceGroups/{RG}/providers/Microsoft.Compute/"
                            "virtualMachines/app-01")["cluster"]
    assert {name: _power(rig, name) for name in DISTRACTORS} == before


def test_a_member_of_an_availability_set_is_started_again_by_the_cli(rig: Rig) -> None:
    """web-01's start failed once (a one-off failure); every member of its set is deallocated, so its start may
    use any cluster. The dry run writes nothing; the run starts web-01 and only web-01."""
    rig.arm.seed("allocation-failure")
    mark = rig.arm.last_request
    dry = rig.invoke("remediate", "--vm", f"{RG}/web-01", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["playbook"] == "allocation-failure" and plan["scenario"] == "start-again"
    assert rig.arm.writes(mark) == []
    done = rig.invoke("remediate", "--vm", f"{RG}/web-01", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(w["method"], w["path"].rsplit("/", 2)[-2:]) for w in rig.arm.writes(mark)] == [
        ("POST", ["web-01", "start"])]
    assert _power(rig, "web-01") == "PowerState/running"
    assert _power(rig, "web-02") == "PowerState/deallocated"
