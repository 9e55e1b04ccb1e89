"""Fault matrix for the capacity playbooks: each write of restart-set (a 3-member set), of size-not-in-cluster's
deallocate-resize-start and of its in-place resize, crossed with the ways ARM fails it (an allocation failure that
ends the operation, a lost answer, a 500). The first run succeeds (a retried start, an SDK retry) or fails saying
so; a re-run converges, and no member of the set is left deallocated."""

from __future__ import annotations

from typing import Any

import pytest
from remediation_helpers import Rig

from runbooks.errors import RunbookError
from runbooks.observe import VmRef
from runbooks.remediate import remediate_vm

# (seed, vm, scenario, method, path regex, nth)
WRITES: dict[str, tuple[str, str, str, str, str, int]] = {
    "set-deallocate-first": ("allocation-failure", "shop-02", "restart-set", "POST", r"/shop-01/deallocate$", 1),
    "set-deallocate-second": ("allocation-failure", "shop-02", "restart-set", "POST", r"/shop-03/deallocate$", 1),
    "set-start-vm": ("allocation-failure", "shop-02", "restart-set", "POST", r"/shop-02/start$", 1),
    "set-start-member": ("allocation-failure", "shop-02", "restart-set", "POST", r"/shop-03/start$", 1),
    "standalone-deallocate": ("size-not-in-cluster", "api-05", "deallocate-resize-start", "POST",
                              r"/api-05/deallocate$", 1),
    "standalone-resize": ("size-not-in-cluster", "api-05", "deallocate-resize-start", "PATCH",
                          r"/virtualMachines/api-05$", 1),
    "standalone-start": ("size-not-in-cluster", "api-05", "deallocate-resize-start", "POST", r"/api-05/start$", 1),
    "in-place-resize": ("size-not-in-cluster", "api-01", "resize-in-place", "PATCH", r"/virtualMachines/api-01$", 1),
}
FAULTS: dict[str, dict[str, Any]] = {
    "allocation-failed": {"action": "async-failed", "error": {
        "code": "AllocationFailed", "message": "Allocation failed. We do not have sufficient capacity for the "
                                               "requested VM size in this region."}},
    "drop-after": {"action": "drop", "when": "after"},
    "sync-allocation-failed": {"action": "error", "status": 409, "times": 1, "error": {
        "code": "AllocationFailed", "message": "Allocation failed. We do not have sufficient capacity for the "
                                               "requested VM size in this region."}},
    "500": {"action": "error", "status": 500, "times": 1,
            "error": {"code": "InternalServerError", "message": "Injected 500."}},
}
CASES = [(w, f) for w in WRITES for f in FAULTS]
RG = {"allocation-failure": "rg-alloc", "size-not-in-cluster": "rg-resize"}
VMS = {"allocation-failure": ("shop-01", "shop-02", "shop-03"), "size-not-in-cluster": ("api-01", "api-02", "api-05")}


def _power(rig: Rig, rg: str, name: str) -> tuple[str, str]:
    vm = rig.arm.compute_client(retry_total=0).virtual_machines.get(rg, name, expand="instanceView")
    return vm.hardware_profile.vm_size, next(s.code for s in vm.instance_view.statuses
                                             if s.code.startswith("PowerState/"))


@pytest.mark.parametrize(("write", "fault"), CASES, ids=[f"{w}-{f}" for w, f in CASES])
def test_capacity_fault_then_rerun_converges(rig: Rig, monkeypatch: pytest.MonkeyPatch, write: str,
                                             fault: str) -> None:
    monkeypatch.setenv("RUNBOOKS_CAPACITY_RETRY_PAUSE_S", "0")
    seed, vm, scenario, method, path, nth = WRITES[write]
    rg = RG[seed]
    rig.arm.seed(seed, **({"set_members": 3} if seed == "allocation-failure" else {}))
    rule = rig.arm.add_fault(method=method, path=path, nth=nth, **FAULTS[fault])
    ref = VmRef(rg, vm)
    were_running = [n for n in VMS[seed] if _power(rig, rg, n)[1] == "PowerState/running"]
    try:
        remediate_vm(rig.az(), ref, rig.hooks(), scenario=scenario, yes=True, verify_timeout=30)
    except RunbookError as e:
        assert "\n" not in str(e), "errors reaching the user are one line"
        down = [n for n in were_running if _power(rig, rg, n)[1] != "PowerState/running"]
        for name in down:  # nothing the run took down is left down without the error saying so
            assert f"{name} (" in str(e).split("Left down by this run:", 1)[-1], (name, str(e))
        if down:
            assert "invoke runs.rollback" in str(e)
        rig.arm.world.faults.clear()
        again = remediate_vm(rig.az(), ref, rig.hooks(), yes=True, verify_timeout=30)  # resumes the failed run
        assert again.resumed and again.outcome is not None
    assert rule["fired"] >= 1, f"the fault never fired: {write} is not a write of {scenario}"
    if seed == "allocation-failure":
        assert {_power(rig, rg, n)[1] for n in ("shop-01", "shop-02", "shop-03")} == {"PowerState/running"}
    elif vm == "api-05":
        assert _power(rig, rg, "api-05") == ("Standard_F4s_v2", "PowerState/running")
    else:  # the set member resized in place; its sibling never stopped
        assert _power(rig, rg, "api-01") == ("Standard_D4s_v5", "PowerState/running")
        assert _power(rig, rg, "api-02") == ("Standard_D2s_v5", "PowerState/running")


def test_a_member_refused_when_started_does_not_stop_the_others_of_its_wave(rig: Rig,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """start-set starts shop-01 and shop-03 together after shop-02. ARM refuses shop-01's start outright (not a
    capacity failure): shop-03 still starts, and the run fails naming shop-01 as left down by it."""
    monkeypatch.setenv("RUNBOOKS_CAPACITY_RETRY_PAUSE_S", "0")
    rig.arm.seed("allocation-failure", set_members=3)
    rule = rig.arm.add_fault(method="POST", path=r"/shop-01/start$", action="error", status=409, times=9,
                             error={"code": "OperationNotAllowed", "message": "Injected refusal of the start."})
    with pytest.raises(RunbookError) as e:
        remediate_vm(rig.az(), VmRef("rg-alloc", "shop-02"), rig.hooks(), scenario="restart-set", yes=True,
                     verify_timeout=30)
    assert rule["fired"] == 1, "a refusal that is not about capacity is not retried"
    assert _power(rig, "rg-alloc", "shop-03")[1] == "PowerState/running"
    assert _power(rig, "rg-alloc", "shop-02")[1] == "PowerState/running"
    assert "Injected refusal of the start" in str(e.value)
    assert "Left down by this run: shop-01 (deallocated)" in str(e.value)
