"""Plans: the ordered steps of a playbook scenario, each turned into the Azure calls it will make.

``make_plan`` is pure: it reads an Observation and the scenario's steps (from the playbook YAML) and
asks each step's planner what it would do. Nothing here talks to Azure. A plan serialises to JSON
(``--plan-out``) with the fingerprint of what it was computed from; secrets appear only as references.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from runbooks.azure import Call
from runbooks.errors import JournalError, UsageError
from runbooks.observe import Observation
from runbooks.playbook import ManualStep, Playbook, RunStep, Scenario

PLAN_FORMAT = "azure-rca-runbooks/plan-1"


@dataclass
class PlannedStep:
    """One step of a plan: what it does, the calls it makes (each wave runs in parallel, waves in order)."""

    name: str
    summary: str
    kind: str = "calls"  # "calls" | "journal" | "verify" | "fallout" | "manual"
    destructive: bool = False
    waves: list[list[Call]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    confirm: bool = False

    @property
    def calls(self) -> list[Call]:
        return [c for wave in self.waves for c in wave]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary, "kind": self.kind, "destructive": self.destructive,
                "waves": [[c.to_dict() for c in w] for w in self.waves], "notes": self.notes,
                "params": self.params, "confirm": self.confirm}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlannedStep:
        return cls(d["name"], d["summary"], d.get("kind", "calls"), d.get("destructive", False),
                   [[Call.from_dict(c) for c in w] for w in d.get("waves", [])], list(d.get("notes", [])),
                   dict(d.get("params", {})), bool(d.get("confirm", False)))


@dataclass
class Plan:
    run_id: str
    vm_id: str
    ref: str
    playbook: str
    scenario: str
    fingerprint: str
    created: str
    steps: list[PlannedStep]
    observation: Observation
    diff: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return sum(len(s.calls) for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "run_id": self.run_id, "vm_id": self.vm_id, "ref": self.ref,
                "playbook": self.playbook, "scenario": self.scenario, "fingerprint": self.fingerprint,
                "created": self.created, "steps": [s.to_dict() for s in self.steps],
                "diff": [{"path": p, "before": b, "after": a} for p, b, a in self.diff],
                "observation": self.observation.to_dict()}

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)

    @classmethod
    def from_dict(cls, d: Any, *, source: str = "plan") -> Plan:
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise JournalError(f"{source} is not a plan written by this tool (format {PLAN_FORMAT})")
        try:
            return cls(d["run_id"], d["vm_id"], d["ref"], d["playbook"], d["scenario"], d["fingerprint"],
                       d["created"], [PlannedStep.from_dict(s) for s in d["steps"]],
                       Observation.from_dict(d["observation"]),
                       [(x["path"], x["before"], x["after"]) for x in d.get("diff", [])])
        except (KeyError, TypeError, ValueError, UsageError) as e:
            raise JournalError(f"{source} is damaged: {type(e).__name__}: {e}") from None


@dataclass
class PlanContext:
    """What planners read: the observation, the run, the scenario and what earlier steps decided."""

    obs: Observation
    run_id: str
    scenario: Scenario
    snapshots: dict[str, str] = field(default_factory=dict)  # lower disk id → snapshot id
    new_vm: dict[str, Any] | None = None

    @property
    def short(self) -> str:
        return self.run_id.replace("-", "")[:8]

    @property
    def step_names(self) -> list[str]:
        return [s.run for s in self.scenario.run_steps]


def make_plan(obs: Observation, playbook: Playbook, scenario: Scenario, *, run_id: str | None = None,
              overrides: dict[str, dict[str, Any]] | None = None) -> Plan:
    """Turn the scenario's steps into a plan against this observation (pure; raises StepRefused)."""
    from runbooks.steps.registry import planners

    ctx = PlanContext(obs, run_id or str(uuid.uuid4()), scenario)
    steps: list[PlannedStep] = []
    for step in scenario.steps:
        if isinstance(step, ManualStep):
            steps.append(PlannedStep("manual", step.manual.strip(), kind="manual", confirm=step.confirm))
            continue
        assert isinstance(step, RunStep)
        params = step.params.model_dump()
        params.update((overrides or {}).get(step.run, {}))
        planned = planners()[step.run](ctx, type(step.params)(**params))
        planned.destructive = step.is_destructive
        planned.params = params
        steps.append(planned)
    before = obs.vm or {}
    diff = model_diff(before, ctx.new_vm or before)
    if obs.generalized:
        diff.insert(0, ("instanceView.statuses", "OSState/generalized", "(none)"))
    return Plan(ctx.run_id, obs.vm_id, str(obs.ref), playbook.id, scenario.id, obs.fingerprint(),
                datetime.now(timezone.utc).isoformat(), steps, obs, diff)


_IGNORED = {"properties.provisioningState", "properties.vmId", "properties.timeCreated", "etag", "id", "name",
            "type", "resources", "properties.instanceView"}


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data and set(data) != {"$secret"}:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: data}


def model_diff(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Leaf-by-leaf differences between two VM models (lists compared whole), skipping read-only fields."""
    b, a = _flatten(copy.deepcopy(before)), _flatten(copy.deepcopy(after))
    out = []
    for path in sorted(set(b) | set(a)):
        if any(path == i or path.startswith(i + ".") for i in _IGNORED):
            continue
        if path.startswith("identity.") and path.endswith(("principalId", "tenantId", "clientId")):
            continue
        if b.get(path) != a.get(path):
            out.append((path, b.get(path, "(absent)"), a.get(path, "(absent)")))
    return out
