"""The nic-change family end to end, real SDK over HTTPS against armsim's ``nic-change`` world: each refused NIC
change is diagnosed with its scenario and its evidence (the NICs the refused write asked for, the VM's NICs, what
its size takes); the distractors match nothing and are never touched; a dry run writes nothing; a remediation gives
the VM exactly the NICs asked for (one primary), running with its agent Ready, and a second run writes nothing;
confirm mode, the sweep, an Automation job, rollback and a fault matrix."""

from __future__ import annotations

import json
from typing import Any

import pytest
from remediation_helpers import Rig

from runbooks.apply import Hooks
from runbooks.errors import Aborted, AdviceOnly, RunbookError, StepRefused
from runbooks.observe import VmRef
from runbooks.playbook import load_playbooks
from runbooks.remediate import pending_run, remediate_vm, rollback_run, run_diagnosis
from runbooks.sweep import REMEDIATED, sweep

RG = "rg-nic"
SCENARIOS = {"nic-01": "deallocate-change-nics-start", "nic-02": "keep-one-nic", "nic-03": "resize-for-nics",
             "nic-04": "resize-for-nics", "nic-05": "change-nics-with-set-deallocated",
             "nic-06": "load-balancer-of-another-set"}
DISTRACTORS = ("nic-07", "nic-08", "an-01", "web-01")


def seed(rig: Rig) -> dict[str, Any]:
    seeded = rig.arm.seed("nic-change")
    assert {t.rsplit("/", 1)[1] for t in seeded["targets"]} == set(SCENARIOS)
    return seeded


def vm_state(rig: Rig, name: str) -> tuple[str, str, list[tuple[str, bool]]]:
    """(size, power state, [(NIC name, primary)])."""
    vm = rig.arm.compute_client(retry_total=0).virtual_machines.get(RG, name, expand="instanceView")
    power = next(s.code for s in vm.instance_view.statuses if s.code.startswith("PowerState/"))
    nics = [(n.id.rsplit("/", 1)[1], bool(n.primary)) for n in vm.network_profile.network_interfaces]
    return vm.hardware_profile.vm_size, power, nics


def agent(rig: Rig, name: str) -> str | None:
    view = rig.arm.compute_client().virtual_machines.instance_view(RG, name)
    statuses = (view.vm_agent.statuses if view.vm_agent else None) or []
    return statuses[0].display_status if statuses else None


def untouched(rig: Rig) -> dict[str, Any]:
    compute, network = rig.arm.compute_client(), rig.arm.network_client()
    out: dict[str, Any] = {}
    for name in DISTRACTORS:
        vm = compute.virtual_machines.get(RG, name)
        out[name] = (vm.as_dict(), vm_state(rig, name),
                     [network.network_interfaces.get(RG, n.id.rsplit("/", 1)[1]).as_dict()
                      for n in vm.network_profile.network_interfaces])
    return out


def nic_writes(writes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(w["method"], w["path"].rsplit("/", 1)[-1]) for w in writes]


# --- diagnosis ----------------------------------------------------------------------------------------------------


def test_each_target_is_diagnosed_with_its_scenario_and_evidence_distractors_match_nothing(rig: Rig) -> None:
    seed(rig)
    az = rig.az()
    mark = rig.arm.last_request
    for name, scenario in SCENARIOS.items():
        diag = run_diagnosis(az, VmRef(RG, name))
        assert diag.matched == ["nic-change"], name
        fitting = [f.scenario.id for f in diag.fits if f.fits]
        assert fitting == [scenario], (name, fitting)
        recommended = diag.recommended.id if diag.recommended is not None else None
        assert recommended == (scenario if scenario == "deallocate-change-nics-start" else None), name
    d1 = run_diagnosis(az, VmRef(RG, "nic-01"))
    detail = d1.signals["nics-requested"].detail
    assert "nic-01-nic (primary), nic-01-b" in detail and "the VM has nic-01-nic" in detail
    assert "Standard_D2s_v5 takes 2 NICs, accelerated networking: yes" in detail
    assert d1.signals["requested-nics-fit"].holds and not d1.signals["requested-nics-exceed-size"].holds
    d3 = run_diagnosis(az, VmRef(RG, "nic-03"))
    assert d3.signals["requested-nics-exceed-size"].holds and "nic-03-c" in d3.signals["nics-requested"].detail
    d4 = run_diagnosis(az, VmRef(RG, "nic-04"))
    assert "accelerated networking on nic-04-fast" in d4.signals["nics-requested"].detail
    assert "Standard_DS1_v2 takes 2 NICs, accelerated networking: no" in d4.signals["nics-requested"].detail
    for name in DISTRACTORS:
        other = run_diagnosis(az, VmRef(RG, name))
        assert other.matched == [] and other.playbook is None, name
    assert rig.arm.writes(mark) == []


# --- dry run, remediation, a second run -------------------------------------------------------------------------


def test_dry_run_writes_nothing(rig: Rig) -> None:
    seed(rig)
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", f"{RG}/nic-01", "--dry-run", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads(done.stdout)
    assert [s["name"] for s in plan["steps"]] == ["export-vm-definition", "deallocate-vm", "set-network-interfaces",
                                                  "start-vm"]
    assert "nic-01-nic (primary), nic-01-b" in json.dumps(plan["steps"][2])
    assert rig.arm.writes(mark) == []
    assert vm_state(rig, "nic-01") == ("Standard_D2s_v5", "PowerState/running", [("nic-01-nic", True)])


def test_remediate_gives_the_vm_the_nics_asked_for_and_a_second_run_writes_nothing(rig: Rig) -> None:
    seed(rig)
    others = untouched(rig)
    mark = rig.arm.last_request
    result = remediate_vm(rig.az(), VmRef(RG, "nic-01"), rig.hooks(), yes=True, verify_timeout=60)
    assert result.outcome is not None and result.outcome.made_calls == 3
    assert nic_writes(rig.arm.writes(mark)) == [("POST", "deallocate"), ("PATCH", "nic-01"), ("POST", "start")]
    assert vm_state(rig, "nic-01") == ("Standard_D2s_v5", "PowerState/running",
                                       [("nic-01-nic", True), ("nic-01-b", False)])
    assert agent(rig, "nic-01") == "Ready"
    b = rig.arm.network_client().network_interfaces.get(RG, "nic-01-b")
    assert b.virtual_machine.id.lower().endswith("/virtualmachines/nic-01")
    assert untouched(rig) == others
    assert pending_run(rig.az(), VmRef(RG, "nic-01")) is None
    mark = rig.arm.last_request
    again = rig.invoke("remediate", "--vm", f"{RG}/nic-01", "--yes")
    assert again.returncode == 2 and "shows nothing a playbook covers" in again.stderr, again.stdout + again.stderr
    assert rig.arm.writes(mark) == []


def test_confirm_mode_declined_at_the_deallocation_writes_nothing(rig: Rig) -> None:
    seed(rig)
    asked: list[str] = []

    def decline(question: str) -> bool:
        asked.append(question)
        return question.startswith("Apply this plan")

    mark = rig.arm.last_request
    with pytest.raises(Aborted):
        remediate_vm(rig.az(), VmRef(RG, "nic-01"), Hooks(confirm=decline, progress=rig.progress.append))
    assert any("deallocate VM nic-01" in q for q in asked), asked
    assert rig.arm.writes(mark) == []
    assert vm_state(rig, "nic-01") == ("Standard_D2s_v5", "PowerState/running", [("nic-01-nic", True)])


@pytest.mark.parametrize(("name", "nics"), [("nic-03", ["nic-03-nic", "nic-03-b", "nic-03-c"]),
                                            ("nic-04", ["nic-04-nic", "nic-04-fast"])])
def test_a_list_the_size_cannot_take_is_advice_until_resize_for_nics_is_named(rig: Rig, name: str,
                                                                              nics: list[str]) -> None:
    seed(rig)
    old_size = vm_state(rig, name)[0]
    mark = rig.arm.last_request
    with pytest.raises(AdviceOnly) as e:
        remediate_vm(rig.az(), VmRef(RG, name), rig.hooks(), yes=True)
    assert "resize-for-nics" in str(e.value)
    assert rig.arm.writes(mark) == []
    result = remediate_vm(rig.az(), VmRef(RG, name), rig.hooks(), scenario="resize-for-nics", yes=True,
                          verify_timeout=60)
    assert result.outcome is not None
    size, power, got = vm_state(rig, name)
    assert power == "PowerState/running" and [n for n, _ in got] == nics and [p for _, p in got] == \
        [True] + [False] * (len(nics) - 1)
    skus = {s.name: {c.name: c.value for c in s.capabilities}
            for s in rig.arm.compute_client().resource_skus.list(filter="location eq 'eastus'")}
    assert int(skus[size]["MaxNetworkInterfaces"]) >= len(nics) and size != old_size
    if name == "nic-04":
        assert skus[size]["AcceleratedNetworkingEnabled"] == "True"
    assert agent(rig, name) == "Ready"


def test_no_nic_left_is_refused_before_any_write(rig: Rig) -> None:
    seed(rig)
    mark = rig.arm.last_request
    with pytest.raises(AdviceOnly):
        remediate_vm(rig.az(), VmRef(RG, "nic-02"), rig.hooks(), yes=True)
    with pytest.raises(StepRefused, match="keeps at least one NIC"):
        remediate_vm(rig.az(), VmRef(RG, "nic-02"), rig.hooks(), scenario="keep-one-nic", yes=True)
    assert rig.arm.writes(mark) == []
    assert vm_state(rig, "nic-02") == ("Standard_D2s_v5", "PowerState/running", [("nic-02-nic", True)])


# --- sweep, Automation, rollback ----------------------------------------------------------------------------------


def test_sweep_lists_the_targets_and_remediates_the_one_fix_it_may_choose(rig: Rig) -> None:
    seed(rig)
    others = untouched(rig)
    only = {"nic-change": load_playbooks()["nic-change"]}
    found = sweep(rig.az(), playbooks=only)
    assert sorted((i.name, i.playbook) for i in found.items) == sorted((n, "nic-change") for n in SCENARIOS)
    report = sweep(rig.az(), remediate=True, playbooks=only, max_vms=10)
    results = {i.name: i.result for i in report.items}
    assert results.pop("nic-01") == REMEDIATED, [i.to_dict() for i in report.items]
    assert set(results.values()) == {"skipped"}, [i.to_dict() for i in report.items]  # advice only: no writes
    assert vm_state(rig, "nic-01")[2] == [("nic-01-nic", True), ("nic-01-b", False)]
    assert vm_state(rig, "nic-03")[:2] == ("Standard_D2s_v5", "PowerState/deallocated")
    assert untouched(rig) == others
    assert "nic-01" not in {i.name for i in sweep(rig.az(), playbooks=only).items}


def test_a_remediate_vm_automation_job_converges(rig: Rig, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from runbooks.automation.entry import remediate_main

    seed(rig)
    for key, value in rig.arm.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RUNBOOKS_POLL_INTERVAL_S", "0.1")
    capsys.readouterr()
    code = remediate_main([f'{{"vm": "{RG}/nic-01", "apply": true, "allow_local_store": true}}'])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    assert any(line.startswith(f"Remediated {RG}/nic-01") for line in lines), lines
    assert vm_state(rig, "nic-01") == ("Standard_D2s_v5", "PowerState/running",
                                       [("nic-01-nic", True), ("nic-01-b", False)])


def test_rollback_puts_the_old_nic_list_back(rig: Rig) -> None:
    seed(rig)
    result = remediate_vm(rig.az(), VmRef(RG, "nic-01"), rig.hooks(), yes=True, verify_timeout=60)
    assert result.outcome is not None and vm_state(rig, "nic-01")[2][1] == ("nic-01-b", False)
    back, outcome = rollback_run(rig.az(), result.plan.run_id, rig.hooks(), yes=True)
    assert back.plan is not None and outcome is not None
    assert vm_state(rig, "nic-01") == ("Standard_D2s_v5", "PowerState/running", [("nic-01-nic", True)])
    assert rig.arm.network_client().network_interfaces.get(RG, "nic-01-b").virtual_machine is None


# --- faults -------------------------------------------------------------------------------------------------------

WRITES = {"deallocate": ("POST", r"/virtualMachines/nic-01/deallocate$"),
          "patch": ("PATCH", r"/virtualMachines/nic-01$"),
          "start": ("POST", r"/virtualMachines/nic-01/start$")}
FAULTS: dict[str, dict[str, Any]] = {
    "500": {"action": "error", "status": 500, "times": 1,
            "error": {"code": "InternalServerError", "message": "Injected 500."}},
    "drop-after": {"action": "drop", "when": "after"},
}
CASES = [(w, f) for w in WRITES for f in FAULTS]


@pytest.mark.parametrize(("write", "fault"), CASES, ids=[f"{w}-{f}" for w, f in CASES])
def test_a_fault_at_each_write_then_a_rerun_converges(rig: Rig, write: str, fault: str) -> None:
    seed(rig)
    method, path = WRITES[write]
    rule = rig.arm.add_fault(method=method, path=path, nth=1, **FAULTS[fault])
    ref = VmRef(RG, "nic-01")
    try:
        remediate_vm(rig.az(), ref, rig.hooks(), yes=True, verify_timeout=60)
    except RunbookError as e:
        assert "\n" not in str(e)
        with rig.arm.world.lock:
            rig.arm.world.faults.clear()
        again = remediate_vm(rig.az(), ref, rig.hooks(), yes=True, verify_timeout=60)
        assert again.resumed and again.outcome is not None
    assert rule["fired"] >= 1
    assert vm_state(rig, "nic-01") == ("Standard_D2s_v5", "PowerState/running",
                                       [("nic-01-nic", True), ("nic-01-b", False)])
    assert pending_run(rig.az(), ref) is None


# --- the availability-set cases -----------------------------------------------------------------------------------


def test_accelerated_networking_in_a_set_needs_every_member_deallocated_then_the_set_starts(rig: Rig) -> None:
    seed(rig)
    mark = rig.arm.last_request
    with pytest.raises(AdviceOnly) as e:
        remediate_vm(rig.az(), VmRef(RG, "nic-05"), rig.hooks(), yes=True)
    assert "change-nics-with-set-deallocated" in str(e.value)
    assert rig.arm.writes(mark) == []
    result = remediate_vm(rig.az(), VmRef(RG, "nic-05"), rig.hooks(), scenario="change-nics-with-set-deallocated",
                          yes=True, verify_timeout=60)
    assert result.outcome is not None
    assert vm_state(rig, "nic-05")[1:] == ("PowerState/running", [("nic-05-nic", True), ("nic-05-fast", False)])
    assert vm_state(rig, "an-01")[1] == "PowerState/running"  # the member that was running runs again
    writes = nic_writes(rig.arm.writes(mark))
    assert ("POST", "deallocate") in writes and writes.index(("PATCH", "nic-05")) < writes.index(("POST", "start"))


def test_a_basic_load_balancer_of_another_set_is_advice_only_and_nothing_is_deleted(rig: Rig) -> None:
    seed(rig)
    mark = rig.arm.last_request
    diag = run_diagnosis(rig.az(), VmRef(RG, "nic-06"))
    assert [f.scenario.id for f in diag.fits if f.fits] == ["load-balancer-of-another-set"]
    assert "nic-06-lb" in diag.signals["nics-requested"].detail
    with pytest.raises(AdviceOnly):
        remediate_vm(rig.az(), VmRef(RG, "nic-06"), rig.hooks(), yes=True)
    plan = rig.invoke("remediate", "--vm", f"{RG}/nic-06", "--scenario", "load-balancer-of-another-set", "--dry-run",
                      "--json")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    steps = json.loads(plan.stdout)["steps"]
    assert [(s["kind"], s["waves"], s["deletes"], s["destructive"]) for s in steps] == [("manual", [], [], False)]
    assert rig.arm.writes(mark) == []
    assert vm_state(rig, "nic-06")[1:] == ("PowerState/deallocated", [("nic-06-nic", True)])


def test_a_bad_nic_list_is_one_line_and_writes_nothing(rig: Rig) -> None:
    seed(rig)
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", f"{RG}/nic-02", "--scenario", "keep-one-nic", "--yes",
                      "--set", "set-network-interfaces.nics=not a nic id!")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "set-network-interfaces" in done.stderr and "nics" in done.stderr
    assert rig.arm.writes(mark) == []
    assert vm_state(rig, "nic-02") == ("Standard_D2s_v5", "PowerState/running", [("nic-02-nic", True)])


def test_keep_one_nic_with_a_named_replacement_swaps_the_nic(rig: Rig) -> None:
    seed(rig)
    spare = rig.arm.network_client().network_interfaces.get(RG, "nic-01-b").id  # a free NIC of the same subnet
    done = rig.invoke("remediate", "--vm", f"{RG}/nic-02", "--scenario", "keep-one-nic", "--yes",
                      "--set", f"set-network-interfaces.nics={spare}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert vm_state(rig, "nic-02") == ("Standard_D2s_v5", "PowerState/running", [("nic-01-b", True)])
    assert rig.arm.network_client().network_interfaces.get(RG, "nic-02-nic").virtual_machine is None  # kept, free


def test_the_nic_change_needs_the_join_action_on_each_nic_before_any_write(rig: Rig) -> None:
    from runbooks.preflight import needs
    from runbooks.remediate import plan_remediation

    seed(rig)
    _, plan = plan_remediation(rig.az(), VmRef(RG, "nic-01"))
    calls = [a.call for s in plan.steps for wave in s.waves for a in wave]
    joins = sorted(n.resource.rsplit("/", 1)[1] for n in needs(calls)
                   if n.action == "Microsoft.Network/networkInterfaces/join/action")
    assert joins == ["nic-01-b", "nic-01-nic"]
