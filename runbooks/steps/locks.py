"""Steps around a management lock that blocked an operation on the VM: lift it, retry the operation, put it back
exactly as it was. The lock's whole definition (name, scope, level, notes, owners) is in the run's plan (the
observation and restore-lock's call), written to the run store before the first write, so a run that dies
while the lock is lifted re-creates it identical when resumed.

A lock at the subscription's scope is not lifted by a script: it covers every resource of the subscription.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from runbooks import scope_locks
from runbooks.azure import Call
from runbooks.changes import Action, Change, Expect, NoChange, Outcome, StepContext
from runbooks.errors import StepRefused
from runbooks.observe import Observation
from runbooks.steps.registry import NoParams, catalog, step

_READS = ("locks", "activity-log")
# The power actions a ReadOnly lock refuses, and the step of runbooks/steps/power.py that retries each.
RETRY_STEPS = {
    "microsoft.compute/virtualmachines/start/action": "start-vm",
    "microsoft.compute/virtualmachines/deallocate/action": "deallocate-vm",
    "microsoft.compute/virtualmachines/restart/action": "restart-vm",
    "microsoft.compute/virtualmachines/poweroff/action": "power-off-vm",
}


def _blocked(obs: Observation) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The standing refusal and its locks, from the run's first observation; StepRefused when there is none."""
    found = scope_locks.blocked(obs)
    if found is None:
        raise StepRefused(f"{obs.ref}: no operation refused ScopeLocked by a lock that is still there")
    refusal, locks = found
    for lk in locks:
        if scope_locks.scope_kind(scope_locks.lock_scope(lk), obs.vm_id) == "the subscription":
            raise StepRefused(f"{obs.ref}: {scope_locks.describe(lk, obs.vm_id)} covers the whole subscription; "
                              "lifting it is not scripted: ask its owners")
    return refusal, locks


def _lock_now(state: Observation, lock: dict[str, Any]) -> dict[str, Any] | None:
    """The lock as the plan predicts it now (None: lifted)."""
    key = str(lock.get("id", "")).lower()
    if key in state.resources:
        return state.resources[key]
    return next((lk for lk in state.locks if str(lk.get("id", "")).lower() == key), None)


def _restore_goal(lock: dict[str, Any]) -> tuple[Expect, ...]:
    d = scope_locks.definition(lock)
    return (Expect(d["id"], "exists", True), Expect(d["id"], "properties.level", d["level"]),
            Expect(d["id"], "properties.notes", d["notes"]), Expect(d["id"], "properties.owners", d["owners"]))


def _create_call(lock: dict[str, Any]) -> Call:
    d = scope_locks.definition(lock)
    props: dict[str, Any] = {"level": d["level"]}
    if d["notes"]:
        props["notes"] = d["notes"]
    if d["owners"]:
        props["owners"] = d["owners"]
    return Call("locks", "management_locks.create_or_update_by_scope",
                {"scope": d["scope"], "lock_name": d["name"], "parameters": {"properties": props}}, d["id"],
                "create", f"re-create lock {d['name']} ({d['level']})")


def _recreate(state: Observation, locks: list[dict[str, Any]]) -> Outcome:
    missing = [lk for lk in locks if not _same(_lock_now(state, lk), lk)]
    goal = tuple(e for lk in locks for e in _restore_goal(lk))
    names = ", ".join(str(lk.get("name")) for lk in locks)
    if not missing:
        return NoChange(f"lock {names} is in place as it was", goal=goal)
    creates = {str(lk["id"]): dict(lk) for lk in missing}
    return Change(f"re-create {'; '.join(scope_locks.describe(lk, state.vm_id) for lk in missing)}, exactly as it "
                  "was",
                  waves=(tuple(Action(_create_call(lk), _restore_goal(lk)) for lk in missing),), creates=creates)


def _same(now: dict[str, Any] | None, lock: dict[str, Any]) -> bool:
    if now is None:
        return False
    a, b = scope_locks.definition(now), scope_locks.definition(lock)
    return all(a[k] == b[k] for k in ("level", "notes", "owners"))


def _undo_lift(before: Observation, now: Observation, planned: Any, run: StepContext) -> Outcome | str:
    found = scope_locks.blocked(run.observed)
    if found is None:
        return "the run's observation names no blocking lock"
    return _recreate(now, found[1])


@step("lift-lock", "delete the management lock that blocked the operation (its definition is kept in the plan)",
      destructive=True, reads=_READS, undo=_undo_lift)
def lift_lock(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Delete each lock that refused the VM's standing ScopeLocked operation. Refused for a subscription lock."""
    refusal, locks = _blocked(ctx.observed)
    present = [lk for lk in locks if _lock_now(state, lk) is not None]
    gone = tuple(Expect(str(lk["id"]), "exists", False) for lk in locks)
    if not present:
        return NoChange("the blocking lock is lifted", goal=gone)
    actions = tuple(Action(Call("locks", "management_locks.delete_by_scope",
                                {"scope": scope_locks.lock_scope(lk), "lock_name": str(lk.get("name"))},
                                str(lk["id"]), "delete", f"lift lock {lk.get('name')}"),
                           (Expect(str(lk["id"]), "exists", False),)) for lk in present)
    what = refusal.get("operation_display") or refusal.get("operation")
    where = ", ".join(scope_locks.scope_kind(scope_locks.lock_scope(lk), state.vm_id) for lk in present)
    return Change(f"lift {'; '.join(scope_locks.describe(lk, state.vm_id) for lk in present)} (it refused {what})",
                  waves=(actions,), deletes=tuple(str(lk["id"]) for lk in present),
                  notes=(f"until restore-lock runs, nothing stops changes under {where}",))


def _undo_retry(before: Observation, now: Observation, planned: Any, run: StepContext) -> Outcome | str:
    found = scope_locks.blocked(run.observed)
    name = RETRY_STEPS.get(str((found or ({}, []))[0].get("operation") or "").lower())
    spec = catalog().get(name or "")
    if spec is None or spec.undo is None:
        return spec.undo_note if spec is not None and spec.undo_note else "the retried operation is not known"
    held = [lk for lk in now.locks if scope_locks.level(lk).lower() == "readonly"]
    if held:  # the lock is back: undoing the power action would need it lifted again, which is the owners' call
        return (f"{scope_locks.describe(held[0], now.vm_id)} is in place again; lift it with the owners' agreement "
                "to change the VM's power state")
    return spec.undo(before, now, planned, run)


@step("retry-blocked-operation", "run again the power action (start, deallocate, restart, power off) the lock "
      "refused, through its own step", reads=_READS, undo=_undo_retry)
def retry_blocked_operation(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """The step of runbooks/steps/power.py for the refused operation; StepRefused for any other operation (a PUT or
    PATCH: its request body is not in the activity log to send again)."""
    refusal, _ = _blocked(ctx.observed)
    operation = str(refusal.get("operation") or "")
    name = RETRY_STEPS.get(operation.lower())
    if name is None:
        raise StepRefused(f"{state.ref}: the lock refused {operation}, which this playbook does not retry: lift the "
                          "lock, run that operation again yourself, then put the lock back")
    spec = catalog()[name]
    outcome = spec.fn(state, spec.params(), ctx)
    if isinstance(outcome, Change) and spec.destructive:  # a retried deallocate asks as the deallocate would
        return dataclasses.replace(outcome, destructive=True)
    return outcome


@step("restore-lock", "re-create the lifted lock exactly as it was (name, scope, level, notes, owners)",
      reads=_READS, undo=lambda before, now, planned, run: NoChange("a restored lock needs nothing undone"))
def restore_lock(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Goal: each blocking lock exists with the definition first observed. Mark it ``always: true`` in a
    scenario so that it runs even when an earlier step failed."""
    _, locks = _blocked(ctx.observed)
    return _recreate(state, locks)
