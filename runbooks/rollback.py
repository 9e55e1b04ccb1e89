"""Rollback: undo a finished or failed run as far as Azure allows, with the same engine (plan, show, confirm,
act, re-read, journal).

Each step that changed something says how it is undone, next to its code (``@step(..., undo=…)``): an undo
reads the state the step started from (replayed from the run's own plan) and Azure now, and returns the change
that puts the step's target back, a no-op with its reason, or why it cannot be undone. ``plan_rollback`` walks
the run's completed steps newest first; the result is an ordinary plan of its own run, whose notes say
plainly what stays changed (a deleted VM's identity principal, a host move, a released dynamic address).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from runbooks.azure import Azure
from runbooks.changes import Change, NoChange, StepContext
from runbooks.errors import JournalError, NotApplicable
from runbooks.journal import RunJournal
from runbooks.observe import Observation, observe
from runbooks.plan import CHANGE, MANUAL, NOOP, Plan, PlannedStep, plan_step
from runbooks.steps.registry import catalog


@dataclass
class RollbackPlan:
    """The plan that undoes run ``of`` (``plan``: None when nothing can or needs to be undone) and what stays."""

    of: str
    plan: Plan | None
    cannot: list[str] = field(default_factory=list)


def replay(plan: Plan) -> list[Observation]:
    """The state before each step of ``plan`` (then the final one), folded again from its own observation and
    step parameters (no playbook needed)."""
    ctx = StepContext(plan.run_id, plan.observation)
    state, states = plan.observation, [plan.observation]
    for step in plan.steps:
        if step.kind != MANUAL:
            _, state = plan_step(state, step.name, step.params, ctx)
        states.append(state)
    return states


def plan_rollback(az: Azure, journal: RunJournal) -> RollbackPlan:
    """The rollback of a run: its completed steps undone newest first, planned against Azure now."""
    original = journal.plan()
    done = journal.done_steps()
    finished = journal.finished_calls()
    if not done and not finished:
        raise NotApplicable(f"run {original.run_id} changed nothing: there is nothing to roll back")
    states = replay(original)
    now = observe(az, original.observation.ref, missing_ok=True)
    steps: list[PlannedStep] = []
    cannot: list[str] = []
    steps_ = catalog()
    run = StepContext(original.run_id, original.observation,
                      {disk.lower(): snap for s in original.steps for disk, snap in s.backs_up.items()})
    for i in sorted(range(len(original.steps)), reverse=True):
        step = original.steps[i]
        touched = any((c.op, c.resource_id.lower()) in finished for c in step.calls)
        if step.kind != CHANGE or not (i in done or touched):
            continue
        spec = steps_[step.name]
        if spec.undo is None:
            cannot.append(f"step {i + 1} ({step.name}) cannot be undone: {spec.undo_note or 'no undo is known'}")
            continue
        undo = spec.undo(states[i], now, step, run)
        if isinstance(undo, str):
            cannot.append(f"step {i + 1} ({step.name}) cannot be undone: {undo}")
        elif isinstance(undo, NoChange):
            steps.append(PlannedStep(f"undo-{step.name}", undo.reason, kind=NOOP, goal=list(undo.goal)))
        else:
            steps.append(_planned(f"undo-{step.name}", undo))
            now = undo.predict(now)
    if original.snapshots:
        cannot.append("the run's snapshots are kept (delete them once you are satisfied): "
                      + ", ".join(s.rsplit("/", 1)[-1] for s in original.snapshots))
    if not any(s.kind == CHANGE for s in steps):
        return RollbackPlan(original.run_id, None, cannot)
    rid = str(uuid.uuid4())
    rollback = Plan(rid, original.vm_id, original.ref, f"rollback:{original.playbook}", f"undo:{original.scenario}",
                    now.fingerprint(), datetime.now(timezone.utc).isoformat(), steps, original.observation,
                    decided_by=f"rolls back run {original.run_id}")
    return RollbackPlan(original.run_id, rollback, cannot)


def _planned(name: str, change: Change) -> PlannedStep:
    return PlannedStep(name, change.summary, kind=CHANGE, waves=[list(w) for w in change.waves],
                       goal=list(change.goal), notes=list(change.notes), deletes=list(change.deletes))


def check_rollback_plan(plan: Plan) -> None:
    """A rollback plan destroys nothing (its undo changes put values back)."""
    if any(s.deletes for s in plan.steps):
        raise JournalError(f"rollback plan {plan.run_id} would delete resources; refusing it")
