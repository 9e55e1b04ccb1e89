"""Applying a plan: for each step, check its goal against Azure, ask before destructive ones, act, wait,
re-read, and mark it done only when its goal holds (BundleWrap's habit: expected vs actual, fix, re-read).

* A step whose goal already holds is skipped, saying so; so is each action whose own goal holds. Re-running
  a plan after a crash at any point therefore converges, and a start, a deallocate or a resize is never
  skipped because the VM merely exists.
* A step the plan expected to have nothing to do is checked too: when its goal no longer holds (a create
  that left the VM stopped), the step is planned again against what Azure shows and, unless that would
  destroy something, applied.
* Nothing is destroyed before its backup is complete: before a destructive step, every snapshot that backs
  up a disk it deletes must exist, be complete and be a copy of that very disk.
* The journal records intent before each call and the result after; the run's lock is checked before each.

After the steps, the scenario's verification (``runbooks.verify``) and its fallout reports run.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

from runbooks.azure import Azure, Call, ResourceParts, finish, get_resource, resource_parts, start_call
from runbooks.changes import JOURNAL, TRANSIENT_CAPACITY, Action, Expect, NoChange, StepContext
from runbooks.errors import (
    Aborted,
    ApplyFailed,
    JournalError,
    LockHeld,
    LockLost,
    RunbookError,
    StepRefused,
    UsageError,
)
from runbooks.journal import RunJournal, VmLock
from runbooks.observe import Observation, observe, vm_view
from runbooks.plan import CHANGE, MANUAL, NOOP, Plan, PlannedStep
from runbooks.progress import Operation, PlainTracker, Tracker, check_settings, scaled
from runbooks.steps.registry import catalog
from runbooks.text import first_line
from runbooks.verify import conditions, report_fallout, verify


@dataclass
class Hooks:
    """How the engine talks to the operator: ``confirm(question) -> bool``, ``progress(line)`` and, for a
    choice between scenarios, ``choose(question, [(id, evidence)]) -> id or None`` (None: cannot ask).
    ``tracker`` shows each wait (``runbooks.progress``); without one, waits are plain lines through ``progress``."""

    confirm: Callable[[str], bool]
    progress: Callable[[str], None] = print
    choose: Callable[[str, list[tuple[str, str]]], str | None] | None = None
    tracker: Tracker | None = None

    def __post_init__(self) -> None:
        check_settings()
        if self.tracker is None:
            self.tracker = PlainTracker(self.progress)

    @property
    def ops(self) -> Tracker:
        assert self.tracker is not None
        return self.tracker


@dataclass
class Outcome:
    plan: Plan
    after: Observation | None = None
    fallout: list[str] = field(default_factory=list)
    skipped_calls: int = 0
    made_calls: int = 0
    skipped_steps: list[str] = field(default_factory=list)  # steps whose goal already held
    known: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower id → its view, as last read (Known)


_IN_FLIGHT = ("creating", "updating", "deleting")
RETRY_PAUSE_ENV = "RUNBOOKS_CAPACITY_RETRY_PAUSE_S"
DEFAULT_RETRY_PAUSE_S = 30.0  # before the 2nd attempt after a capacity failure; twice that before the 3rd


# A write changes its own resource; one on these types nothing else (a NIC's also its public IPs' references). A
# write on anything else (a VM: its delete takes disks and NICs with it, its create attaches them) may change any.
_SELF_CONTAINED = ("snapshots", "disks", "images", "publicipaddresses")
_KNOWN_LOCK = threading.RLock()  # two independent steps may run at once (run_beside)


class Reality:
    """Azure as a goal reads it: each resource read once (settled: no operation in flight), the journal's
    completed calls for ``journal`` goals.

    ``known`` (the run's ``Outcome.known``) carries what the run already knows across steps, so that nothing is
    read twice when nothing can have changed it: the previous step's after-check is the next step's before-check,
    a finished call's answer is its resource after (``remember``), and a fresh run knows that what it names with
    its own id does not exist yet (``not_made_yet``). The plan's observation is not taken for Azure now: a plan
    may be applied long after it was made. A call forgets what it may change (``forget``) before it starts."""

    def __init__(self, az: Azure, finished: set[tuple[str, str]], timeout: float = 1800.0,
                 progress: Callable[[str], None] | None = None, known: dict[str, dict[str, Any]] | None = None,
                 tracker: Tracker | None = None) -> None:
        self.az, self.finished, self.timeout = az, finished, timeout
        self.tracker = tracker if tracker is not None else PlainTracker(progress) if progress is not None else None
        self.views: dict[str, dict[str, Any]] = {}  # read by this Reality (fresh)
        self.known = known if known is not None else {}

    def view(self, resource_id: str) -> dict[str, Any]:
        key = resource_id.lower()
        with _KNOWN_LOCK:
            found = self.views.get(key, self.known.get(key))
        return found if found is not None else self.fresh(resource_id)

    def fresh(self, resource_id: str) -> dict[str, Any]:
        """The resource as read by this Reality (once), never from what the run knew before."""
        key = resource_id.lower()
        if key not in self.views:
            read = self._read(resource_id)
            with _KNOWN_LOCK:
                self.views[key] = self.known[key] = read
        return self.views[key]

    def forget(self, call: Call) -> None:
        """Before ``call`` starts: drop what it may change."""
        key = call.resource_id.lower()
        parts = _parts(call.resource_id)
        kind = parts.type if parts is not None and parts.child is None else ""
        with _KNOWN_LOCK:
            if kind == "networkinterfaces":
                drop = [k for k in self.known if k == key or "/microsoft.network/publicipaddresses/" in k]
            elif kind in _SELF_CONTAINED:
                drop = [key]
            elif parts is not None and parts.child is not None:  # an extension: itself and its VM (it may reboot it)
                drop = [key, key.rsplit("/extensions/", 1)[0]]
            else:
                drop = list(self.known)
            for k in drop:
                self.known.pop(k, None)
                self.views.pop(k, None)

    def remember(self, call: Call, result: Any) -> None:
        """A call that succeeded: a delete's resource is gone; a create's answer is its resource (not a VM's: its
        power state is in an instance view the answer lacks)."""
        key = call.resource_id.lower()
        if call.effect == "delete":
            with _KNOWN_LOCK:
                self.known[key] = {"exists": False}
            return
        parts = _parts(call.resource_id)
        if parts is None or (parts.type not in _ANSWERED and parts.child is None) or not hasattr(result, "as_dict"):
            return
        body = result.as_dict()
        state = str((body.get("properties") or {}).get("provisioningState", "")).lower()
        if str(body.get("id", "")).lower() == key and state == "succeeded":
            with _KNOWN_LOCK:
                self.known[key] = {**body, "exists": True}

    def _read(self, resource_id: str) -> dict[str, Any]:
        """The resource once no operation is running on it (nothing creating, updating or deleting; no VM
        starting or deallocating). A crashed or failed run can leave one in flight (a create or a start whose
        answer was lost); deciding from a transitional state would collide with it."""
        timeout = scaled(self.timeout)  # an operation of Azure's still running: at armsim's pace in the demo
        deadline, pause, waiting = time.monotonic() + timeout, 0.05, None
        name = resource_id.rsplit("/", 1)[-1]
        try:
            while True:
                current = get_resource(self.az, resource_id)
                state = str((current or {}).get("properties", {}).get("provisioningState", "Succeeded")).lower()
                if current is None or (state not in _IN_FLIGHT and not _changing_power(current)):
                    break
                if time.monotonic() > deadline:
                    raise ApplyFailed(f"{name} is still {_in_flight(current, state)} after {timeout:g} s: an "
                                      "operation on it has not finished. Re-run the same command once it has; "
                                      "finished work is kept.")
                if waiting is None and self.tracker is not None:
                    waiting = self.tracker.start(f"{name}: an operation is still running on it", timeout)
                if waiting is not None:
                    waiting.poll(_in_flight(current, state))
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
        except BaseException as e:
            if waiting is not None:
                waiting.end(False, first_line(e))
            raise
        if waiting is not None:
            waiting.end(True, "settled")
        parts = resource_parts(resource_id) if "/resourcegroups/" in resource_id.lower() else None
        if current is not None and parts is not None and parts.type == "virtualmachines" and parts.child is None:
            return vm_view(current, current.get("properties", {}).pop("instanceView", None) or {})
        return {**current, "exists": True} if current is not None else {"exists": False}

    def holds(self, expect: Expect) -> bool:
        if expect.path == JOURNAL:
            return (str(expect.value), expect.subject.lower()) in self.finished
        return expect.holds(self.view(expect.subject))

    def unmet(self, goal: Iterable[Expect]) -> list[str]:
        """The goal's conditions that do not hold, each as ``wanted (found …)``."""
        out = []
        for e in goal:
            if not self.holds(e):
                found = "not completed" if e.path == JOURNAL else _found(e, self.view(e.subject))
                out.append(f"{e.describe()} (found {found})")
        return out


_ANSWERED = ("snapshots", "disks", "networkinterfaces", "publicipaddresses")  # + VM extensions (a child)


def _parts(resource_id: str) -> ResourceParts | None:
    """A resource group's resource, parsed; None for anything else (a subscription's lock, legal terms)."""
    if "/resourcegroups/" not in resource_id.lower():
        return None
    try:
        return resource_parts(resource_id)
    except UsageError:
        return None


_POWER_IN_FLIGHT = ("powerstate/starting", "powerstate/stopping", "powerstate/deallocating")


def _in_flight(resource: dict[str, Any], state: str) -> str:
    statuses = ((resource.get("properties") or {}).get("instanceView") or {}).get("statuses") or []
    power = [str(s.get("code", "")).split("/", 1)[-1] for s in statuses
             if str(s.get("code", "")).lower() in _POWER_IN_FLIGHT]
    return power[0] if power else state


def _changing_power(resource: dict[str, Any]) -> bool:
    """A VM whose power state is on its way somewhere (a start or deallocate whose answer a crash lost)."""
    statuses = ((resource.get("properties") or {}).get("instanceView") or {}).get("statuses") or []
    return any(str(s.get("code", "")).lower() in _POWER_IN_FLIGHT for s in statuses)


def _found(e: Expect, view: dict[str, Any]) -> str:
    if not view.get("exists"):
        return "it does not exist"
    return str(e.actual(view))


_IDENTITY = (("virtualmachines", "properties.vmId"), ("disks", "properties.uniqueId"),
             ("networkinterfaces", "properties.resourceGuid"), ("publicipaddresses", "properties.resourceGuid"))


def identities(obs: Observation) -> dict[str, tuple[str, str]]:
    """What a run is bound to: the identity of each resource it observed (lower id → (path, value)): the VM's
    vmId (and its set's other members'), each disk's uniqueId, each NIC's and public IP's resourceGuid. A
    resource deleted and made again under the same name has a new one."""
    from runbooks.observe import dotted

    out: dict[str, tuple[str, str]] = {}
    resources = [obs.vm] if obs.vm else []
    resources += [*obs.disks.values(), *obs.nics.values(), *obs.public_ips.values(), *obs.members.values()]
    for r in resources:
        rid = str(r.get("id", ""))
        kind = rid.lower().split("/providers/", 1)[-1].split("/")[1] if "/providers/" in rid else ""
        for rtype, path in _IDENTITY:
            if kind == rtype and dotted(r, path):
                out[rid.lower()] = (path, str(dotted(r, path)))
    return out


def not_made_yet(plan: Plan) -> dict[str, dict[str, Any]]:
    """What a fresh run creates under a name of its own (its snapshots and new disks carry ``rb`` + the start of
    the run's random id): nothing can exist under it before the run's first call."""
    token = f"-rb{StepContext(plan.run_id, plan.observation, {}).short}".lower()
    return {c.resource_id.lower(): {"exists": False} for s in plan.steps for c in s.calls
            if c.effect == "create" and token in c.resource_id.rsplit("/", 1)[-1].lower()}


def check_bound(az: Azure, plan: Plan, journal: RunJournal, reality: Reality | None = None) -> None:
    """Refuse a stale run: every resource the plan observed that still exists must be the one it observed (same
    identity), unless this run made it again (a create it journaled the intent of: a crash can lose the answer).
    Raises StepRefused naming what changed; reads only (``reality``: what this step has just read is reused)."""
    from runbooks.observe import dotted

    made = {str(e.get("resource", "")).lower() for e in journal.events()
            if e.get("event") in ("call-intent", "call-done") and str(e.get("op", "")).endswith("create_or_update")}
    changed = []
    for rid, (path, want) in identities(plan.observation).items():
        if rid in made:
            continue
        if reality is not None:
            seen = reality.fresh(rid)
            current = seen if seen.get("exists") else None
        else:
            current = get_resource(az, rid)
        if current is None:
            continue  # gone: deleted by this run (or rebuilt later by it); nothing to mistake it for
        have = str(dotted(current, path))
        if have != want:
            changed.append(f"{rid.rsplit('/', 1)[-1]} is another resource now ({path.rsplit('.', 1)[-1]} {want} → "
                           f"{have})")
    if changed:
        raise StepRefused(f"run {plan.run_id} is stale: {'; '.join(changed)}. It was planned against resources that "
                          f"no longer exist under these names; nothing was written. Close it with invoke runs.abandon "
                          f"{plan.run_id} and plan again")


def _guard_backups(az: Azure, plan: Plan, step: PlannedStep,
                   read_vm: Callable[[str], dict[str, Any] | None] | None = None) -> None:
    """Right before anything is destroyed, each disk it deletes must have a complete snapshot of that very disk,
    read now (never taken from an earlier answer: another actor may have deleted it since). ``read_vm``: how the
    VMs it deletes are read (default: a GET; the identity check's read of a moment ago will do)."""
    backups = {disk: snap for s in plan.steps for disk, snap in s.backs_up.items()}
    for disk_id in [*step.deletes, *_deleted_with_vms_now(az, step, read_vm)]:
        snap_id = backups.get(disk_id.lower())
        if snap_id is None:
            if "/providers/microsoft.compute/disks/" in disk_id.lower():
                raise StepRefused(f"disk {disk_id.rsplit('/', 1)[-1]} would be deleted and the plan has no "
                                  "snapshot of it; nothing will be deleted")
            continue
        snap = get_resource(az, snap_id)
        props = (snap or {}).get("properties", {})
        name = snap_id.rsplit("/", 1)[-1]
        if props.get("provisioningState") != "Succeeded":
            raise StepRefused(f"snapshot {name} is {props.get('provisioningState') or 'missing'}; nothing will be "
                              "deleted until every disk has a complete snapshot")
        source = str((props.get("creationData") or {}).get("sourceResourceId", ""))
        if source.lower() != disk_id.lower():
            raise StepRefused(f"snapshot {name} is a copy of {source or 'nothing'}, not of {disk_id}; nothing "
                              "will be deleted")


def _deleted_with_vms_now(az: Azure, step: PlannedStep,
                          read_vm: Callable[[str], dict[str, Any] | None] | None = None) -> list[str]:
    """The disks Azure would delete with the VMs ``step`` deletes, read now: a disk attached, or switched to
    deleteOption Delete, since the plan was made goes with the VM too, and needs its snapshot as much."""
    out = []
    for rid in step.deletes:
        parts = _parts(rid)
        if parts is None or parts.type != "virtualmachines" or parts.child is not None:
            continue
        vm = read_vm(rid) if read_vm is not None else get_resource(az, rid)
        profile = ((vm or {}).get("properties") or {}).get("storageProfile") or {}
        for entry in [profile.get("osDisk") or {}, *(profile.get("dataDisks") or [])]:
            disk_id = str((entry.get("managedDisk") or {}).get("id") or "")
            if entry.get("deleteOption") == "Delete" and disk_id and disk_id.lower() not in \
                    {d.lower() for d in step.deletes}:
                out.append(disk_id)
    return out


def _retry_pause_s() -> float:
    raw = os.environ.get(RETRY_PAUSE_ENV, "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_RETRY_PAUSE_S
    except ValueError:
        raise UsageError(f"{RETRY_PAUSE_ENV} must be a number of seconds (got {raw!r})") from None


def _start(az: Azure, step: PlannedStep, call: Call, journal: RunJournal | None) -> Any:
    """Journal the intent, then start the call (a refusal is journaled too)."""
    if journal:
        journal.ensure_held()  # the run's lock must still be ours before anything is changed
        journal.append({"event": "call-intent", "step": step.name, "op": call.op, "resource": call.resource_id})
    try:
        return start_call(az, call)
    except ApplyFailed as e:
        _record_failure(journal, step, call, e)
        raise


def _wait(az: Azure, step: PlannedStep, action: Action, started: Any, journal: RunJournal | None,
          hooks: Hooks, op: Operation, answers: dict[str, Any] | None = None) -> ApplyFailed | None:
    """Wait for a started action (``started``: its poller, or the ``ApplyFailed`` ARM answered the start with);
    on a transient capacity failure, start it again while it has attempts left. Returns the failure that ends it
    (recorded in the journal once), or None once it succeeded (its answer in ``answers``, by lower resource id)."""
    call, attempt = action.call, 1
    while True:
        journaled = isinstance(started, ApplyFailed)  # refused when started: _start journaled it
        if journaled:
            failure = started
        else:
            try:
                answer = finish(started, call, op)
                if answers is not None:
                    answers[call.resource_id.lower()] = answer
                return None
            except ApplyFailed as e:
                failure = e
        if failure.code not in TRANSIENT_CAPACITY or attempt >= action.attempts:
            break
        if not journaled:
            _record_failure(journal, step, call, failure)  # this attempt ended; the journal says so before the next
        pause = _retry_pause_s() * attempt
        attempt += 1
        hooks.progress(f"    ! {call.summary}: {failure.code}; trying again in {pause:g} s (attempt {attempt} of "
                       f"{action.attempts})")
        op.poll(f"{failure.code}: attempt {attempt} of {action.attempts} in {pause:g}s")
        time.sleep(pause)
        try:
            started = _start(az, step, call, journal)
        except ApplyFailed as e:
            started = e
    if action.attempts > 1 and failure.code in TRANSIENT_CAPACITY:
        failure = ApplyFailed(f"{failure} (after {attempt} attempts)", code=failure.code, step=failure.step)
    if not journaled:
        _record_failure(journal, step, call, failure)
    return failure


def _fall_back(az: Azure, step: PlannedStep, action: Action, failure: ApplyFailed | None, journal: RunJournal | None,
               hooks: Hooks, op: Operation, answers: dict[str, Any]) -> tuple[Call, ApplyFailed | None]:
    """Azure refused ``action``'s call (journaled) with a code its fallback is for: make the call ``Action.instead``
    gives (only what ARM's refusal names falls back), again while refusals name more; each said in the progress and
    the journal (``call-fallback``). Returns the last call made and its failure (None: it succeeded)."""
    call: Call = action.call
    while failure is not None and failure.code in action.fallback_on:
        instead = action.instead(call, str(failure))
        if instead is None:
            break
        hooks.progress(f"    ! {call.summary}: {failure.code}; instead: {instead.summary}")
        op.poll(f"{failure.code}: instead {instead.summary}")
        if journal:
            journal.append({"event": "call-fallback", "step": step.name, "op": call.op, "resource": call.resource_id,
                            "code": failure.code, "instead": instead.summary})
        call = instead
        try:
            started: Any = _start(az, step, call, journal)
        except ApplyFailed as e:
            started = e
        failure = _wait(az, step, Action(call, action.goal, action.attempts), started, journal, hooks, op, answers)
    return call, failure


def run_wave(az: Azure, step: PlannedStep, wave: list[Action], journal: RunJournal | None, hooks: Hooks,
             outcome: Outcome, reality: Reality) -> None:
    """Start every action of a wave whose goal does not hold yet (they run in parallel), then wait for all. An
    action with ``attempts`` > 1 is tried again after a transient capacity failure, saying so."""
    started: list[tuple[Action, Any, Operation]] = []
    errors: list[ApplyFailed] = []
    try:
        for action in wave:
            call = action.call
            if action.goal and not reality.unmet(action.goal):
                hooks.progress(f"    = {call.summary}: already done")
                outcome.skipped_calls += 1
                continue
            op = hooks.ops.start(call.summary)  # "→ summary": shown until it ends
            reality.forget(call)
            try:
                started.append((action, _start(az, step, call, journal), op))
            except BaseException as e:
                if not isinstance(e, ApplyFailed):  # a lost lock, Ctrl-C: the wait shown must not outlive the run
                    op.end(False, "the run stopped")
                    raise
                if step.keep_going or (action.attempts > 1 and e.code in TRANSIENT_CAPACITY) or \
                        (action.fallback is not None and e.code in action.fallback_on):
                    started.append((action, e, op))  # retried, fallen back or reported with the wave: the others start
                    continue
                op.end(False, e.code or "refused")
                raise ApplyFailed(f"step {step.name}: {e}. Re-run the same command to retry; finished work is "
                                  "kept.", code=e.code, step=step.name) from e
        _wait_all(az, step, started, journal, hooks, outcome, reality, errors)
    finally:  # a refusal, Ctrl-C or a lost lock stops the run here: no wait is left shown as running
        for _, _, op in started:
            op.end(False, "not waited for: the run stopped")
    if errors:
        first = errors[0]
        raise ApplyFailed(f"step {step.name}: {first}. Re-run the same command to retry; finished work is kept.",
                          code=first.code, step=step.name)


def _wait_all(az: Azure, step: PlannedStep, started: list[tuple[Action, Any, Operation]], journal: RunJournal | None,
              hooks: Hooks, outcome: Outcome, reality: Reality, errors: list[ApplyFailed]) -> None:
    answers: dict[str, Any] = {}
    for action, poller, op in started:
        call = action.call
        failure = _wait(az, step, action, poller, journal, hooks, op, answers)
        if failure is not None and action.fallback is not None and failure.code in action.fallback_on:
            call, failure = _fall_back(az, step, action, failure, journal, hooks, op, answers)
        if failure is not None:
            op.end(False, failure.code or "failed")
            errors.append(failure)
            continue
        op.end(True)
        reality.remember(call, answers.get(call.resource_id.lower()))
        outcome.made_calls += 1
        reality.finished.add((call.op, call.resource_id.lower()))
        if journal:
            journal.append({"event": "call-done", "step": step.name, "op": call.op, "resource": call.resource_id})


def _record_failure(journal: RunJournal | None, step: PlannedStep, call: Call, e: ApplyFailed) -> None:
    if journal:
        journal.append({"event": "call-failed", "step": step.name, "op": call.op, "resource": call.resource_id,
                        "code": e.code, "error": str(e)})


def _apply_change(az: Azure, plan: Plan, i: int, step: PlannedStep, journal: RunJournal, hooks: Hooks,
                  outcome: Outcome, *, yes: bool) -> None:
    reality = Reality(az, journal.finished_calls(), known=outcome.known, tracker=hooks.ops)
    if step.goal and not reality.unmet(step.goal):
        hooks.progress("    = its goal already holds: " + "; ".join(e.describe() for e in step.goal))
        outcome.skipped_steps.append(step.name)
        outcome.skipped_calls += len(step.actions)
        return
    if step.destructive:
        check_bound(az, plan, journal, reality)
        _guard_backups(az, plan, step, reality.fresh)
        for note in step.notes:
            hooks.progress(f"    ! {note}")
        if not yes:
            if not hooks.confirm(f"Step {i + 1} is destructive: {step.summary}. Proceed?"):
                kept = f" Snapshots kept: {', '.join(s.rsplit('/', 1)[-1] for s in plan.snapshots)}." \
                    if plan.snapshots else ""
                raise Aborted(f"stopped before step {i + 1} ({step.name}): nothing was deleted or changed by it."
                              f"{kept}")
            _guard_backups(az, plan, step)  # the question may have waited long: the backups are read again
    failures: list[ApplyFailed] = []
    for wave in step.waves:
        try:
            run_wave(az, step, wave, journal, hooks, outcome, reality)
        except ApplyFailed as e:
            if not step.keep_going:
                raise ApplyFailed(f"{e}{_still_unmet(az, step, reality)}", code=e.code, step=e.step) from e
            failures.append(e)
        reality.views.clear()  # a later wave's goals are read after this wave's effects
    after = Reality(az, reality.finished, known=outcome.known, tracker=hooks.ops)
    unmet = after.unmet(step.goal)
    if failures:
        first = failures[0]
        raise ApplyFailed(f"step {step.name}: {len(failures)} of its calls failed, the first: "
                          f"{str(first).removeprefix(f'step {step.name}: ')}"
                          + (f" Not as planned yet: {'; '.join(unmet)}." if unmet else ""),
                          code=first.code, step=step.name)
    if unmet:
        raise ApplyFailed(f"step {step.name}: its calls finished but its goal does not hold: {'; '.join(unmet)}. "
                          "Re-run the same command to retry; finished work is kept.", step=step.name)


def _still_unmet(az: Azure, step: PlannedStep, reality: Reality) -> str:
    """After a failed call of a step with several actions: what of its goal does not hold (nothing is left in a
    state the operator is not told about: a member of a set still deallocated)."""
    if len(step.actions) < 2:
        return ""
    try:
        unmet = Reality(az, reality.finished, timeout=60).unmet(step.goal)
    except RunbookError:
        return ""
    return f" Not as planned yet: {'; '.join(unmet)}." if unmet else ""


_STOPS = ("virtual_machines.begin_deallocate", "virtual_machines.begin_power_off")


def left_down(az: Azure, plan: Plan, journal: RunJournal) -> list[str]:
    """``name (power state)`` of each VM this run set out to stop that was running before the run and is not
    running now: after a failure, nothing the run took down is left down without the operator being told."""
    stopped = {str(e.get("resource", "")).lower(): str(e.get("resource", "")) for e in journal.events()
               if e.get("event") == "call-intent" and e.get("op") in _STOPS}
    out = []
    for rid in sorted(stopped.values(), key=lambda r: resource_parts(r).name.lower()):
        if plan.observation.view(rid).get("powerState") != "running":
            continue
        try:
            found = get_resource(az, rid)
        except RunbookError:
            out.append(f"{resource_parts(rid).name} (could not be read)")
            continue
        if found is None:
            continue
        now = vm_view(found, found.get("properties", {}).pop("instanceView", None) or {})
        if now.get("powerState") != "running":
            out.append(f"{resource_parts(rid).name} ({now.get('powerState') or 'unknown'})")
    return out


def _with_left_down(az: Azure, plan: Plan, journal: RunJournal, e: RunbookError) -> None:
    down = left_down(az, plan, journal)
    if down:
        e.args = (f"{e} Left down by this run: {', '.join(down)}. Re-run the same command to go on, or "
                  f"`invoke runs.rollback {plan.run_id}` to start {'it' if len(down) == 1 else 'them'} again.",
                  *e.args[1:])


def _check_noop(az: Azure, plan: Plan, i: int, step: PlannedStep, journal: RunJournal, hooks: Hooks,
                outcome: Outcome, *, yes: bool) -> None:
    """A step planned as nothing to do: confirm that its goal holds, else plan it again against Azure."""
    reality = Reality(az, journal.finished_calls(), known=outcome.known, tracker=hooks.ops)
    unmet = reality.unmet(step.goal)
    if not unmet:
        hooks.progress(f"    = {step.summary}")
        return
    hooks.progress(f"    ! the plan expected nothing to do here, but {'; '.join(unmet)}: planning the step again")
    spec = catalog()[step.name]
    now = observe(az, plan.observation.ref, spec.reads | {"instance-view"}, missing_ok=True)
    backups = {disk: snap for s in plan.steps[:i] for disk, snap in s.backs_up.items()}
    replanned = spec.fn(now, spec.params.model_validate(step.params), StepContext(plan.run_id, plan.observation,
                                                                                    backups))
    if isinstance(replanned, NoChange):
        raise StepRefused(f"step {step.name}: its goal does not hold ({'; '.join(unmet)}) and planned again it "
                          f"has nothing to do ({replanned.reason}); make a new plan")
    if spec.destructive:
        raise StepRefused(f"step {step.name}: Azure differs from the plan ({'; '.join(unmet)}) and the step would "
                          "now destroy something; nothing was changed by it. Make a new plan")
    hooks.progress(f"    planned again: {replanned.summary}")
    redo = PlannedStep(step.name, replanned.summary, kind=CHANGE, waves=[list(w) for w in replanned.waves],
                       goal=list(replanned.goal), params=step.params)
    _apply_change(az, plan, i, redo, journal, hooks, outcome, yes=yes)


def _run_always(az: Azure, plan: Plan, journal: RunJournal, hooks: Hooks, outcome: Outcome, *, after: int,
                error: RunbookError, yes: bool) -> None:
    """After step ``after`` failed (or was refused): run the later steps marked ``always`` (restore-lock: a lifted
    lock is never left off), each checked against its goal as usual. Then the run's steps are reopened: a resume
    starts over from the first step, each skipped while its goal holds, so what ``always`` undid is done again.
    A failure here is added to ``error``'s message."""
    if 0 <= after < len(plan.steps) and plan.steps[after].always:
        error.args = (f"{error} Until {plan.steps[after].name} succeeds it is still to do: "
                      f"{plan.steps[after].summary}.", *error.args[1:])
    pending = [(i, s) for i, s in enumerate(plan.steps) if i > after and s.always and s.kind != MANUAL]
    if not pending:
        return
    for i, step in pending:
        hooks.progress(f"[{i + 1}/{len(plan.steps)}] {step.name} (runs although the run failed): {step.summary}")
        journal.append({"event": "step-start", "index": i, "step": step.name, "always": True})
        try:
            if step.kind == NOOP:
                _check_noop(az, plan, i, step, journal, hooks, outcome, yes=True)
            else:
                _apply_change(az, plan, i, step, journal, hooks, outcome, yes=True)
        except LockLost:
            raise
        except RunbookError as e:
            error.args = (f"{error} Then {step.name} failed too: {e}", *error.args[1:])
            continue
        journal.append({"event": "step-done", "index": i, "step": step.name, "always": True})
    journal.append({"event": "steps-reopened", "after": after})


_BESIDE_TYPES = ("snapshots", "disks", "networkinterfaces", "publicipaddresses")


def runs_beside(plan: Plan, i: int, done: set[int]) -> bool:
    """Whether step ``i + 1`` may run at the same time as step ``i`` (the NICs rebuilt while the disks are): both
    only create or change snapshots, disks, NICs or public IPs, destroy nothing, ask nothing and put nothing back,
    and neither touches nor names anything the other touches."""
    if i + 1 >= len(plan.steps) or i in done or i + 1 in done:
        return False
    pair = plan.steps[i], plan.steps[i + 1]
    if any(s.kind != CHANGE or s.destructive or s.always or s.confirm or s.deletes for s in pair):
        return False
    touched = []
    for s in pair:
        ids = {c.resource_id.lower() for c in s.calls} | {e.subject.lower() for e in s.goal}
        ids |= {e.subject.lower() for a in s.actions for e in a.goal}
        parsed = [_parts(r) for r in ids]
        if not ids or any(p is None or p.child is not None or p.type not in _BESIDE_TYPES for p in parsed):
            return False
        touched.append(ids)
    if touched[0] & touched[1]:
        return False
    named = [json.dumps([c.args for c in s.calls], default=str).lower() for s in pair]
    return not any(r in named[1] for r in touched[0]) and not any(r in named[0] for r in touched[1])


class _SerialJournal:
    """A journal two steps write at once: one event at a time. The local run lock is a file lock held by the
    thread that took it: from the other thread, it is still ours while its file is there (this process releases
    it only once both steps have ended)."""

    def __init__(self, journal: RunJournal) -> None:
        self._journal, self._lock, self._owner = journal, threading.Lock(), threading.get_ident()
        self.stopping = threading.Event()  # the other step failed or was interrupted: start nothing more

    def append(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._journal.append(event)

    def ensure_held(self) -> None:
        if self.stopping.is_set() and threading.get_ident() != self._owner:
            raise StepRefused("stopped before its next write: the step beside it failed or was interrupted")
        with self._lock:
            lock = self._journal.lock
            if threading.get_ident() == self._owner or not isinstance(lock, VmLock):
                self._journal.ensure_held()
            elif not lock.path.exists():
                raise LockLost(f"run {lock.run_id} no longer holds the lock of {lock.vm_id} ({lock.path}); "
                               "stopped before its next write")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)


def _apply_beside(az: Azure, plan: Plan, i: int, journal: RunJournal, hooks: Hooks, outcome: Outcome, *,
                  yes: bool) -> RunbookError | None:
    """Steps ``i`` and ``i + 1`` at once (``runs_beside``), the second in a thread, each journaled as usual. Raises
    the first step's failure (once the second has ended); returns the second's (None: it is done)."""
    total, nxt = len(plan.steps), plan.steps[i + 1]
    serial = _SerialJournal(journal)
    shared = cast(RunJournal, serial)

    def second() -> None:
        hooks.progress(f"[{i + 2}/{total}] {nxt.name} (beside step {i + 1}): {nxt.summary}")
        shared.append({"event": "step-start", "index": i + 1, "step": nxt.name})
        _apply_change(az, plan, i + 1, nxt, shared, hooks, outcome, yes=yes)
        shared.append({"event": "step-done", "index": i + 1, "step": nxt.name})

    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(second)
        try:
            _apply_change(az, plan, i, plan.steps[i], shared, hooks, outcome, yes=yes)
            failure = later.exception()  # Ctrl-C may come while the second step is still running: caught below
        except BaseException:
            serial.stopping.set()  # Ctrl-C, a refusal, a lost lock: the second step starts no further call
            raise
    if failure is not None and not isinstance(failure, RunbookError):
        raise failure
    return failure


def execute(az: Azure, plan: Plan, journal: RunJournal, hooks: Hooks, *, yes: bool) -> Outcome:
    """Apply the plan's steps in order (skipping those the journal marks done), then verify and report the
    fallout. Raises on the first failure; the journal says how far the run got."""
    outcome = Outcome(plan)
    done = journal.done_steps()
    total = len(plan.steps)
    current = -1
    az.pacer.report = hooks.ops.line  # a delay to stay within ARM's request limits is said, not silent
    try:
        if any(e.get("event") == "step-start" for e in journal.events()):
            check_bound(az, plan, journal)  # a resume: is the world still the one the run saw?
        else:  # a fresh run: nothing exists yet under the names only it uses
            outcome.known.update(not_made_yet(plan))
        beside: set[int] = set()  # steps that ran at the same time as the one before them
        for i, step in enumerate(plan.steps):
            current = i
            label = f"[{i + 1}/{total}] {step.name}"
            if i in done:
                hooks.progress(f"{label}: done in an earlier attempt")
                continue
            if i in beside:
                continue
            hooks.progress(f"{label}: {step.summary}")
            journal.append({"event": "step-start", "index": i, "step": step.name})
            if step.kind == MANUAL:
                if step.confirm and not yes and not hooks.confirm("Confirm the statement above and continue?"):
                    raise Aborted(f"stopped before step {i + 1} ({step.name}); nothing was changed by this step")
            elif step.kind == NOOP:
                _check_noop(az, plan, i, step, journal, hooks, outcome, yes=yes)
            elif runs_beside(plan, i, done):
                beside.add(i + 1)
                failed_beside = _apply_beside(az, plan, i, journal, hooks, outcome, yes=yes)
                if isinstance(failed_beside, LockLost):
                    raise failed_beside  # the journal is no longer this run's to write
                journal.append({"event": "step-done", "index": i, "step": step.name})
                if failed_beside is not None:
                    current = i + 1
                    raise failed_beside
                continue
            else:
                _apply_change(az, plan, i, step, journal, hooks, outcome, yes=yes)
            journal.append({"event": "step-done", "index": i, "step": step.name})
        current = total  # every step is done: a failure from here on (verification) is after the last one
        if plan.verify:
            hooks.progress(f"verify: {', '.join(c.describe for c in conditions(plan.verify))}")
            outcome.after = verify(az, plan, hooks.progress, tracker=hooks.ops)
        outcome.fallout = report_fallout(az, plan, outcome.after)
    except LockLost:
        raise  # the journal is no longer this run's to write: whoever holds the lock now owns it
    except Aborted as e:  # the operator said no to a step: the run waits, resumable, for a yes
        _run_always(az, plan, journal, hooks, outcome, after=current, error=e, yes=yes)
        journal.append({"event": "run-stopped", "error": str(e), "type": type(e).__name__})
        journal.finish("stopped")
        raise
    except RunbookError as e:
        if not isinstance(e, (LockHeld, JournalError)):
            _run_always(az, plan, journal, hooks, outcome, after=current, error=e, yes=yes)
            _with_left_down(az, plan, journal, e)
        journal.append({"event": "run-failed", "error": str(e), "type": type(e).__name__})
        journal.finish("failed")
        raise
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM (stop_on_sigterm): what must be put back is
        _run_always(az, plan, journal, hooks, outcome, after=current, yes=True,
                    error=Aborted(f"interrupted during step {current + 1}"))
        raise  # the run stays unfinished: the same command resumes it
    journal.finish("succeeded")
    return outcome
