"""Plans: a playbook scenario's steps folded over the VM's predicted state, each a change or a reason.

``make_plan`` is pure. It starts from the observation; each step reads the state the earlier steps leave
(``Change.predict``), so "deallocate, resize, start" plans as three changes and a start after a create plans
as "nothing to do: the VM will be running". It refuses a plan in which anything is destroyed before its
backup: every managed disk a change deletes must be backed up by an earlier change (a snapshot). A plan
serialises to JSON (``--plan-out``, the run store) with the fingerprint of what it was computed from; secrets
appear only as references.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from runbooks.azure import agreement_parts
from runbooks.changes import Action, Change, Expect, NoChange, StepContext, restored_disk_id
from runbooks.errors import JournalError, StepRefused, UsageError
from runbooks.observe import Observation, dotted
from runbooks.playbook import Check, ManualStep, Playbook, RunStep, Scenario
from runbooks.steps.registry import catalog

PLAN_FORMAT = "azure-rca-runbooks/plan-2"
CHANGE, NOOP, MANUAL = "change", "noop", "manual"


@dataclass
class PlannedStep:
    """One step of a plan. ``kind``: ``change`` (``waves`` of actions, run in order, each wave in parallel),
    ``noop`` (``summary`` says why; ``goal`` is re-checked at apply) or ``manual`` (text to confirm)."""

    name: str
    summary: str
    kind: str = CHANGE
    destructive: bool = False
    waves: list[list[Action]] = field(default_factory=list)
    goal: list[Expect] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    confirm: bool = False
    deletes: list[str] = field(default_factory=list)
    backs_up: dict[str, str] = field(default_factory=dict)
    keep_going: bool = False
    always: bool = False  # runs even after an earlier step failed (restore-lock: a lifted lock is never left off)

    @property
    def actions(self) -> list[Action]:
        return [a for wave in self.waves for a in wave]

    @property
    def calls(self) -> list[Any]:
        return [a.call for a in self.actions]

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "summary": self.summary, "kind": self.kind, "destructive": self.destructive,
               "waves": [[a.to_dict() for a in w] for w in self.waves], "goal": [e.to_dict() for e in self.goal],
               "notes": self.notes, "params": self.params, "confirm": self.confirm, "deletes": self.deletes,
               "backs_up": self.backs_up}
        if self.keep_going:
            out["keep_going"] = True
        if self.always:
            out["always"] = True
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlannedStep:
        return cls(d["name"], d["summary"], d.get("kind", CHANGE), bool(d.get("destructive", False)),
                   [[Action.from_dict(a) for a in w] for w in d.get("waves", [])],
                   [Expect.from_dict(e) for e in d.get("goal", [])], list(d.get("notes", [])),
                   dict(d.get("params", {})), bool(d.get("confirm", False)), list(d.get("deletes", [])),
                   dict(d.get("backs_up", {})), bool(d.get("keep_going", False)), bool(d.get("always", False)))


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
    verify: list[dict[str, Any]] = field(default_factory=list)  # the scenario's Check list, as data
    verify_timeout_s: float = 900.0
    fallout: list[str] = field(default_factory=list)
    fallback: str | None = None
    decided_by: str = ""  # why this scenario: recommended, asked for, the only one that fits…

    @property
    def writes(self) -> int:
        return sum(len(s.actions) for s in self.steps)

    @property
    def snapshots(self) -> list[str]:
        """Every snapshot id the plan makes (the backups of what it destroys)."""
        return [snap for s in self.steps for snap in s.backs_up.values()]

    def digest(self) -> str:
        """sha256 of everything the plan says (its JSON without the digest)."""
        body = self._body()
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**self._body(), "digest": self.digest()}

    def allowed_resources(self) -> set[str]:
        """What the plan's calls may touch: the VM, its extensions, and the disks, NICs and public IPs it owns
        or references, the other members of its availability set, plus the snapshots of its own disks
        (lower-case ids)."""
        obs = self.observation
        vm = self.vm_id.lower()
        allowed = {vm, *obs.disks, *obs.nics, *obs.public_ips, *obs.members}
        allowed |= {str(lk.get("id", "")).lower() for lk in obs.locks}  # the management locks covering the VM
        allowed |= {k for k in obs.resources if agreement_parts(k)}  # the legal terms the observation read
        allowed |= {f"{vm}/extensions/{str(e.get('name', '')).lower()}" for e in obs.extensions}
        for step in self.steps:
            for disk, snap in step.backs_up.items():
                if disk.lower() in obs.disks and snap.lower().startswith(disk.lower().rsplit("/disks/", 1)[0]):
                    allowed.add(snap.lower())
            for call in step.calls:  # a rollback's new disk, made from a snapshot of one of the VM's disks
                source = str(dotted(call.args, "disk.properties.creationData.sourceResourceId") or "")
                if call.op == "disks.begin_create_or_update" and any(
                        call.resource_id.lower() == restored_disk_id(disk, source).lower()
                        and source.lower().startswith(disk.rsplit("/disks/", 1)[0] + "/snapshots/")
                        for disk in obs.disks):
                    allowed.add(call.resource_id.lower())
        return allowed

    def check_confined(self, source: str = "the plan") -> None:
        """Every call stays on the plan's VM and what it owns or references (JournalError otherwise)."""
        allowed = self.allowed_resources()
        vm = self.vm_id.lower()
        for step in self.steps:
            for call in step.calls:
                rid = call.resource_id.lower()
                if rid not in allowed and not rid.startswith(f"{vm}/extensions/"):
                    raise JournalError(f"{source}: step {step.name} calls {call.op} on {call.resource_id}, outside "
                                       f"{self.ref} and what it owns; refusing it (nothing was changed)")

    def _body(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "run_id": self.run_id, "vm_id": self.vm_id, "ref": self.ref,
                "playbook": self.playbook, "scenario": self.scenario, "decided_by": self.decided_by,
                "fingerprint": self.fingerprint, "created": self.created, "steps": [s.to_dict() for s in self.steps],
                "verify": self.verify, "verify_timeout_s": float(self.verify_timeout_s), "fallout": self.fallout,
                "fallback": self.fallback,
                "diff": [{"path": p, "before": b, "after": a} for p, b, a in self.diff],
                "observation": self.observation.to_dict()}

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)

    @classmethod
    def from_dict(cls, d: Any, *, source: str = "plan") -> Plan:
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise JournalError(f"{source} is not a plan written by this version of the tool (format {PLAN_FORMAT}); "
                               "make a new plan")
        try:
            plan = cls(d["run_id"], d["vm_id"], d["ref"], d["playbook"], d["scenario"], d["fingerprint"],
                       d["created"], [PlannedStep.from_dict(s) for s in d["steps"]],
                       Observation.from_dict(d["observation"]),
                       [(x["path"], x["before"], x["after"]) for x in d.get("diff", [])],
                       list(d.get("verify", [])), float(d.get("verify_timeout_s", 900.0)),
                       list(d.get("fallout", [])), d.get("fallback"), str(d.get("decided_by", "")))
        except (KeyError, TypeError, ValueError, AttributeError, UsageError) as e:
            raise JournalError(f"{source} is damaged: {type(e).__name__}: {e}") from None
        if d.get("digest") != plan.digest():
            raise JournalError(f"{source} was edited since it was written (its digest does not match); make a new plan")
        plan.check_confined(source)
        return plan


def replan(plan: Plan, playbook: Playbook) -> Plan:
    """The plan the playbook makes from ``plan``'s own observation, run id and step parameters: what a saved plan
    must be, call for call (``apply --plan`` refuses any difference)."""
    try:
        scenario = playbook.scenario(plan.scenario)
    except KeyError:
        raise JournalError(f"playbook {playbook.id} has no scenario {plan.scenario}; make a new plan") from None
    settings = {s.name: s.params for s in plan.steps if s.kind != MANUAL}
    again = make_plan(plan.observation, playbook, scenario, run_id=plan.run_id, settings=settings,
                      decided_by=plan.decided_by)
    again.created, again.verify_timeout_s = plan.created, plan.verify_timeout_s
    return again


def step_params(step: RunStep, settings: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    """The step's parameters: the playbook's ``with:``, then the operator's ``--set STEP.PARAM=VALUE``
    (validated by the step's parameter model; a bad value is a UsageError naming it)."""
    from pydantic import ValidationError

    raw = {**step.with_, **dict((settings or {}).get(step.run, {}))}
    try:
        return step.spec.params.model_validate(raw).model_dump()
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"--set {step.run}.{where}: {first['msg']}") from None


def plan_step(state: Observation, name: str, params: dict[str, Any], ctx: StepContext,
              ) -> tuple[PlannedStep, Observation]:
    """Plan one catalogue step against ``state``: the planned step and the state it leaves. Records the
    backups it makes in ``ctx``; raises StepRefused when it refuses or destroys what has no backup."""
    spec = catalog()[name]
    outcome = spec.fn(state, spec.params.model_validate(params), ctx)
    if isinstance(outcome, NoChange):
        return PlannedStep(name, outcome.reason, kind=NOOP, goal=list(outcome.goal), notes=list(outcome.notes),
                           params=params), state
    _check_backups(state, outcome, ctx, name)
    ctx.backups.update({k.lower(): v for k, v in outcome.backs_up.items()})
    return PlannedStep(name, outcome.summary, kind=CHANGE, destructive=spec.destructive or outcome.destructive,
                       waves=[list(w) for w in outcome.waves], goal=list(outcome.goal), notes=list(outcome.notes),
                       params=params, deletes=list(outcome.deletes), backs_up=dict(outcome.backs_up),
                       keep_going=outcome.keep_going), outcome.predict(state)


def fold(obs: Observation, scenario: Scenario, run_id: str,
         settings: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[list[PlannedStep], list[Observation]]:
    """Plan each step against the state the earlier ones leave. Returns the planned steps and the state
    before each of them (then the final state). Raises StepRefused when a step refuses or when anything
    would be destroyed before its backup."""
    ctx = StepContext(run_id, obs)
    state, planned, states = obs, [], [obs]
    for step in scenario.steps:
        if isinstance(step, ManualStep):
            planned.append(PlannedStep("manual", step.manual.strip(), kind=MANUAL, confirm=step.confirm))
        else:
            assert isinstance(step, RunStep)
            one, state = plan_step(state, step.run, step_params(step, settings), ctx)
            one.always = step.always
            planned.append(one)
        states.append(state)
    return planned, states


def _check_backups(state: Observation, change: Change, ctx: StepContext, name: str) -> None:
    """Nothing is destroyed before its backup: each managed disk a change deletes has a snapshot planned by
    an earlier step."""
    unsaved = [state.disks[d.lower()]["name"] for d in change.deletes
               if d.lower() in state.disks and d.lower() not in ctx.backups]
    if unsaved:
        raise StepRefused(f"{state.ref}: {', '.join(unsaved)} would be deleted by {name} and no snapshot of it is "
                          f"planned before; add snapshot-disks before {name} in the playbook")


def make_plan(obs: Observation, playbook: Playbook, scenario: Scenario, *, run_id: str | None = None,
              settings: Mapping[str, Mapping[str, Any]] | None = None, decided_by: str = "") -> Plan:
    """Turn the scenario's steps into a plan against this observation (pure; raises StepRefused)."""
    rid = run_id or str(uuid.uuid4())
    steps, states = fold(obs, scenario, rid, settings)
    final = states[-1]
    diff = model_diff(obs.view(obs.vm_id), final.view(obs.vm_id))
    return Plan(rid, obs.vm_id, str(obs.ref), playbook.id, scenario.id, obs.fingerprint(),
                datetime.now(timezone.utc).isoformat(), steps, obs, diff,
                [_condition(c, playbook) for c in scenario.verify], scenario.verify_timeout_s,
                list(scenario.fallout), scenario.fallback, decided_by)


def _condition(check: Check, playbook: Playbook) -> dict[str, Any]:
    """A verify entry as the plan keeps it: with the signal's whole definition, so it verifies the same way
    wherever the plan is applied."""
    entry = check.model_dump(exclude_defaults=True)
    if check.signal is not None:
        entry["definition"] = playbook.signal(check.signal).model_dump()
    return entry


_IGNORED = {"properties.provisioningState", "properties.vmId", "properties.timeCreated", "etag", "id", "name",
            "type", "resources", "properties.instanceView", "agent"}


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data and set(data) != {"$secret"}:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: data}


def model_diff(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Leaf-by-leaf differences between two VM views (lists compared whole), skipping read-only fields."""
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
