"""What a step says it will do: a ``Change`` (the calls, the predicted state, the goal) or a ``NoChange`` (why
there is nothing to do). Steps (``runbooks.steps``) return these; the planner folds them; apply executes them.

A *goal* is a tuple of ``Expect``: conditions on resources, read the way ``Observation.view`` shows them
(``exists``, the VM's ``powerState`` and ``osState``, any dotted path of the REST JSON). Apply checks a
step's goal against Azure before the step (already true: skipped, with the reason) and after it (not true:
the step failed), never against "the resource exists". An action whose effect Azure does not show (a
redeploy moves the VM to another host, which ARM does not expose) has the goal ``Expect(id, "journal",
OP)``: it holds once the run's journal records that call (OP on that resource) as completed, so such an
action runs once per run.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from runbooks.addresses import refused_ipconfig
from runbooks.azure import Call
from runbooks.observe import Observation, dotted

JOURNAL = "journal"  # the path of an Expect that the journal, not Azure, answers


@dataclass(frozen=True)
class Expect:
    """``subject`` (an ARM resource id) has ``value`` at ``path``."""

    subject: str
    path: str
    value: Any

    def actual(self, view: Mapping[str, Any]) -> Any:
        return view.get(self.path) if self.path in ("exists", "powerState", "osState", "agent") else \
            dotted(view, self.path)

    def holds(self, view: Mapping[str, Any]) -> bool:
        if self.path != "exists" and not view.get("exists"):
            return self.value is None  # a missing resource has no value anywhere
        actual = self.actual(view)
        if isinstance(self.value, str) and isinstance(actual, str):
            return actual.lower() == self.value.lower()
        return bool(actual == self.value)

    def describe(self) -> str:
        name = self.subject.rsplit("/", 1)[-1]
        if self.path == "exists":
            return f"{name} {'exists' if self.value else 'is gone'}"
        if self.path == JOURNAL:
            return f"{name}: {str(self.value).rsplit('.', 1)[-1].removeprefix('begin_')} completed (journal)"
        return f"{name} {self.path} = {self.value}"

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "path": self.path, "value": self.value}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Expect:
        return cls(str(d["subject"]), str(d["path"]), d.get("value"))


# Azure's answers that capacity may change within minutes: an action with ``attempts`` > 1 tries again on these.
TRANSIENT_CAPACITY = frozenset({"AllocationFailed", "ZonalAllocationFailed", "OverconstrainedAllocationRequest",
                                "OverconstrainedZonalAllocationRequest"})


@dataclass(frozen=True)
class Action:
    """One call and the goal it reaches: apply skips the call when its goal already holds. ``attempts``: how
    often apply tries it when Azure answers a transient capacity failure (``TRANSIENT_CAPACITY``). ``fallback``:
    the call apply makes instead when Azure refuses this one with a code of ``fallback_on`` (a NIC asking for its
    old address, taken since the plan, is made with the next free one); same goal."""

    call: Call
    goal: tuple[Expect, ...]
    attempts: int = 1
    fallback: Call | None = None
    fallback_on: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {**self.call.to_dict(), "goal": [e.to_dict() for e in self.goal]}
        if self.attempts != 1:
            out["attempts"] = self.attempts
        if self.fallback is not None:
            out["fallback"] = {**self.fallback.to_dict(), "on": list(self.fallback_on)}
        return out

    def instead(self, refused: Call, message: str) -> Call | None:
        """The next call after ARM refused ``refused`` (this action's call, or a fallback made of it) with a code of
        ``fallback_on`` and ``message``: ``refused`` with only the ipconfig the message names taken from the fallback
        (the whole fallback when it names none of this NIC's); None when that changes nothing (no fallback for it:
        the refusal stands)."""
        if self.fallback is None:
            return None
        name = refused_ipconfig(message, refused.resource_id)
        if name is None:
            return None if refused == self.fallback else self.fallback
        body = copy.deepcopy(refused.args["parameters"])
        configs = body.get("properties", {}).get("ipConfigurations", [])
        spare = {c.get("name"): c for c in self.fallback.args["parameters"].get("properties", {}).get(
            "ipConfigurations", [])}
        for i, c in enumerate(configs):
            if c.get("name") == name and name in spare and spare[name] != c:
                configs[i] = copy.deepcopy(spare[name])
                first = self.call.args["parameters"].get("properties", {}).get("ipConfigurations", [])
                moved = [str(c.get("name")) for c, was in zip(configs, first, strict=False) if c != was]
                return replace(self.fallback, args={**self.fallback.args, "parameters": body},
                               summary=f"{self.fallback.summary} ({', '.join(moved)})")
        return None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Action:
        fallback = d.get("fallback")
        return cls(Call.from_dict(dict(d)), tuple(Expect.from_dict(e) for e in d.get("goal", [])),
                   max(1, int(d.get("attempts", 1))),
                   Call.from_dict(dict(fallback)) if isinstance(fallback, Mapping) else None,
                   tuple(str(c) for c in (fallback or {}).get("on", [])))


@dataclass(frozen=True)
class Change:
    """A step that acts. ``waves`` run in order, the actions of a wave in parallel.

    ``deletes``: every resource that goes away (the destroyed VM and what Azure deletes with it); a managed
    disk among them needs a complete backup first (``backs_up`` of an earlier step: disk id → snapshot id).
    ``creates``: predicted JSON of new resources; ``sets``: other predicted values (resource, path, value).
    The step's goal is every action's goal plus ``also_expect``, or ``ends_with`` when given.
    ``keep_going``: a failed wave does not stop the later ones (starting each member of a set: one that Azure
    cannot place must not keep the others down); the step fails at the end, naming what did not happen.
    ``destructive``: this change is destructive although its step is not always (a step that runs another
    step, such as a retried deallocate): confirm mode asks before it.
    """

    summary: str
    waves: tuple[tuple[Action, ...], ...]
    notes: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()
    creates: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    sets: tuple[tuple[str, str, Any], ...] = ()
    backs_up: Mapping[str, str] = field(default_factory=dict)
    also_expect: tuple[Expect, ...] = ()
    ends_with: tuple[Expect, ...] | None = None  # the goal, when the actions pass through states (deallocate, start)
    keep_going: bool = False
    destructive: bool = False

    @property
    def actions(self) -> list[Action]:
        return [a for wave in self.waves for a in wave]

    @property
    def goal(self) -> tuple[Expect, ...]:
        if self.ends_with is not None:
            return self.ends_with
        return tuple(e for a in self.actions for e in a.goal) + self.also_expect

    def predict(self, state: Observation) -> Observation:
        sets = [*self.sets, *((e.subject, e.path, e.value) for e in self.goal if e.path != JOURNAL)]
        return state.evolve(deletes=self.deletes, creates=self.creates, sets=sets)


def restored_disk_id(disk_id: str, snapshot_id: str) -> str:
    """The id of the disk a rollback makes from ``snapshot_id`` to replace ``disk_id``: beside it, named after it
    and the snapshot (deterministic, so a re-run finds it; at most 77 characters)."""
    folder, name = disk_id.rsplit("/", 1)
    return f"{folder}/{name[:64]}-pre-{hashlib.sha256(snapshot_id.lower().encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class NoChange:
    """A step with nothing to do, and why. ``goal``: what makes it so (apply re-checks it; when it no longer
    holds, the step is planned again against what Azure shows)."""

    reason: str
    goal: tuple[Expect, ...] = ()
    notes: tuple[str, ...] = ()


Outcome = Change | NoChange


@dataclass
class StepContext:
    """What a step reads besides the current (predicted) state: the run, the VM as first observed, and the
    backups earlier steps planned (lower disk id → snapshot id)."""

    run_id: str
    observed: Observation
    backups: dict[str, str] = field(default_factory=dict)

    @property
    def short(self) -> str:
        return self.run_id.replace("-", "")[:8]
