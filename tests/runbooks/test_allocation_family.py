"""The allocation-failure playbook on armsim's allocator (scenario ``allocation-failure``, rg-alloc): detection
from the failed start in the activity log, the retry that fails honestly while the region has no capacity and
converges once it has, and distractors that are never touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from remediation_helpers import Rig

from runbooks.errors import ApplyFailed
from runbooks.journal import LocalStore
from runbooks.observe import VmRef
from runbooks.playbook import load_playbook
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


# --- a member of a pinned availability set (shop-avset: shop-01 running holds a cluster without room) --------


def test_a_pinned_set_member_retries_then_restarts_the_set_in_order(rig: Rig) -> None:
    """shop-02's start fails while shop-01 holds the set's cluster. start-again (what --yes takes) fails honestly
    and changes nothing; restart-set, named, replaces that failed run: it deallocates shop-01, starts shop-02
    first (on a cluster with room), then shop-01, and both end on one cluster."""
    seeded = rig.arm.seed("allocation-failure")
    az = rig.az()
    diag = run_diagnosis(az, VmRef(RG, "shop-02"))
    assert diag.matched == ["allocation-failure"] and diag.recommended is not None
    assert diag.recommended.id == "start-again" and diag.signals["set-pinned"].holds
    assert "shop-01 (running)" in diag.signals["set-pinned"].detail
    with pytest.raises(ApplyFailed) as e:
        remediate_vm(az, VmRef(RG, "shop-02"), rig.hooks(), yes=True)
    assert e.value.code == "AllocationFailed" and "scoped to a single cluster" in str(e.value)
    mark = rig.arm.last_request
    dry = rig.invoke("remediate", "--vm", f"{RG}/shop-02", "--scenario", "restart-set", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    shown = " ".join(dry.stdout.split())  # the plan wraps within 100 columns
    assert "deallocate 1 VM of availability set shop-avset: shop-01" in shown
    assert "failed having changed nothing" in shown
    assert rig.arm.writes(mark) == []
    done = rig.invoke("remediate", "--vm", f"{RG}/shop-02", "--scenario", "restart-set", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(w["method"], w["path"].rsplit("/", 2)[-2:]) for w in rig.arm.writes(mark)] == [
        ("POST", ["shop-01", "deallocate"]), ("POST", ["shop-02", "start"]), ("POST", ["shop-01", "start"])]
    assert _power(rig, "shop-01") == _power(rig, "shop-02") == "PowerState/running"
    members = seeded["set_members"]
    clusters = {rig.arm.vm_facts(m)["cluster"] for m in members}
    assert len(clusters) == 1 and seeded["set_cluster"] not in clusters
    runs = {r["status"] for r in list_runs(LocalStore(rig.home))}
    assert runs == {"abandoned", "succeeded"}  # the failed retry is closed by the run that replaced it


def test_a_member_that_azure_cannot_place_is_retried_then_reported_and_a_rerun_converges(rig: Rig,
                                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                                        ) -> None:
    """Capacity faults at each write of restart-set: a failure of shop-01's start is retried (a transient one is
    absorbed); a lasting one fails the step naming shop-01 as still deallocated, and the same command converges
    once capacity is back. No member is left down without the run saying so."""
    monkeypatch.setenv("RUNBOOKS_CAPACITY_RETRY_PAUSE_S", "0")
    rig.arm.seed("allocation-failure")
    rig.arm.fail_allocations("eastus", 1, size="Standard_D2s_v5")  # shop-01's restart fails once
    out = remediate_vm(rig.az(), VmRef(RG, "shop-02"), rig.hooks(), scenario="restart-set", yes=True)
    assert out.outcome is not None
    assert any("trying again" in line and "attempt 2 of 3" in line for line in rig.progress)
    assert _power(rig, "shop-01") == "PowerState/running"

    rig.arm.reset()
    rig.arm.seed("allocation-failure", set_members=3)  # a fresh world: shop-01, shop-02, shop-03
    rig.progress.clear()
    rig.arm.fail_allocations("eastus", 5, size="Standard_D2s_v5")  # shop-01 and shop-03 cannot be placed for now
    with pytest.raises(ApplyFailed) as e:
        remediate_vm(rig.az(), VmRef(RG, "shop-02"), rig.hooks(), scenario="restart-set", yes=True)
    message = str(e.value)
    assert e.value.step == "start-set" and "after 3 attempts" in message
    assert "shop-01 powerState = running (found deallocated)" in message
    assert _power(rig, "shop-02") == "PowerState/running"
    rig.arm.set_capacity("eastus", None, size="Standard_D2s_v5")
    with rig.arm.world.lock:
        rig.arm.world.default.compute.allocation_failures.clear()
    again = remediate_vm(rig.az(), VmRef(RG, "shop-02"), rig.hooks(), yes=True)  # resumes the failed run
    assert again.resumed and again.outcome is not None
    assert {_power(rig, n) for n in ("shop-01", "shop-02", "shop-03")} == {"PowerState/running"}


def test_restart_set_in_confirm_mode_asks_once_for_the_set_and_runs_as_an_automation_job(
        rig: Rig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Confirm mode: the plan is approved once, then the one destructive step (every member it stops, named) is
    asked once, not once per VM. The same fix as a Remediate-VM job converges on a fresh world."""
    from runbooks.automation.entry import remediate_main

    rig.arm.seed("allocation-failure", set_members=4)
    asked: list[str] = []
    hooks = rig.hooks()
    answer = hooks.confirm
    hooks.confirm = lambda q: asked.append(q) or answer(q)
    out = remediate_vm(rig.az(), VmRef(RG, "shop-02"), hooks, scenario="restart-set")
    assert out.outcome is not None
    assert len(asked) == 2 and asked[0].startswith("Apply this plan") and "deallocate 3 VMs" in asked[1], asked
    assert {_power(rig, f"shop-0{i}") for i in range(1, 5)} == {"PowerState/running"}

    rig.arm.reset()
    rig.arm.seed("allocation-failure")
    for key, value in rig.arm.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RUNBOOKS_POLL_INTERVAL_S", "0.1")
    capsys.readouterr()
    code = remediate_main(['{"vm": "rg-alloc/shop-02", "scenario": "restart-set", "apply": true, '
                           '"allow_local_store": true}'])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    assert any(line.startswith("Remediated rg-alloc/shop-02") for line in lines), lines
    assert _power(rig, "shop-01") == _power(rig, "shop-02") == "PowerState/running"


def test_a_set_run_locks_every_member_it_writes(rig: Rig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """restart-set on shop-02 stops and starts shop-01 and shop-03: while another run holds shop-01's lock, or
    an unfinished run of shop-01 waits to be resumed, the set run is refused before its first write."""
    from runbooks.errors import JournalError, LockHeld

    monkeypatch.setenv("RUNBOOKS_CAPACITY_RETRY_PAUSE_S", "0")
    rig.arm.seed("allocation-failure", set_members=3)
    store = LocalStore(rig.home)
    shop01 = f"/subscriptions/{rig.sub}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/shop-01"
    mark = rig.arm.last_request
    with store.lock(shop01, "someone-else"), pytest.raises(LockHeld) as held:
        remediate_vm(rig.az(), VmRef(RG, "shop-02"), rig.hooks(), scenario="restart-set", yes=True,
                     store=store)
    assert "someone-else" in str(held.value) and "shop-01" in str(held.value)
    assert rig.arm.writes(mark) == []
    # an unfinished run of shop-01: a resize of its own (test_engine's playbook) whose deallocate was refused
    from test_engine import RESIZE

    path = tmp_path / "resize-test.yaml"
    path.write_text(RESIZE)
    rig.arm.add_fault(method="POST", path=r"/shop-01/deallocate$", action="error", status=409, times=1,
                      error={"code": "OperationNotAllowed", "message": "Injected refusal of the deallocate."})
    with pytest.raises(ApplyFailed):
        remediate_vm(rig.az(), VmRef(RG, "shop-01"), rig.hooks(), yes=True, store=store,
                     playbooks={"resize-test": load_playbook(path)})
    mark = rig.arm.last_request
    with pytest.raises(JournalError) as unfinished:
        remediate_vm(rig.az(), VmRef(RG, "shop-02"), rig.hooks(), scenario="restart-set", yes=True, store=store)
    assert "shop-01, which this run would also change, is unfinished" in str(unfinished.value)
    assert rig.arm.writes(mark) == []
