"""The step library's registry: every step a playbook may ``run:``, declared once, next to its code.

A step is a function ``(state, params, ctx) -> Change | NoChange`` (``runbooks.changes``) registered with
``@step(name, summary, params=…, destructive=…, reads=…)``:

* ``state`` is the VM as the plan predicts it when the step runs (earlier steps' effects applied);
* ``params`` is the step's typed parameter model (``StepParams``: unknown keys are errors), filled from the
  playbook's ``with:`` and the operator's ``--set STEP.PARAM=VALUE``;
* ``ctx`` is the run (its id, the VM as first observed, the backups planned so far);
* ``destructive`` steps delete or replace something (or lose data, like a redeploy's temporary disk):
  confirm mode asks before each;
* ``reads`` names the observation facts the step needs (``runbooks.observe.FACTS``).

The playbook linter checks ``run:`` names and ``with:`` parameters against ``catalog()``; the planner calls
the functions. Adding a step is one decorated function in a module of ``runbooks/steps/`` (listed in
``STEP_MODULES``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from runbooks.changes import Outcome, StepContext
from runbooks.observe import Observation

STEP_MODULES = ("backup", "recreate", "power", "placement", "diagnostics", "locks", "network", "marketplace")


class StepParams(BaseModel):
    """Base of every step's parameters: unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(StepParams):
    pass


StepFn = Callable[[Observation, Any, StepContext], Outcome]
# How a step is undone: (state the step started from, Azure now, the planned step, the run being undone: its id,
# first observation and backups) → the change back, a no-op with its reason, or why it cannot be undone
# (runbooks.rollback).
UndoFn = Callable[[Observation, Observation, Any, StepContext], "Outcome | str"]


@dataclass(frozen=True)
class StepSpec:
    """A registered step: its name, what it does, its parameters, whether it destroys, what it reads."""

    name: str
    summary: str
    fn: StepFn
    params: type[StepParams] = NoParams
    destructive: bool = False
    reads: frozenset[str] = frozenset()
    undo: UndoFn | None = None
    undo_note: str = ""  # why it cannot be undone, when ``undo`` is None
    without_vm: bool = False  # it can run for a VM that does not exist (its create was refused)


_STEPS: dict[str, StepSpec] = {}


def step(name: str, summary: str, *, params: type[StepParams] = NoParams, destructive: bool = False,
         reads: tuple[str, ...] = (), undo: UndoFn | None = None, undo_note: str = "", without_vm: bool = False,
         ) -> Callable[[StepFn], StepFn]:
    """Register a step function under ``name`` (the ``run:`` value in a playbook); ``undo`` says how rollback
    reverses it, or ``undo_note`` why it cannot be."""

    def register(fn: StepFn) -> StepFn:
        if name in _STEPS and _STEPS[name].fn is not fn:
            raise KeyError(f"step '{name}' is registered twice")
        _STEPS[name] = StepSpec(name, summary, fn, params, destructive, frozenset(reads), undo, undo_note,
                                without_vm)
        return fn

    return register


def catalog() -> dict[str, StepSpec]:
    """Every registered step (importing the step modules registers them)."""
    for module in STEP_MODULES:
        importlib.import_module(f"runbooks.steps.{module}")
    return _STEPS
