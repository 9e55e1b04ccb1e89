"""Fleet sweep: find every VM of a subscription in a state a playbook covers, report it, optionally remediate.

Finding is cheap: the subscription's VM list with ``statusOnly=true`` carries each VM's instance-view
statuses, so the sweep reads one page per 1 000 VMs instead of one instance-view GET per VM; pages are read as
ARM's JSON (``runbooks.azure.vm_pages``), not SDK models: 10 000 VMs cost about 1 s of client CPU. A VM is a
candidate when one of a playbook's ``detect`` signals holds on what the list shows, or on the VM's failed
operations from one subscription-wide read of the activity log (the playbook signal logic of
``runbooks.detect``; signals that need other per-VM reads are not used to find VMs, nor are playbooks detected
only when named). The recommended scenario comes from the same list plus one subscription-wide image list.

* report mode (default): read-only. ``diagnose=True`` adds the full per-VM diagnosis, for candidates only.
* remediate mode: each candidate is planned and remediated as ``invoke remediate --yes`` would (an
  unfinished run of the VM is resumed instead), ``max_concurrency`` at a time. Once ``max_errors``
  remediations have failed no new one starts; more than ``max_vms`` candidates is refused before any write.

Requests are paced by the connection's ``ThrottlePacer`` (runbooks.pacing), so a large sweep stays within
ARM's token buckets. Results are data (``SweepReport.to_dict()``, ``sweep_text``); while it runs, ``progress``
receives plain lines (a log, an Automation job's stream) and ``on_event`` the same as ``SweepEvent``s (a UI).
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from runbooks.apply import Hooks
from runbooks.azure import AZURE_ERRORS, Azure, activity_pages, call_failed, image_pages, resource_parts, vm_pages
from runbooks.detect import detected
from runbooks.errors import (
    AdviceOnly,
    ChoiceRequired,
    LockHeld,
    LockLost,
    NotApplicable,
    RunbookError,
    StepRefused,
    UsageError,
)
from runbooks.journal import Store
from runbooks.observe import (
    Observation,
    VmRef,
    activity_since,
    failed_operations,
    gather,
    observe,
    refused_create,
    vm_of,
)
from runbooks.playbook import Playbook, load_playbooks
from runbooks.remediate import open_store, pending_run, remediate_vm, run_diagnosis
from runbooks.signals import AnySignal, SignalResult

MAX_CONCURRENCY = 10  # azure-core's HTTP connection pool holds 10 connections per host; ARM refills 10 writes/s
_SUBSCRIPTION = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")

# The lists are read as raw pages of ARM's JSON (runbooks.azure.vm_pages…): turning 10 000 VMs into SDK models
# cost 75% of a sweep's CPU. True reads them through the SDK's pagers and models instead, as before (for
# bench/sweep.py's before/after figures); the results are the same.
SDK_MODELS = False

# result of a candidate
FOUND, REMEDIATED, FAILED, SKIPPED = "found", "remediated", "failed", "skipped"


@dataclass(frozen=True)
class SweepEvent:
    """Something worth showing while a sweep runs. ``str(event)`` is a plain log line.

    kind: ``page`` (a page of the VM list was read), ``found`` (candidates known), ``start`` / ``step`` /
    ``done`` (one VM's diagnosis or remediation), ``stop`` (no new remediation will start).
    """

    kind: str
    message: str
    vm: str | None = None
    listed: int = 0  # VMs listed so far
    candidates: int = 0
    finished: int = 0  # candidates diagnosed or remediated so far

    def __str__(self) -> str:
        return f"{self.vm}: {self.message}" if self.vm else self.message


OnEvent = Callable[[SweepEvent], None]


@dataclass
class SweepItem:
    """One candidate VM and what the sweep did with it."""

    vm_id: str
    resource_group: str
    name: str
    statuses: list[str]
    playbook: str
    scenario: str | None = None  # recommended (report) or applied (remediate)
    scenario_basis: str = ""  # why that scenario, or why none
    result: str = FOUND  # found | remediated | failed | skipped
    detail: str = ""  # the one-line error, the reason for skipping, or what the remediation did
    run_id: str | None = None
    fallout: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.resource_group}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"vm_id": self.vm_id, "resource_group": self.resource_group, "name": self.name,
                "statuses": self.statuses, "playbook": self.playbook, "scenario": self.scenario,
                "scenario_basis": self.scenario_basis, "result": self.result, "detail": self.detail,
                "run_id": self.run_id, "fallout": self.fallout}


@dataclass
class SweepReport:
    subscription: str
    resource_group: str | None
    mode: str  # "report" | "remediate"
    listed: int = 0  # VMs in the subscription's list
    in_scope: int = 0  # of those, in the resource group (all when none is given)
    pages: int = 0  # pages of the VM list
    image_pages: int = 0  # pages of the image list (for the recommended scenario)
    activity_pages: int = 0  # pages of the subscription's activity log (failed operations, for detection)
    items: list[SweepItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped: str | None = None  # why remediations stopped starting early
    reads: int = 0
    writes: int = 0
    throttled: int = 0  # 429 answers (each retried by the SDK after ARM's hint)
    paced_s: float = 0.0  # total delay the pacer imposed to stay within ARM's buckets
    seconds: float = 0.0

    def count(self, result: str) -> int:
        return sum(1 for i in self.items if i.result == result)

    def failures(self) -> list[str]:
        """One line per failed VM: ``RG/NAME: error``."""
        return [f"{i.ref}: {i.detail}" for i in self.items if i.result == FAILED]

    @property
    def ok(self) -> bool:
        """No remediation failed and none was left unstarted."""
        return self.count(FAILED) == 0 and self.stopped is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "subscription": self.subscription, "resource_group": self.resource_group, "mode": self.mode,
            "listed": self.listed, "in_scope": self.in_scope, "pages": self.pages, "image_pages": self.image_pages,
            "activity_pages": self.activity_pages,
            "candidates": len(self.items),
            "summary": {r: self.count(r) for r in (FOUND, REMEDIATED, FAILED, SKIPPED)},
            "stopped": self.stopped, "ok": self.ok, "notes": self.notes,
            "requests": {"reads": self.reads, "writes": self.writes, "throttled": self.throttled,
                         "paced_s": round(self.paced_s, 3)},
            "seconds": round(self.seconds, 3), "items": [i.to_dict() for i in self.items],
        }


# --- input ----------------------------------------------------------------------------------------


def parse_number(option: str, text: str, kind: type[int] | type[float]) -> Any:
    """A command-line number, or a UsageError naming the option."""
    try:
        return kind(text.strip())
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise UsageError(f"--{option} must be {what} (got {text!r})") from None


def check_prefer(value: str | None, playbooks: dict[str, Playbook] | None = None) -> str | None:
    """``--prefer``: empty, or a scenario id of one of the playbooks."""
    if not value:
        return None
    known = sorted({sc.id for pb in (playbooks if playbooks is not None else load_playbooks()).values()
                    for sc in pb.scenarios})
    if value not in known:
        raise UsageError(f"--prefer {value}: not a scenario of any playbook; use one of {', '.join(known)}")
    return value


def check_options(subscription: str | None, resource_group: str | None, max_concurrency: int, max_errors: int,
                  max_vms: int) -> None:
    """UsageError on the first bad option (before any request). ``subscription=None``: not checked here."""
    if subscription is not None and not _SUBSCRIPTION.match(subscription):
        raise UsageError(f"bad subscription id '{subscription}': expected a GUID like "
                         "00000000-0000-0000-0000-000000000000")
    if resource_group is not None and (not _RESOURCE_GROUP.match(resource_group) or resource_group.endswith(".")):
        raise UsageError(f"bad resource group name '{resource_group}': 1-90 letters, digits, '-', '_', '.', "
                         "'(' or ')', not ending with '.'")
    for name, value, low, high in (("max-concurrency", max_concurrency, 1, MAX_CONCURRENCY),
                                   ("max-errors", max_errors, 1, None), ("max-vms", max_vms, 1, None)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            bound = f"between {low} and {high}" if high else f"at least {low}"
            raise UsageError(f"--{name} must be a whole number {bound} (got {value!r})")


# --- finding candidates from the list ---------------------------------------------------------------


def _visible(signal: AnySignal, with_model: bool) -> bool:
    """Can this signal be evaluated from the VM list (plus the subscription's image list)?"""
    return signal.listable(with_model)


def _per_vm_list(signal: AnySignal) -> bool:
    """A signal the sweep can evaluate for each listed VM: from the list itself, or from the subscription's
    activity log read once before it (not one that needs the image list, read for the candidates only)."""
    return signal.listable(True) and "images" not in signal.needs


def _needs_activity(pool: dict[str, Playbook]) -> bool:
    return any("activity-log" in pb.signal(s).needs for pb in pool.values() if pb.auto_detect
               for s in (*pb.detect, *pb.detect_unless))


def _events_by_vm(az: Azure, report: SweepReport) -> dict[str, list[dict[str, Any]]]:
    """The subscription's activity log of the last days, read once: each VM's events (lower id)."""
    events: dict[str, list[dict[str, Any]]] = {}
    since = f"eventTimestamp ge '{activity_since()}' and resourceProvider eq 'Microsoft.Compute'"
    try:
        pages: Iterator[list[Any]] = az.monitor.activity_logs.list(filter=since).by_page() if SDK_MODELS \
            else activity_pages(az, since)
        for page in pages:
            report.activity_pages += 1
            for ev in page:
                event: dict[str, Any] = dict(ev.serialize(keep_readonly=True)) if SDK_MODELS else ev
                vm = vm_of(str(event.get("resourceId") or ""))  # the VM's own events and its extensions'
                if vm is not None:
                    events.setdefault(vm, []).append(event)
    except AZURE_ERRORS as e:
        raise call_failed(e, f"read the activity log of subscription {report.subscription}") from e
    return events


def _listed_observation(sub: str, vm: dict[str, Any]) -> Observation:
    """An Observation holding only what the list shows: the model and the VM's statuses."""
    props = vm.get("properties") or {}
    view = props.get("instanceView") or {}
    model = {**vm, "properties": {k: v for k, v in props.items() if k != "instanceView"}}
    rg, name = _rg_and_name(str(vm.get("id", "")))
    return Observation(ref=VmRef(rg, name), subscription=sub, vm=model,
                       instance_view={"statuses": list(view.get("statuses") or [])})


def _statuses_only(vm: Any) -> dict[str, Any]:
    """A listed VM (ARM's JSON or an SDK model) as JSON holding only its id and instance-view statuses."""
    view = (vm.get("properties") or {}).get("instanceView") or {}
    return {"id": vm.get("id"), "properties": {"instanceView": {"statuses": [
        s.as_dict() if hasattr(s, "as_dict") else dict(s) for s in view.get("statuses") or []]}}}


def _json(item: Any) -> dict[str, Any]:
    """A listed item as ARM's JSON: a raw page's dict as is, an SDK model (``SDK_MODELS``) converted."""
    return item.as_dict() if hasattr(item, "as_dict") else item


def _rg_and_name(vm_id: str) -> tuple[str, str]:
    p = resource_parts(vm_id)
    return p.resource_group, p.name


def _has_model(obs: Observation) -> bool:
    return "storageProfile" in obs.props


_Detectors = list[tuple[Playbook, list[AnySignal], list[AnySignal]]]


def detected_playbook(obs: Observation, playbooks: dict[str, Playbook],
                      detectors: dict[bool, _Detectors] | None = None) -> Playbook | None:
    """The first playbook one of whose list-visible detect signals holds (as ``detect.diagnose`` orders them),
    unless one of its list-visible ``detect_unless`` signals holds too. ``detectors``: ``list_detectors`` of
    ``playbooks``, worked out once for many VMs."""
    with_model = _has_model(obs)
    table = detectors[with_model] if detectors is not None else list_detectors(playbooks)[with_model]
    for pb, detect, unless in table:
        for signal in detect:
            if signal.evaluate(obs).holds and not any(u.evaluate(obs).holds for u in unless):
                return pb
    return None


def list_detectors(playbooks: dict[str, Playbook]) -> dict[bool, _Detectors]:
    """Each auto-detected playbook (in order) with its detect and ``detect_unless`` signals the sweep can evaluate
    per listed VM, from the statuses alone (False) or with the model (True)."""
    def usable(ids: Iterable[str], pb: Playbook, with_model: bool) -> list[AnySignal]:
        return [pb.signal(s) for s in ids if _per_vm_list(pb.signal(s)) and _visible(pb.signal(s), with_model)]

    return {with_model: [(pb, usable(pb.detect, pb, with_model), usable(pb.detect_unless, pb, with_model))
                         for pb in playbooks.values() if pb.auto_detect] for with_model in (False, True)}


def recommend(obs: Observation, pb: Playbook) -> tuple[str | None, str]:
    """The first scenario (in the playbook's order of preference) that fits what the list shows, and why.

    None when none fits, or when a preferred scenario depends on a signal the list cannot show.
    """
    with_model = _has_model(obs)
    results: dict[str, SignalResult] = {}
    for sc in pb.scenarios:
        needed = [*sc.when, *sc.unless]
        hidden = [s for s in needed if not _visible(pb.signal(s), with_model)]
        if hidden:
            return None, f"{sc.id} depends on {', '.join(hidden)}, which the VM list does not show: diagnose the VM"
        for s in needed:
            if s not in results:
                results[s] = pb.signal(s).evaluate(obs)
        if all(results[s].holds for s in sc.when) and not any(results[s].holds for s in sc.unless):
            return sc.id, "; ".join(f"{s}: {results[s].detail}" for s in sc.when)
    missing = [f"{s}: {r.detail}" for s, r in results.items() if not r.holds]
    return None, "no scenario fits (" + "; ".join(missing) + ")"


def _needs_images(playbooks: list[Playbook]) -> bool:
    return any("images" in pb.signal(s).needs for pb in playbooks for sc in pb.scenarios
               for s in (*sc.when, *sc.unless))


# --- the sweep --------------------------------------------------------------------------------------


def sweep(az: Azure, *, resource_group: str | None = None, remediate: bool = False, diagnose: bool = False,
          max_concurrency: int = 4, max_errors: int = 1, max_vms: int = 10, admin_secret: str | None = None,
          verify_timeout: float | None = None, prefer: str | None = None, store: Store | str | None = None,
          playbooks: dict[str, Playbook] | None = None, progress: Callable[[str], None] | None = None,
          on_event: OnEvent | None = None, playbook: str | None = None) -> SweepReport:
    """Find the VMs a playbook covers; in remediate mode, remediate them (see the module docstring).

    ``store``: where remediations keep their journals and locks (as for ``remediate``; None: the environment's).
    ``prefer``: the scenario for VMs that several scenarios fit when their playbook says the choice matters;
    without it such VMs are skipped. ``playbook``: sweep for this playbook alone; one detected only when named
    (``auto_detect: false``) is then looked for by reading each VM in scope (its detect facts; the region's
    SKUs once per region).
    """
    sub = az.conn.subscription_id
    check_options(sub, resource_group, max_concurrency, max_errors, max_vms)
    pool = playbooks if playbooks is not None else load_playbooks()
    if playbook is not None:
        if playbook not in pool:
            raise UsageError(f"unknown playbook '{playbook}': use {', '.join(sorted(pool))} (invoke playbooks.list)")
        pool = {playbook: pool[playbook]}
    prefer = check_prefer(prefer, pool)
    if verify_timeout is not None and not verify_timeout > 0:
        raise UsageError(f"verify timeout must be greater than 0 seconds (got {verify_timeout:g})")

    def emit(event: SweepEvent) -> None:
        if on_event is not None:
            on_event(event)
        if progress is not None:
            progress(str(event))

    runs = open_store(az, store) if remediate else None  # a bad store is refused before any request
    report = SweepReport(sub, resource_group, "remediate" if remediate else "report")
    started = time.monotonic()
    reads0, writes0 = az.counter.reads, az.counter.writes
    throttled0, paced0 = az.pacer.throttled, az.pacer.waited_s

    named_only = [pb.id for pb in pool.values() if not pb.auto_detect]
    if named_only and playbook is not None:
        report.notes.append(f"{playbook} is detected only when named: each VM in scope was read for it")
    elif named_only:
        report.notes.append("not swept (detected only when named: diagnose --playbook ID): " + ", ".join(named_only))
    unfindable = [pb.id for pb in pool.values()
                  if pb.auto_detect and not any(_per_vm_list(pb.signal(s)) for s in pb.detect)]
    if unfindable:
        report.notes.append("not swept (their detect signals need per-VM reads): " + ", ".join(unfindable))

    found = _find(az, report, pool, resource_group, emit)
    _recommend_all(az, report, found)
    try:
        if remediate:
            if len(report.items) > max_vms:
                raise StepRefused(
                    f"{len(report.items)} VMs would be remediated, more than --max-vms {max_vms}: nothing was "
                    "changed. Narrow the sweep with --resource-group or raise --max-vms")
            assert runs is not None
            _run_all(az, report, emit, max_concurrency, max_errors, lambda item, hooks: _remediate_one(
                az, item, hooks, pool, runs, admin_secret, verify_timeout, prefer))
        elif diagnose:
            _run_all(az, report, emit, max_concurrency, None, lambda item, hooks: _diagnose_one(az, item, pool))
    finally:
        report.reads, report.writes = az.counter.reads - reads0, az.counter.writes - writes0
        report.throttled, report.paced_s = az.pacer.throttled - throttled0, az.pacer.waited_s - paced0
        report.seconds = time.monotonic() - started
    return report


def _find(az: Azure, report: SweepReport, pool: dict[str, Playbook], resource_group: str | None,
          emit: OnEvent) -> dict[str, tuple[Observation, Playbook]]:
    """Read the VM list page by page; keep the candidates (lower VM id → what the list showed, playbook)."""
    found: dict[str, tuple[Observation, Playbook]] = {}
    scope = resource_group.lower() if resource_group else None
    # Turning every listed model into JSON costs more than the rest of the sweep: when statuses are all the
    # detect signals need, only the candidates' models are converted.
    statuses_suffice = not any(pb.signal(s).listable(True) and not pb.signal(s).listable(False)
                               for pb in pool.values() for s in pb.detect)
    activity = _events_by_vm(az, report) if _needs_activity(pool) else None
    named = next(iter(pool.values())) if len(pool) == 1 and not next(iter(pool.values())).auto_detect else None
    region_skus: dict[str, list[dict[str, Any]]] = {}
    listed: set[str] = set()  # every VM of the list in scope (lower id)
    detectors = list_detectors(pool)
    try:
        pages: Iterator[Any] = az.compute.virtual_machines.list_all(status_only="true").by_page() if SDK_MODELS \
            else vm_pages(az, status_only=True)
        for page in pages:
            report.pages += 1
            for vm in page:
                report.listed += 1
                obs = _listed_observation(report.subscription, _statuses_only(vm) if statuses_suffice else _json(vm))
                if scope is not None and obs.ref.resource_group.lower() != scope:
                    continue
                report.in_scope += 1
                listed.add(obs.vm_id.lower())
                if activity is not None and obs.vm_id.lower() in activity:
                    created = (vm.get("properties") or {}).get("timeCreated")
                    obs.failed_operations = failed_operations(activity[obs.vm_id.lower()], created)
                pb = named if named is not None and _read_and_detect(az, obs.ref, named, region_skus) else \
                    detected_playbook(obs, pool, detectors) if named is None else None
                if pb is None:
                    continue
                if statuses_suffice:
                    ops = obs.failed_operations
                    obs = _listed_observation(report.subscription, _json(vm))
                    obs.failed_operations = ops
                found[obs.vm_id.lower()] = (obs, pb)
                report.items.append(SweepItem(obs.vm_id, obs.ref.resource_group, obs.ref.name, obs.statuses(),
                                              pb.id))
            emit(SweepEvent("page", f"listed {report.listed} VMs ({report.pages} page(s)), "
                                    f"{len(report.items)} candidate(s)", listed=report.listed,
                            candidates=len(report.items)))
    except AZURE_ERRORS as e:
        raise call_failed(e, f"list the VMs of subscription {report.subscription}") from e
    if activity is not None and named is None:
        _refused_creates(report, pool, {k: v for k, v in activity.items() if k not in listed}, scope, found)
    if resource_group and report.in_scope == 0:
        report.notes.append(f"no VM of the subscription is in resource group {resource_group}")
    emit(SweepEvent("found", f"{len(report.items)} candidate(s) among {report.in_scope} VM(s)",
                    listed=report.listed, candidates=len(report.items)))
    return found


def _refused_creates(report: SweepReport, pool: dict[str, Playbook], activity: dict[str, list[dict[str, Any]]],
                     scope: str | None, found: dict[str, tuple[Observation, Playbook]]) -> None:
    """The VMs the list cannot show (``activity``: the events of VMs not listed): those whose create Azure refused
    (no VM exists), found in the activity log already read, each a candidate of the playbook its refusal belongs
    to."""
    for vm_id, events in sorted(activity.items()):
        rg, name = _rg_and_name(vm_id)
        if scope is not None and rg.lower() != scope:
            continue
        obs = Observation(ref=VmRef(rg, name), subscription=report.subscription, vm=None,
                          failed_operations=failed_operations(events), gathered={"activity-log"})
        if refused_create(obs) is None:
            continue  # a VM that existed (listed or deleted since): not a refused create
        pb = detected_playbook(obs, pool)
        if pb is None:
            continue
        found[vm_id] = (obs, pb)
        report.items.append(SweepItem(obs.vm_id, rg, name, ["(not created: its create was refused)"], pb.id))


def _read_and_detect(az: Azure, ref: VmRef, pb: Playbook, region_skus: dict[str, list[dict[str, Any]]]) -> bool:
    """Read what ``pb``'s detection needs about one VM (the region's SKUs once per region) and evaluate it."""
    facts = {f for s in (*pb.detect, *pb.detect_unless) for f in pb.signal(s).needs}
    seen = observe(az, ref, facts - {"skus"}, missing_ok=True)
    if seen.vm is None:
        return False
    if "skus" in facts:
        if seen.location not in region_skus:
            region_skus[seen.location] = gather(az, seen, {"skus"}).skus
        seen.skus, seen.gathered = region_skus[seen.location], seen.gathered | {"skus"}
    return detected(seen, pb)


def _recommend_all(az: Azure, report: SweepReport, found: dict[str, tuple[Observation, Playbook]]) -> None:
    """The recommended scenario of every candidate, from the list and one subscription-wide image list."""
    if not found:
        return
    if _needs_images([pb for _, pb in found.values()]):
        by_source: dict[str, list[dict[str, Any]]] = {}
        try:
            pages: Iterator[Any] = az.compute.images.list().by_page() if SDK_MODELS else image_pages(az)
            for page in pages:
                report.image_pages += 1
                for image in page:
                    d = _json(image)
                    source = str(((d.get("properties") or {}).get("sourceVirtualMachine") or {}).get("id", ""))
                    if source:
                        by_source.setdefault(source.lower(), []).append(d)
        except AZURE_ERRORS as e:
            raise call_failed(e, f"list the images of subscription {report.subscription}") from e
        for key, (obs, _) in found.items():
            obs.images = by_source.get(key, [])
    for item in report.items:
        obs, pb = found[item.vm_id.lower()]
        item.scenario, item.scenario_basis = recommend(obs, pb)


@dataclass
class _Tally:
    failed: int = 0
    finished: int = 0
    stop: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _never(question: str) -> bool:
    """Confirm hook of sweep runs: they run with yes=True, so nothing is asked; if it were, the answer is no."""
    return False


def _step_reporter(emit: OnEvent, vm: str) -> Callable[[str], None]:
    return lambda line: emit(SweepEvent("step", line.strip(), vm=vm))


def _run_all(az: Azure, report: SweepReport, emit: OnEvent, max_concurrency: int, max_errors: int | None,
             work: Callable[[SweepItem, Hooks], None]) -> None:
    """Run ``work`` on every candidate, ``max_concurrency`` at a time; once ``max_errors`` items have failed
    (None: never), start no more. Ctrl-C also stops new starts; running ones finish."""
    todo = list(report.items)
    total = len(todo)
    tally = _Tally()

    def worker() -> None:
        while True:
            with tally.lock:
                if tally.stop or not todo:
                    return
                item = todo.pop(0)
            hooks = Hooks(confirm=_never, progress=_step_reporter(emit, item.ref))
            emit(SweepEvent("start", "started", vm=item.ref, candidates=total))
            try:
                work(item, hooks)
            except Exception as e:  # a bug must not stop the other VMs; it is reported with its type
                first = (str(e).splitlines() or [""])[0]
                item.result, item.detail = FAILED, f"unexpected {type(e).__name__}: {first}"
            stop = ""
            with tally.lock:
                tally.finished += 1
                finished = tally.finished
                if item.result == FAILED:
                    tally.failed += 1
                    if max_errors is not None and tally.failed >= max_errors and not tally.stop:
                        tally.stop = stop = (f"{tally.failed} remediation(s) failed (--max-errors {max_errors}): "
                                             "no new one was started")
            emit(SweepEvent("done", item.result + (f": {item.detail}" if item.detail else ""), vm=item.ref,
                            candidates=total, finished=finished))
            if stop:
                emit(SweepEvent("stop", stop))

    threads = [threading.Thread(target=worker, name=f"sweep-{i}", daemon=True)
               for i in range(min(max_concurrency, total))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        with tally.lock:
            tally.stop = "interrupted: no new one was started; the running ones were let finish"
        emit(SweepEvent("stop", tally.stop))
        for t in threads:
            t.join()
    if tally.stop:
        report.stopped = tally.stop
        for item in todo:
            item.result, item.detail = SKIPPED, "not started: " + tally.stop.split(":")[0]


def _diagnose_one(az: Azure, item: SweepItem, pool: dict[str, Playbook]) -> None:
    try:
        named = item.playbook if item.playbook in pool and not pool[item.playbook].auto_detect else None
        diag = run_diagnosis(az, VmRef(item.resource_group, item.name), pool, playbook=named)
    except RunbookError as e:
        item.detail = f"diagnosis failed: {e}"
        return
    rec = diag.recommended
    item.scenario = rec.id if rec else None
    item.playbook = diag.playbook.id if diag.playbook else item.playbook
    item.scenario_basis = "; ".join(r for f in diag.fits if f.scenario == rec for r in f.reasons) if rec else \
        "; ".join(r for f in diag.fits for r in f.reasons if "does not hold" in r or "rules it out" in r)
    if diag.playbook is None:
        item.detail = "no longer covered by a playbook: " + ", ".join(diag.observation.statuses())


def _remediate_one(az: Azure, item: SweepItem, hooks: Hooks, pool: dict[str, Playbook], runs: Store,
                   admin_secret: str | None, verify_timeout: float | None, prefer: str | None) -> None:
    """Remediate one candidate as ``invoke remediate --yes`` does; the outcome goes into ``item``."""
    ref = VmRef(item.resource_group, item.name)
    try:
        named = item.playbook if item.playbook in pool and not pool[item.playbook].auto_detect else None
        result = remediate_vm(az, ref, hooks, admin_secret=admin_secret, verify_timeout=verify_timeout,
                              prefer=prefer, yes=True, store=runs, playbooks=pool, playbook=named)
    except ChoiceRequired as e:
        item.result, item.detail = SKIPPED, f"{e} (sweep with --prefer, or remediate it alone)"
        return
    except AdviceOnly as e:  # a recommendation: the sweep never applies one
        # the advice's first lines after its two-line header (the VM and title; the playbook and its kind)
        item.result, item.detail = SKIPPED, "advice only (no writes): " + " ".join(
            line.strip() for line in str(e).split("\n")[1:4]).strip()
        return
    except (NotApplicable, LockHeld) as e:
        if isinstance(e, LockLost):  # this run lost its lock part-way: a failure, not someone else's run
            item.result, item.detail = FAILED, str(e)
            return
        item.result, item.detail = SKIPPED, str(e)
        return
    except RunbookError as e:
        item.result, item.detail = FAILED, str(e)
        with contextlib.suppress(RunbookError):  # the failed run's journal, for runs.show / the next sweep
            failed_run = pending_run(az, ref, store=runs)
            item.run_id = failed_run.run_id if failed_run is not None else None
        return
    outcome, plan = result.outcome, result.plan
    assert outcome is not None
    item.result, item.playbook, item.run_id = REMEDIATED, plan.playbook, plan.run_id
    item.scenario_basis = item.scenario_basis if item.scenario == plan.scenario else plan.decided_by
    item.scenario = plan.scenario
    item.detail = f"{outcome.made_calls} call(s) made, {outcome.skipped_calls} already done" + \
        (" (resumed an unfinished run)" if result.resumed else "")
    item.fallout = list(outcome.fallout)


# --- showing it ---------------------------------------------------------------------------------------


@contextmanager
def console_progress(stream: TextIO | None = None) -> Iterator[OnEvent]:
    """An ``on_event`` callback. On a terminal: a row per VM in flight (its last step; gone when it ends, leaving
    its result) under the listing and a total bar (M/N VMs), each row ≤ 100 columns. Otherwise whole lines of at
    most 100 columns, each prefixed by its VM (a long event wraps; nothing is cut), an event's lines written at once
    so two threads' never mix (logs, CI)."""
    from runbooks.text import WIDTH, wrap_prefixed

    def lines(event: SweepEvent) -> list[str]:
        return wrap_prefixed(event.vm or "", event.message)

    out = stream if stream is not None else sys.stderr
    if not out.isatty():
        lock = threading.Lock()

        def plain(event: SweepEvent) -> None:
            text = "".join(line + "\n" for line in lines(event))
            with lock:
                out.write(text)
                out.flush()

        yield plain
        return
    from rich.console import Console
    from rich.progress import BarColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bars
    from rich.table import Column

    # spinner 1 + description 62 + bar 15 + count 7 + elapsed 7, and a space between each: 96 columns
    with Bars(SpinnerColumn(table_column=Column(width=1)),
              TextColumn("{task.description}", table_column=Column(width=62, no_wrap=True, overflow="ellipsis")),
              BarColumn(bar_width=15), TextColumn("{task.fields[count]}", table_column=Column(width=7, no_wrap=True)),
              TimeElapsedColumn(table_column=Column(width=7, no_wrap=True)),
              console=Console(file=out, width=min(WIDTH, Console(file=out).width)), expand=False) as bars:
        lock = threading.Lock()
        listing = bars.add_task("listing VMs", total=None, count="")
        total: list[TaskID] = []
        rows: dict[str, TaskID] = {}

        def show(event: SweepEvent) -> None:
            with lock:
                _show(event)

        def _show(event: SweepEvent) -> None:
            if event.kind == "page":
                bars.update(listing, completed=event.listed, description=f"listing VMs ({event.candidates} found)")
            elif event.kind == "found":
                bars.update(listing, total=max(event.listed, 1), completed=max(event.listed, 1), count="",
                            description=f"listed {event.listed} VMs: {event.message}")
            elif event.kind == "start" and event.vm:
                if not total:
                    total.append(bars.add_task("VMs done", total=event.candidates, count=f"0/{event.candidates}"))
                rows[event.vm] = bars.add_task(f"  {event.vm}: started", total=None, count="")
            elif event.kind == "step" and event.vm in rows:
                bars.update(rows[event.vm], description=f"  {event.vm}: {event.message}")
            elif event.kind == "done":
                if event.vm in rows:
                    bars.remove_task(rows.pop(event.vm))
                if total:
                    bars.update(total[0], completed=event.finished, count=f"{event.finished}/{event.candidates}")
                bars.console.print("\n".join(lines(event)), markup=False, highlight=False, soft_wrap=True)
            elif event.kind == "stop":
                bars.console.print("\n".join(lines(event)), style="yellow", markup=False, highlight=False,
                                   soft_wrap=True)

        yield show


def sweep_text(report: SweepReport) -> str:
    """The report as a table and a summary, for people (100 columns: the DETAIL column wraps under itself)."""
    from runbooks.text import fit_lines, table

    scope = f"resource group {report.resource_group}" if report.resource_group else "the whole subscription"
    lines = [f"Sweep of subscription {report.subscription} ({scope}, {report.mode} mode): {report.listed} VM(s) "
             f"listed in {report.pages} page(s), {report.in_scope} in scope, {len(report.items)} in a state a "
             "playbook covers."]
    if report.items:
        lines += table(("VM", "PLAYBOOK", "SCENARIO", "RESULT", "DETAIL"),
                       [(i.ref, i.playbook, i.scenario or "-", i.result, i.detail or ", ".join(i.statuses))
                        for i in report.items])
    for note in report.notes:
        lines.append(f"note: {note}")
    if report.stopped:
        lines.append(f"stopped: {report.stopped}")
    if report.mode == "remediate":
        lines.append(f"{report.count(REMEDIATED)} remediated, {report.count(FAILED)} failed, "
                     f"{report.count(SKIPPED)} skipped.")
    for item in report.items:
        for line in item.fallout:
            lines.append(f"fallout {item.ref}: {line}")
    lines.append(f"Requests: {report.reads} read(s), {report.writes} write(s); {report.throttled} throttled (429); "
                 f"paced {report.paced_s:.1f} s; took {report.seconds:.1f} s.")
    return fit_lines(lines)
