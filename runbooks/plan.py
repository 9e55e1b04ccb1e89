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
ABSENT = "(absent)"
# what identifies an item of a list of objects, tried in order: data disks by LUN, NIC references by id,
# extensions, IP configurations and the like by name, SSH keys by path
_ITEM_KEYS = ("lun", "id", "name", "path")


def is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$secret"}


def _ignored(path: str) -> bool:
    if any(path == i or path.startswith(i + ".") for i in _IGNORED):
        return True
    return path.startswith("identity.") and path.endswith(("principalId", "tenantId", "clientId"))


def _item_key(*lists: list[dict[str, Any]]) -> str | None:
    """The field that tells the items apart: present in each item and unique within each list."""
    for key in _ITEM_KEYS:
        if all(all(item.get(key) is not None for item in items)
               and len({_identity(item[key]) for item in items}) == len(items) for items in lists):
            return key
    return None


def _identity(value: Any) -> str:
    return str(value).lower()  # ARM ids and names compare case-insensitively


def _label(key: str | None, value: Any, index: int) -> str:
    if key is None:
        return str(index)
    if key == "lun":
        return f"lun {value}"
    return str(value).rstrip("/").rsplit("/", 1)[-1] if key == "id" else str(value)


def _objects(value: Any) -> list[dict[str, Any]] | None:
    """The list as objects to match item by item (absent counts as empty); None for anything else."""
    if value == ABSENT or value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, dict) and not is_secret_ref(v) for v in value):
        return value
    return None


def _diff(path: str, before: Any, after: Any, out: list[tuple[str, Any, Any]]) -> None:
    same_id = isinstance(before, str) and isinstance(after, str) and before.startswith("/subscriptions/") \
        and _identity(before) == _identity(after)  # the same ARM id in another case is the same resource
    if before == after or same_id or _ignored(path):
        return
    b_dict = isinstance(before, dict) and not is_secret_ref(before)
    a_dict = isinstance(after, dict) and not is_secret_ref(after)
    if (b_dict or before == ABSENT) and (a_dict or after == ABSENT):
        b, a = before if b_dict else {}, after if a_dict else {}
        if b or a:
            for k in sorted(set(b) | set(a), key=str):
                _diff(f"{path}.{k}" if path else str(k), b.get(k, ABSENT), a.get(k, ABSENT), out)
            return
    b_items, a_items = _objects(before), _objects(after)
    if b_items is not None and a_items is not None and (b_items or a_items):
        key = _item_key(b_items, a_items)
        olds = {_identity(it[key]) if key else str(n): (it, _label(key, it[key] if key else None, n))
                for n, it in enumerate(b_items)}
        news = {_identity(it[key]) if key else str(n): (it, _label(key, it[key] if key else None, n))
                for n, it in enumerate(a_items)}
        labels = {ident: label for ident, (_, label) in [*news.items(), *olds.items()]}
        if key == "id" and len(set(labels.values())) < len(labels):  # two NICs of one name in two groups: whole ids
            olds = {i: (it, str(it[key])) for i, (it, _) in olds.items()}
            news = {i: (it, str(it[key])) for i, (it, _) in news.items()}
        for ident in [*olds, *(i for i in news if i not in olds)]:
            old, new = olds.get(ident), news.get(ident)
            if old is not None and new is not None:
                _diff(f"{path}[{old[1]}]", old[0], new[0], out)
            elif old is not None or new is not None:  # an item added or removed: one entry
                out.append((f"{path}[{(old or new)[1]}]", old[0] if old else ABSENT,  # type: ignore[index]
                            new[0] if new else ABSENT))
        return
    out.append((path, before, after))


def model_diff(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Leaf-by-leaf differences between two VM views, skipping read-only fields: into objects, and into lists of
    objects item by item, each item known by its identity (a data disk by ``lun``, a NIC by ``id``, an extension
    by ``name``: ``storageProfile.dataDisks[lun 0].createOption``). An item only one side has is one entry,
    the other side ``(absent)``; a secret stays its reference (``{"$secret": …}``)."""
    out: list[tuple[str, Any, Any]] = []
    _diff("", copy.deepcopy(before), copy.deepcopy(after), out)
    return out
