"""Applying a plan: for each step, say what happens, ask before destructive ones, act, wait, record.

Every call is preceded by a check of the world (BundleWrap's habit: observe, then fix only what is not
yet right), so re-running a plan after a crash at any point converges: a snapshot, disk, NIC or VM that
already exists is not created twice, a VM already gone is not deleted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runbooks.azure import Azure, Call, finish, get_resource, start_call
from runbooks.errors import Aborted, ApplyFailed, LockLost, RunbookError, StepRefused
from runbooks.journal import RunJournal
from runbooks.observe import Observation
from runbooks.plan import Plan, PlannedStep
from runbooks.steps.verify import fallout, verify


@dataclass
class Hooks:
    """How the engine talks to the operator: ``confirm(question) -> bool`` and ``progress(line)``."""

    confirm: Callable[[str], bool]
    progress: Callable[[str], None] = print


@dataclass
class Outcome:
    plan: Plan
    after: Observation | None = None
    fallout: list[str] = field(default_factory=list)
    skipped_calls: int = 0
    made_calls: int = 0


_IN_FLIGHT = ("creating", "updating", "deleting")


def _settled(az: Azure, resource_id: str, timeout: float = 1800.0) -> dict[str, Any] | None:
    """The resource once no operation is running on it. A crashed or failed run can leave one in flight
    (a create whose answer was lost); deciding from a transitional state would collide with it."""
    deadline, pause = time.monotonic() + timeout, 0.05
    while True:
        current = get_resource(az, resource_id)
        state = str((current or {}).get("properties", {}).get("provisioningState", "Succeeded")).lower()
        if current is None or state not in _IN_FLIGHT or time.monotonic() > deadline:
            return current
        time.sleep(pause)
        pause = min(pause * 2, 5.0)


def _already_done(az: Azure, call: Call) -> bool:
    """Is the effect of this call already in place? (the re-run/resume check)"""
    current = _settled(az, call.resource_id)
    if call.effect == "delete":
        return current is None
    if current is None:
        return False
    if call.op == "virtual_machines.begin_create_or_update":
        rg, name = call.args["resource_group_name"], call.args["vm_name"]
        view = az.compute.virtual_machines.instance_view(rg, name).as_dict()
        if any(str(s.get("code", "")).lower() == "osstate/generalized" for s in view.get("statuses", [])):
            raise StepRefused(f"VM {rg}/{name} still exists and is generalized: it was not deleted; "
                              "re-run the remediation to retry from the delete step")
        return str(current.get("properties", {}).get("provisioningState")) == "Succeeded"
    return str(current.get("properties", {}).get("provisioningState", "Succeeded")) == "Succeeded"


def _ensure_running(az: Azure, call: Call, hooks: Hooks) -> None:
    """A recreated VM must end running. It does not when its create failed late and a re-run re-applied
    the model (an update leaves the power state as it was): start it."""
    if call.op != "virtual_machines.begin_create_or_update":
        return
    rg, name = call.args["resource_group_name"], call.args["vm_name"]
    view = az.compute.virtual_machines.instance_view(rg, name).as_dict()
    power = next((str(s.get("code", "")).split("/", 1)[1].lower() for s in view.get("statuses", [])
                  if str(s.get("code", "")).lower().startswith("powerstate/")), "unknown")
    if power in ("stopped", "deallocated"):
        start = Call("compute", "virtual_machines.begin_start", {"resource_group_name": rg, "vm_name": name},
                     call.resource_id, "update", f"start VM {name} (it is {power})")
        hooks.progress(f"    → {start.summary}")
        finish(start_call(az, start), start)
        hooks.progress(f"    ✓ {start.summary}")


def _guard_destructive(az: Azure, plan: Plan) -> None:
    """Before anything is destroyed, every snapshot of the plan must exist and be complete."""
    for step in plan.steps:
        if step.name != "snapshot-disks":
            continue
        for call in step.calls:
            snap = get_resource(az, call.resource_id)
            state = (snap or {}).get("properties", {}).get("provisioningState")
            if state != "Succeeded":
                raise StepRefused(f"snapshot {call.resource_id.rsplit('/', 1)[-1]} is {state or 'missing'}; "
                                  "nothing will be deleted until every disk has a complete snapshot")


def run_wave(az: Azure, step: PlannedStep, wave: list[Call], journal: RunJournal | None, hooks: Hooks,
             outcome: Outcome) -> None:
    """Start every call of a wave (they run in parallel), then wait for all of them."""
    started: list[tuple[Call, Any]] = []
    for call in wave:
        if _already_done(az, call):
            hooks.progress(f"    = {call.summary}: already done")
            outcome.skipped_calls += 1
            _ensure_running(az, call, hooks)
            continue
        if journal:
            journal.ensure_held()  # the run's lock must still be ours before anything is changed
            journal.append({"event": "call-intent", "step": step.name, "op": call.op, "resource": call.resource_id})
        hooks.progress(f"    → {call.summary}")
        try:
            started.append((call, start_call(az, call)))
        except ApplyFailed as e:
            _record_failure(journal, step, call, e)
            raise
    errors: list[ApplyFailed] = []
    for call, poller in started:
        try:
            finish(poller, call)
        except ApplyFailed as e:
            _record_failure(journal, step, call, e)
            errors.append(e)
            continue
        outcome.made_calls += 1
        if journal:
            journal.append({"event": "call-done", "step": step.name, "op": call.op, "resource": call.resource_id})
        hooks.progress(f"    ✓ {call.summary}")
        _ensure_running(az, call, hooks)
    if errors:
        first = errors[0]
        raise ApplyFailed(f"step {step.name}: {first}. Re-run the same command to retry; finished work is kept.",
                          code=first.code, step=step.name)


def _record_failure(journal: RunJournal | None, step: PlannedStep, call: Call, e: ApplyFailed) -> None:
    if journal:
        journal.append({"event": "call-failed", "step": step.name, "op": call.op, "resource": call.resource_id,
                        "code": e.code, "error": str(e)})


def execute(az: Azure, plan: Plan, journal: RunJournal, hooks: Hooks, *, yes: bool) -> Outcome:
    """Apply the plan's steps in order, skipping those the journal marks done. Raises on the first failure."""
    outcome = Outcome(plan)
    done = journal.done_steps()
    total = len(plan.steps)
    try:
        for i, step in enumerate(plan.steps):
            label = f"[{i + 1}/{total}] {step.name}"
            if i in done:
                hooks.progress(f"{label}: done in an earlier attempt")
                continue
            hooks.progress(f"{label}: {step.summary}")
            journal.append({"event": "step-start", "index": i, "step": step.name})
            if step.kind == "manual":
                if step.confirm and not yes and not hooks.confirm("Confirm the statement above and continue?"):
                    raise Aborted(f"stopped before step {i + 1} ({step.name}); nothing was changed by this step")
            elif step.kind == "calls":
                if step.destructive:
                    _guard_destructive(az, plan)
                    for note in step.notes:
                        hooks.progress(f"    ! {note}")
                    if not yes and not hooks.confirm(f"Step {i + 1} is destructive: {step.summary}. Proceed?"):
                        raise Aborted(f"stopped before step {i + 1} ({step.name}); nothing was deleted. Snapshots "
                                      "taken so far are kept")
                for wave in step.waves:
                    run_wave(az, step, wave, journal, hooks, outcome)
            elif step.kind == "verify":
                outcome.after = verify(az, plan, step.params, hooks.progress)
                hooks.progress("    ✓ provisioned, running, not generalized, agent Ready, NICs and disks as before")
            elif step.kind == "fallout":
                outcome.fallout = fallout(az, plan, outcome.after)
            journal.append({"event": "step-done", "index": i, "step": step.name})
    except LockLost:
        raise  # the journal is no longer this run's to write: whoever holds the lock now owns it
    except RunbookError as e:
        journal.append({"event": "run-failed", "error": str(e), "type": type(e).__name__})
        journal.finish("failed")
        raise
    journal.finish("succeeded")
    return outcome
