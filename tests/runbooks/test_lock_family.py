"""The resource-locked family (LOCK) end to end, real SDK over real HTTPS against armsim's ``resource-locked``
world: lk-01's start was refused by a ReadOnly lock on its resource group, lk-02's deallocate by a ReadOnly lock on
the VM; lk-03 (CanNotDelete lock, nothing refused) and lk-04 (refused once, the lock removed, restarted since) are
distractors. By default the playbook only reports; ``--scenario lift-lock-and-retry`` lifts the lock, retries the
power action and re-creates the lock identical, even when the retry fails or the run is killed meanwhile."""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from remediation_helpers import INVOKE, REPO, Rig, kill_when
from test_redeploy_family import FAULTS as REDEPLOY_FAULTS

from runbooks.apply import Hooks
from runbooks.automation.entry import remediate_main
from runbooks.errors import Aborted, ApplyFailed
from runbooks.observe import VmRef
from runbooks.remediate import pending_run, remediate_vm, run_diagnosis
from runbooks.sweep import SKIPPED, sweep

PLAYBOOK = "resource-locked"
SCENARIO = "lift-lock-and-retry"
LK01, LK02 = "rg-locked/lk-01", "rg-lockvm/lk-02"
DISTRACTORS = ("rg-lockvm/lk-03", "rg-lockvm/lk-04")
FREEZE_OWNERS = ("7c1f0e0a-4c57-4d4e-9a57-0e1b7f3a0001", "7c1f0e0a-4c57-4d4e-9a57-0e1b7f3a0002")
LOCK_PATH = re.compile(r"/providers/Microsoft\.Authorization/locks/", re.IGNORECASE)


def seed(rig: Rig) -> dict[str, Any]:
    seeded = rig.arm.seed(PLAYBOOK)
    assert {v.rsplit("/", 1)[-1] for v in seeded["vms"]} == {"lk-01", "lk-02", "lk-03", "lk-04"}
    return seeded


def lock_definitions(rig: Rig) -> dict[str, dict[str, Any]]:
    """Every lock of the subscription, by lower id: its full definition as ARM returns it."""
    locks = rig.arm.lock_client().management_locks.list_at_subscription_level()
    return {str(lk.id).lower(): lk.serialize(keep_readonly=True) for lk in locks}


def power(rig: Rig, ref: str) -> str | None:
    rg, name = ref.split("/")
    view = rig.arm.compute_client().virtual_machines.instance_view(rg, name)
    codes = [str(s.code) for s in view.statuses or [] if str(s.code).startswith("PowerState/")]
    return codes[0].split("/", 1)[1] if codes else None


def distractor_state(rig: Rig) -> dict[str, Any]:
    compute = rig.arm.compute_client()
    return {ref: (power(rig, ref), compute.virtual_machines.get(*ref.split("/")).as_dict()) for ref in DISTRACTORS}


def shape(writes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Each write as (method, what): the lock's name for a lock call, the action for a VM call."""
    out = []
    for w in writes:
        path = w["path"]
        out.append((w["method"], path.rsplit("/", 1)[-1] if LOCK_PATH.search(path) else
                    "/".join(path.split("/virtualMachines/", 1)[-1].split("/"))))
    return out


def last_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines, "no error line on stderr"
    return lines[-1]


# --- 1. diagnosis ---------------------------------------------------------------------------------------------------


def test_diagnose_names_the_lock_its_scope_owners_notes_and_the_refused_operation_with_zero_writes(rig: Rig) -> None:
    seeded = seed(rig)
    az = rig.az()
    mark = rig.arm.last_request

    one = run_diagnosis(az, VmRef.parse(LK01))
    assert one.playbook is not None and one.playbook.id == PLAYBOOK and one.matched == [PLAYBOOK]
    assert one.signals["failed-op-scope-locked"].holds and one.signals["still-locked"].holds
    detail = one.signals["still-locked"].detail
    assert "lock change-freeze (ReadOnly) on resource group rg-locked" in detail, detail
    assert all(owner in detail for owner in FREEZE_OWNERS) and "Quarter-end change freeze" in detail, detail
    assert "it refused Start Virtual Machine" in detail, detail
    assert [f.scenario.id for f in one.fits if f.fits] == [SCENARIO]

    two = run_diagnosis(az, VmRef.parse(LK02))
    detail = two.signals["still-locked"].detail
    assert two.matched == [PLAYBOOK] and two.signals["still-locked"].holds
    assert "lock audit-hold (ReadOnly) on the VM" in detail and "Held for a security audit" in detail, detail
    assert "5d0b2d7e-1111-4e8a-b7c2-3f0d9a6c0003" in detail and "Deallocate Virtual Machine" in detail, detail
    # the RG lock of lk-01 is not lk-02's: only the lock that refused it is named
    assert "change-freeze" not in detail

    for ref in DISTRACTORS:
        other = run_diagnosis(az, VmRef.parse(ref))
        assert other.playbook is None and other.matched == [], (ref, other.matched)
    # lk-04's refusal no longer stands: its restart succeeded after the lock was removed
    named = run_diagnosis(az, VmRef.parse(DISTRACTORS[1]), playbook=PLAYBOOK)
    assert not named.signals["failed-op-scope-locked"].holds
    assert "succeeded later" in named.signals["failed-op-scope-locked"].detail

    done = rig.invoke("diagnose", "--vm", LK01, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["playbook"] == PLAYBOOK and report["matched"] == [PLAYBOOK]
    assert [op["error_code"] for op in report["failed_operations"]] == ["ScopeLocked"]
    assert rig.arm.writes(mark) == []
    assert {v.lower() for v in seeded["locks"].values()} <= set(lock_definitions(rig))


# --- 2. report only by default ----------------------------------------------------------------------------------------


def test_remediate_without_a_scenario_prints_the_report_and_writes_nothing(rig: Rig,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    seed(rig)
    locks = lock_definitions(rig)
    mark = rig.arm.last_request

    done = rig.invoke("remediate", "--vm", LK01, "--yes")

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "It advises; nothing was changed" in out, out
    assert "lock change-freeze (ReadOnly) on resource group rg-locked" in out and FREEZE_OWNERS[1] in out, out
    assert f"invoke remediate --vm {LK01} --scenario {SCENARIO}" in out, out
    # the Automation runbook (Remediate-VM, apply: true) only reports too
    for key, value in rig.arm.env().items():
        monkeypatch.setenv(key, value)
    assert remediate_main([json.dumps({"vm": LK02, "apply": True, "allow_local_store": True})]) == 0
    job = capsys.readouterr().out
    assert "It advises; nothing was changed" in job and "lock audit-hold (ReadOnly) on the VM" in job, job
    assert rig.arm.writes(mark) == []
    assert lock_definitions(rig) == locks
    assert power(rig, LK01) == "deallocated" and power(rig, LK02) == "running"


# --- 3. lift, retry, restore ----------------------------------------------------------------------------------------


def test_lift_lock_and_retry_starts_lk01_and_puts_the_lock_back_identical(rig: Rig) -> None:
    seeded = seed(rig)
    locks = lock_definitions(rig)
    freeze = seeded["locks"]["lk-01"].lower()
    others = distractor_state(rig)
    mark = rig.arm.last_request

    dry = rig.invoke("remediate", "--vm", LK01, "--scenario", SCENARIO, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "DELETE " in dry.stdout and "PUT " in dry.stdout and "/locks/change-freeze" in dry.stdout, dry.stdout
    assert "Dry run: nothing was changed (0 writes)" in dry.stdout
    assert rig.arm.writes(mark) == []
    done = rig.invoke("remediate", "--vm", LK01, "--scenario", SCENARIO, "--yes")

    assert done.returncode == 0, done.stdout + done.stderr
    assert shape(rig.arm.writes(mark)) == [("DELETE", "change-freeze"), ("POST", "lk-01/start"),
                                           ("PUT", "change-freeze")]
    assert power(rig, LK01) == "running"
    after = lock_definitions(rig)
    assert after == locks  # every lock, the lifted one included, is back with its full definition
    assert after[freeze]["properties"] == {
        "level": "ReadOnly", "notes": "Quarter-end change freeze: ask the finance team",
        "owners": [{"applicationId": FREEZE_OWNERS[0]}, {"applicationId": FREEZE_OWNERS[1]}]}
    assert distractor_state(rig) == others
    assert pending_run(rig.az(), VmRef.parse(LK01)) is None

    # the refusal no longer stands: a second run finds nothing to do and writes nothing
    mark = rig.arm.last_request
    again = rig.invoke("remediate", "--vm", LK01, "--scenario", SCENARIO, "--yes")
    assert again.returncode == 2, again.stdout + again.stderr
    assert last_line(again.stderr).startswith("error: ") and "Traceback" not in again.stderr
    assert rig.arm.writes(mark) == []


def test_lift_lock_and_retry_deallocates_lk02_under_a_lock_on_the_vm_itself(rig: Rig) -> None:
    seeded = seed(rig)
    locks = lock_definitions(rig)
    mark = rig.arm.last_request

    result = remediate_vm(rig.az(), VmRef.parse(LK02), rig.hooks(), scenario=SCENARIO, yes=True)

    assert result.outcome is not None and result.outcome.made_calls == 3
    assert [s.name for s in result.plan.steps] == ["lift-lock", "retry-blocked-operation", "restore-lock"]
    assert result.plan.steps[2].always
    assert shape(rig.arm.writes(mark)) == [("DELETE", "audit-hold"), ("POST", "lk-02/deallocate"),
                                           ("PUT", "audit-hold")]
    assert power(rig, LK02) == "deallocated"
    assert lock_definitions(rig) == locks
    assert seeded["locks"]["lk-02"].lower() in locks
    # the plan kept the lock's whole definition before the delete: restore-lock's call carries it
    create = result.plan.steps[2].calls[0]
    assert create.args["parameters"]["properties"] == locks[seeded["locks"]["lk-02"].lower()]["properties"]


def test_confirm_mode_asks_at_lift_lock(rig: Rig) -> None:
    seed(rig)
    locks = lock_definitions(rig)
    asked: list[str] = []

    def decline(question: str) -> bool:
        asked.append(question)
        return question.startswith("Apply this plan")

    mark = rig.arm.last_request
    with pytest.raises(Aborted, match=r"stopped before step 1 \(lift-lock\)"):
        remediate_vm(rig.az(), VmRef.parse(LK01), Hooks(confirm=decline, progress=rig.progress.append),
                     scenario=SCENARIO)
    assert len(asked) == 2 and "destructive" in asked[1] and "lift lock change-freeze" in asked[1], asked
    assert rig.arm.writes(mark) == []
    assert lock_definitions(rig) == locks and power(rig, LK01) == "deallocated"

    asked.clear()
    hooks = rig.hooks()
    answer = hooks.confirm
    hooks.confirm = lambda q: asked.append(q) or answer(q)
    result = remediate_vm(rig.az(), VmRef.parse(LK01), hooks, scenario=SCENARIO)
    assert result.outcome is not None and result.resumed  # the stopped run is resumed
    assert [q.split(":", 1)[0] for q in asked] == ["Step 1 is destructive"], asked
    assert power(rig, LK01) == "running" and lock_definitions(rig) == locks


# --- 4. the retried operation fails ---------------------------------------------------------------------------------

# the same two failures as at the redeploy POST: accepted then Failed; a 409 the SDK does not retry
FAULTS = REDEPLOY_FAULTS


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failed_retry_restores_the_lock_fails_the_run_and_a_rerun_converges(rig: Rig, fault: str) -> None:
    seed(rig)
    locks = lock_definitions(rig)
    rule = rig.arm.add_fault(method="POST", path="/virtualMachines/lk-01/start$", **FAULTS[fault])
    mark = rig.arm.last_request

    first = rig.invoke("remediate", "--vm", LK01, "--scenario", SCENARIO, "--yes")

    assert rule["fired"] == 1, rule
    assert first.returncode == 1, first.stdout + first.stderr
    assert "Traceback" not in first.stderr and len(first.stderr.strip().splitlines()) == 1, first.stderr
    line = last_line(first.stderr)
    assert line.startswith("error: step retry-blocked-operation") and FAULTS[fault]["error"]["code"] in line, line
    assert "restore-lock (runs although the run failed)" in first.stdout, first.stdout
    assert shape(rig.arm.writes(mark)) == [("DELETE", "change-freeze"), ("POST", "lk-01/start"),
                                           ("PUT", "change-freeze")]
    assert lock_definitions(rig) == locks  # never left off
    assert power(rig, LK01) == "deallocated"
    assert pending_run(rig.az(), VmRef.parse(LK01)) is not None

    with rig.arm.world.lock:
        rig.arm.world.faults.clear()
    mark = rig.arm.last_request
    again = rig.invoke("remediate", "--vm", LK01, "--scenario", SCENARIO, "--yes")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming it" in again.stdout
    assert shape(rig.arm.writes(mark)) == [("DELETE", "change-freeze"), ("POST", "lk-01/start"),
                                           ("PUT", "change-freeze")]
    assert power(rig, LK01) == "running" and lock_definitions(rig) == locks
    assert pending_run(rig.az(), VmRef.parse(LK01)) is None


def test_the_library_raises_apply_failed_with_the_lock_restored(rig: Rig) -> None:
    seed(rig)
    locks = lock_definitions(rig)
    rig.arm.add_fault(method="POST", path="/virtualMachines/lk-02/deallocate$", **FAULTS["async-failed"])
    with pytest.raises(ApplyFailed, match="InternalExecutionError"):
        remediate_vm(rig.az(), VmRef.parse(LK02), rig.hooks(), scenario=SCENARIO, yes=True)
    assert lock_definitions(rig) == locks and power(rig, LK02) == "running"


# --- 5. SIGKILL while the lock is lifted ------------------------------------------------------------------------------


ARGS = ["remediate", "--vm", LK01, "--scenario", SCENARIO, "--yes"]


def _run_held_at_the_retry(rig: Rig) -> tuple[subprocess.Popen[str], dict[str, Any], str, dict[str, Any]]:
    """The CLI in a subprocess, held (a 60 s delay fault) at the retried start, after it lifted lk-01's lock:
    the process, the fault rule, the lock's lower id, and every lock's definition before the run."""
    freeze = seed(rig)["locks"]["lk-01"].lower()
    locks = lock_definitions(rig)
    rule = rig.arm.add_fault(method="POST", path="/virtualMachines/lk-01/start$", action="delay", seconds=60)
    proc = subprocess.Popen([INVOKE, *ARGS], cwd=REPO, env=rig.env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, rule, freeze, locks


def test_sigkill_while_the_lock_is_lifted_then_rerun_restores_it_identical(rig: Rig) -> None:
    proc, rule, freeze, locks = _run_held_at_the_retry(rig)
    kill_when(proc, lambda: rule["fired"] >= 1, "the retried start")
    with rig.arm.world.lock:
        rig.arm.world.faults.clear()
    assert freeze not in lock_definitions(rig)  # killed while the lock is lifted

    again = rig.invoke(*ARGS)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "An unfinished run" in again.stdout and "resuming" in again.stdout
    assert "Traceback" not in again.stderr
    assert lock_definitions(rig) == locks
    assert power(rig, LK01) == "running"
    assert pending_run(rig.az(), VmRef.parse(LK01)) is None


def test_sigterm_while_the_lock_is_lifted_puts_it_back_before_the_process_ends(rig: Rig) -> None:
    """SIGTERM (a stopped Automation job, a shutdown) is not SIGKILL: the run still puts the lock back on its way
    out, and stays resumable for the blocked start."""
    proc, rule, freeze, locks = _run_held_at_the_retry(rig)
    deadline = time.monotonic() + 60
    while rule["fired"] < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert rule["fired"] >= 1, "the retried start was never sent"
    assert freeze not in lock_definitions(rig)  # the lock is lifted now
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert lock_definitions(rig) == locks  # put back before the process ended, with no re-run
    with rig.arm.world.lock:
        rig.arm.world.faults.clear()
    again = rig.invoke(*ARGS)
    assert again.returncode == 0, again.stdout + again.stderr
    assert lock_definitions(rig) == locks and power(rig, LK01) == "running"


# --- 6. sweep, preflight ----------------------------------------------------------------------------------------------


def test_sweep_lists_the_two_targets_and_remediating_them_only_reports(rig: Rig) -> None:
    seed(rig)
    locks = lock_definitions(rig)
    mark = rig.arm.last_request

    report = sweep(rig.az())
    assert sorted((i.ref, i.playbook) for i in report.items) == [(LK01, PLAYBOOK), (LK02, PLAYBOOK)], \
        [i.to_dict() for i in report.items]
    fixed = sweep(rig.az(), remediate=True)
    assert sorted(i.ref for i in fixed.items) == [LK01, LK02]
    assert all(i.result == SKIPPED and "advice only (no writes)" in i.detail for i in fixed.items), \
        [i.to_dict() for i in fixed.items]
    assert "lock change-freeze" in next(i.detail for i in fixed.items if i.ref == LK01)
    assert rig.arm.writes(mark) == []
    assert lock_definitions(rig) == locks


def test_preflight_refuses_a_caller_without_lock_rights_before_any_write(rig: Rig) -> None:
    from runbooks.preflight import needs

    seed(rig)
    result = remediate_vm(rig.az(), VmRef.parse(LK01), rig.hooks(), scenario=SCENARIO, yes=True, dry_run=True)
    wanted = {n.action for n in needs(c for s in result.plan.steps for c in s.calls)}
    assert wanted == {"Microsoft.Authorization/locks/delete", "Microsoft.Authorization/locks/write",
                      "Microsoft.Compute/virtualMachines/start/action"}
    # the plan may touch only the lock covering lk-01, besides the VM
    result.plan.check_confined()
    assert {c.resource_id.lower() for s in result.plan.steps for c in s.calls} <= result.plan.allowed_resources()


def test_the_shipped_remediator_role_cannot_lift_a_lock_and_preflight_says_so_before_any_write(rig: Rig) -> None:
    """Lifting a lock needs Microsoft.Authorization/locks/delete and /write (Owner, User Access Administrator):
    the shipped remediator role does not carry them, so the run is refused before its first write. The report,
    under the reader role, works."""
    from test_roles import PRINCIPAL, grant, role

    from runbooks.azure import Azure, Connection
    from runbooks.errors import AdviceOnly, StepRefused

    seed(rig)
    locks = lock_definitions(rig)
    az = Azure(Connection(rig.sub, rig.arm.endpoint, rig.arm.ca_bundle, polling_interval=0.1),
               credential=rig.arm.credential(PRINCIPAL))
    grant(rig, role("reader"))
    mark = rig.arm.last_request
    with pytest.raises(AdviceOnly, match="lock change-freeze"):
        remediate_vm(az, VmRef.parse(LK01), rig.hooks(), yes=True)
    grant(rig, role("remediator"))
    with pytest.raises(StepRefused, match="the caller lacks what the plan needs") as refused:
        remediate_vm(az, VmRef.parse(LK01), rig.hooks(), scenario=SCENARIO, yes=True)
    assert "Microsoft.Authorization/locks/delete" in str(refused.value)
    assert "Microsoft.Authorization/locks/write" in str(refused.value)
    with rig.arm.world.lock:
        rig.arm.world.config.rbac = False  # the checks below read as the test's own (unassigned) caller
    assert rig.arm.writes(mark) == []
    assert lock_definitions(rig) == locks and power(rig, LK01) == "deallocated"


# --- 7. every write of the fix crossed with the ways ARM fails one ----------------------------------------------------

WRITES = {"lock-delete": ("DELETE", r"/locks/change-freeze$"), "start-post": ("POST", r"/virtualMachines/lk-01/start$"),
          "lock-put": ("PUT", r"/locks/change-freeze$")}
MATRIX_FAULTS: dict[str, dict[str, Any]] = {
    "500": {"action": "error", "status": 500, "times": 1,
            "error": {"code": "InternalServerError", "message": "Injected 500."}},
    "409": REDEPLOY_FAULTS["409-conflict"],
    "drop-before": {"action": "drop", "when": "before"},
    "drop-after": {"action": "drop", "when": "after"},
}


@pytest.mark.parametrize(("write", "fault"), [(w, f) for w in WRITES for f in MATRIX_FAULTS])
def test_a_fault_at_any_write_of_the_fix_converges_on_a_rerun_with_the_lock_identical(rig: Rig, write: str,
                                                                                      fault: str) -> None:
    seed(rig)
    locks = lock_definitions(rig)
    method, path = WRITES[write]
    rule = rig.arm.add_fault(method=method, path=path, **MATRIX_FAULTS[fault])
    args = ("remediate", "--vm", LK01, "--scenario", SCENARIO, "--yes")

    first = rig.invoke(*args)

    assert rule["fired"] == 1, rule
    assert first.returncode in (0, 1) and "Traceback" not in first.stderr, first.stdout + first.stderr
    if first.returncode == 1:
        assert len(first.stderr.strip().splitlines()) == 1, first.stderr
        if write != "lock-put":  # the restore ran although the run failed: the lock is back already
            assert lock_definitions(rig) == locks
        else:  # the restore itself failed: the error says the lock is still to be put back
            assert "Until restore-lock succeeds it is still to do: re-create lock change-freeze" in first.stderr
    with rig.arm.world.lock:
        rig.arm.world.faults.clear()
    if first.returncode == 1:
        again = rig.invoke(*args)
        assert again.returncode == 0, again.stdout + again.stderr
    assert power(rig, LK01) == "running"
    assert lock_definitions(rig) == locks
    assert pending_run(rig.az(), VmRef.parse(LK01)) is None


def test_rollback_recreates_nothing_and_does_not_undo_the_start_under_the_restored_lock(rig: Rig) -> None:
    from runbooks.remediate import rollback_run

    seed(rig)
    locks = lock_definitions(rig)
    result = remediate_vm(rig.az(), VmRef.parse(LK01), rig.hooks(), scenario=SCENARIO, yes=True)
    assert result.outcome is not None
    mark = rig.arm.last_request

    back, outcome = rollback_run(rig.az(), result.plan.run_id, rig.hooks(), yes=True)

    assert any("retry-blocked-operation" in c and "lock change-freeze (ReadOnly)" in c and "in place again" in c
               for c in back.cannot), back.cannot
    assert rig.arm.writes(mark) == []  # the lock is there as it was, so nothing is written
    assert lock_definitions(rig) == locks and power(rig, LK01) == "running"
    assert outcome is None or outcome.made_calls == 0


def test_a_run_killed_while_the_lock_is_lifted_then_abandoned_is_rolled_back_to_the_lock_identical(rig: Rig) -> None:
    from runbooks.remediate import open_store, rollback_run
    from runbooks.runs import abandon_run

    seeded = seed(rig)
    locks = lock_definitions(rig)
    rule = rig.arm.add_fault(method="POST", path="/virtualMachines/lk-01/start$", action="delay", seconds=60)
    proc = subprocess.Popen([INVOKE, "remediate", "--vm", LK01, "--scenario", SCENARIO, "--yes"], cwd=REPO,
                            env=rig.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    kill_when(proc, lambda: rule["fired"] >= 1, "the retried start")
    with rig.arm.world.lock:
        rig.arm.world.faults.clear()
    assert seeded["locks"]["lk-01"].lower() not in lock_definitions(rig)
    pending = pending_run(rig.az(), VmRef.parse(LK01))
    assert pending is not None
    abandon_run(open_store(rig.az(), None), pending.run_id, reason="operator gave up")

    back, outcome = rollback_run(rig.az(), pending.run_id, rig.hooks(), yes=True)

    assert back.plan is not None and [s.name for s in back.plan.steps] == ["undo-lift-lock"], back
    assert outcome is not None and outcome.made_calls == 1
    assert lock_definitions(rig) == locks


def test_a_subscription_lock_is_reported_but_never_lifted_by_the_script(rig: Rig) -> None:
    from runbooks.errors import StepRefused

    seed(rig)
    locks = rig.arm.lock_client().management_locks
    locks.create_or_update_at_subscription_level("tenant-freeze", {"level": "ReadOnly", "notes": "Platform freeze"})
    with pytest.raises(ResourceExistsError, match="ScopeLocked"):
        rig.arm.compute_client(retry_total=0).virtual_machines.begin_restart("rg-lockvm", "lk-03")
    ref = VmRef.parse(DISTRACTORS[0])
    diag = run_diagnosis(rig.az(), ref)
    assert diag.matched == [PLAYBOOK]
    detail = diag.signals["still-locked"].detail
    # lk-03's own CanNotDelete lock does not refuse a restart: only the subscription's is named
    assert "lock tenant-freeze (ReadOnly) on the subscription" in detail and "keep" not in detail, detail
    mark = rig.arm.last_request
    with pytest.raises(StepRefused, match="covers the whole subscription; lifting it is not scripted"):
        remediate_vm(rig.az(), ref, rig.hooks(), scenario=SCENARIO, yes=True)
    assert rig.arm.writes(mark) == []
    assert "tenant-freeze" in {str(lk.name) for lk in locks.list_at_subscription_level()}
