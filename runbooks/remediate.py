"""The remediation use-cases every face calls — the CLI, the Automation runbooks and the sweep: diagnose,
plan, and ``remediate_vm``, the one path from "this VM" to a finished (or resumed, or dry) run. Each takes
an ``Azure`` connection and returns data; rendering is the caller's.

Those that read or write runs take ``store``: a ``runbooks.journal.Store``, a ``--store`` value, or None for
the one the environment names (the local directory unless ``RUNBOOKS_STORE_*`` say otherwise)."""

from __future__ import annotations

import contextlib
import copy
import json
import textwrap
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from runbooks.apply import Hooks, Outcome, execute
from runbooks.azure import Azure, check_secrets, resource_parts
from runbooks.detect import (
    Diagnosis,
    detected,
    detection_facts,
    evaluate_playbook,
    matching,
    playbook_facts,
    scenario_facts,
)
from runbooks.errors import (
    Aborted,
    AdviceOnly,
    ChoiceRequired,
    JournalError,
    NotApplicable,
    PlanDrifted,
    UsageError,
)
from runbooks.journal import RunJournal, Store, store_from_env
from runbooks.observe import VmRef, gather, observe
from runbooks.plan import Plan, make_plan, replan
from runbooks.playbook import Playbook, Scenario, load_playbooks
from runbooks.preflight import preflight
from runbooks.rollback import RollbackPlan

Settings = dict[str, dict[str, Any]]  # step name → parameter → value


def parse_settings(pairs: Iterable[str]) -> Settings:
    """``["snapshot-disks.incremental=true", …]`` (``--set``) → ``{"snapshot-disks": {"incremental": True}}``.
    Values are read as YAML scalars (true, 5, 1.5, text)."""
    out: Settings = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        step, dot, param = key.strip().partition(".")
        if not eq or not dot or not step or not param:
            raise UsageError(f"--set {pair!r}: expected STEP.PARAM=VALUE, e.g. --set snapshot-disks.incremental=true")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out.setdefault(step, {})[param] = value
    return out


def _pool(playbooks: Mapping[str, Playbook] | None) -> dict[str, Playbook]:
    return dict(playbooks) if playbooks is not None else load_playbooks()


def _playbook(pool: Mapping[str, Playbook], playbook_id: str) -> Playbook:
    if playbook_id not in pool:
        raise UsageError(f"unknown playbook '{playbook_id}': use {', '.join(sorted(pool))} (invoke playbooks.list)")
    return pool[playbook_id]


def run_diagnosis(az: Azure, ref: VmRef, playbooks: Mapping[str, Playbook] | None = None, *,
                  playbook: str | None = None) -> Diagnosis:
    """Read what the playbooks' detection needs, find the playbook that applies (``playbook``: this one),
    then read what its scenarios need. Nothing else is read."""
    pool = _pool(playbooks)
    wanted = _playbook(pool, playbook) if playbook else None
    obs = observe(az, ref, detection_facts(pool.values()))
    found = matching(obs, pool)
    matched = [p.id for p in found]
    if wanted is not None:
        gather(az, obs, playbook_facts(wanted))
        if not wanted.auto_detect and detected(obs, wanted):
            matched.insert(0, wanted.id)  # detected only when named: its detect facts are read now
        return evaluate_playbook(obs, wanted, matched)
    if not found:
        return Diagnosis(obs, None, {}, [], [])
    first: Diagnosis | None = None
    for pb in found:  # the first that has an answer for the VM: a fix that fits, or an explanation
        gather(az, obs, playbook_facts(pb))
        diag = evaluate_playbook(obs, pb, matched)
        if pb.explanation or any(f.fits for f in diag.fits):
            return diag
        first = first or diag
    assert first is not None
    return first


def choose_scenario(diag: Diagnosis, scenario: str | None = None, *, prefer: str | None = None,
                    hooks: Hooks | None = None, yes: bool = False, dry_run: bool = False,
                    sized: bool = False) -> tuple[Scenario, str]:
    """The scenario to run and what decided it. An explicit ``scenario`` must fit. When several fit and the
    playbook says the choice matters, ``prefer`` decides, else an interactive run asks (``hooks.choose``),
    else ChoiceRequired (a dry run shows the first and says so). When only fixes that run when named fit,
    ``sized`` (the operator gave the size of a resize) names the one of them that resizes."""
    pb, ref = diag.playbook, diag.observation.ref
    if pb is None:
        state = ", ".join(diag.observation.statuses()) or "no status"
        raise NotApplicable(f"{ref} shows nothing a playbook covers ({state})")
    if diag.playbook is not None and pb.id not in diag.matched:
        raise NotApplicable(f"{ref}: playbook {pb.id} does not apply: " + "; ".join(
            [f"{d}: {diag.signals[d].detail}" for d in pb.detect]
            + [f"{d} holds (rules it out): {diag.signals[d].detail}" for d in pb.detect_unless
               if diag.signals[d].holds]))
    if scenario:
        try:
            chosen = pb.scenario(scenario)
        except KeyError:
            known = ", ".join(s.id for s in pb.scenarios)
            raise UsageError(f"unknown scenario '{scenario}' for playbook {pb.id}: use {known}") from None
        fit = diag.fit(chosen.id)
        if not fit.fits:  # an explicit choice picks among fitting scenarios; it does not override the evidence
            raise NotApplicable(f"{ref}: scenario {chosen.id} does not fit: " + "; ".join(
                r for r in fit.reasons if "does not hold" in r or "rules it out" in r))
        return chosen, "asked for (--scenario)"
    named_only = [f.scenario for f in diag.fits if f.fits and f.scenario.explicit]
    fitting = [f.scenario for f in diag.fits if f.fits and not f.scenario.explicit]
    if not fitting and (named_only or pb.explanation):
        resizing = [sc for sc in named_only if any(st.run == "resize-vm" for st in sc.run_steps)
                    and not any(st.run == "deallocate-set" for st in sc.run_steps)]  # stopping a set needs its name
        if sized and len(resizing) == 1:
            return resizing[0], "the one fix of the advice that takes the size given (--size)"
        if sized and resizing:
            raise ChoiceRequired(f"the size given fits {' and '.join(sc.id for sc in resizing)} of {pb.id}: pass "
                                 "--scenario; nothing was changed")
        raise AdviceOnly(advice_text(diag, named_only))
    if not fitting:
        raise NotApplicable(f"{ref}: no scenario of {pb.id} fits: " + "; ".join(
            r for f in diag.fits for r in f.reasons if "does not hold" in r or "rules it out" in r))
    if len(fitting) == 1:
        return fitting[0], "the only scenario that fits"
    why = diag.ambiguity()
    if why is None:
        return fitting[0], f"the first of {len(fitting)} that fit (the playbook's order of preference)"
    if prefer and prefer in {s.id for s in fitting}:
        return pb.scenario(prefer), "several fit; chosen by --prefer"
    if dry_run:
        return fitting[0], f"several fit, shown: the first; a run asks or needs --scenario ({why.rstrip('.')})"
    if hooks is not None and hooks.choose is not None and not yes:
        options = [(s.id, "; ".join(f"{label}: {value}" for label, value in diag.evidence(s)) or s.title)
                   for s in fitting]
        picked = hooks.choose(why, options)
        if picked in {s.id for s in fitting}:
            return pb.scenario(str(picked)), "several fit; chosen by the operator"
    names = " or ".join(s.id for s in fitting)
    raise ChoiceRequired(f"{why.rstrip('.')}. Pass --scenario {names}; nothing was changed")


def advice_text(diag: Diagnosis, named_only: list[Scenario]) -> str:
    """What a playbook that only advises says for this VM, and the command that applies its fix."""
    assert diag.playbook is not None
    ref, pb = diag.observation.ref, diag.playbook
    kind = "It advises" if pb.recommend or not pb.explanation else "It explains"
    lines = [f"{ref}: {pb.title}", f"  Playbook {pb.id}. {kind}; nothing was changed."]
    lines += [f"  {line}" for line in explanation_lines(diag)]
    advice = diag.advice
    lines += [f"  {line}" for line in (advice or {}).get("lines", [])]
    if not advice and not pb.explanation:  # a report, not a recommendation: its scenarios' evidence is the report
        seen: list[tuple[str, str]] = []
        for sc in named_only:
            seen += [ev for ev in diag.evidence(sc) if ev not in seen]
        lines += [f"  {label}: {value}" for label, value in seen]
    top, requested = (advice or {}).get("top"), ((advice or {}).get("data") or {}).get("requested")
    for sc in named_only:
        sizes = {str(st.with_.get("size", "")).lower() for st in sc.run_steps if st.run == "resize-vm"}
        size = requested if "requested" in sizes else top if "recommended" in sizes else None
        to = f", to {size}" if size else ""
        lines += textwrap.wrap(f"to apply {sc.id} ({sc.title}{to}):", 98, initial_indent="  ",
                               subsequent_indent="    ", break_on_hyphens=False)
        lines.append(f"    invoke remediate --vm {ref} --scenario {sc.id}")
    return "\n".join(lines)


def explanation_lines(diag: Diagnosis) -> list[str]:
    """What an explaining playbook says of the VM: the evidence, what it means, the articles that tell the whole
    story, and the post-checks (what ARM shows now)."""
    pb = diag.playbook
    if pb is None or not pb.explanation:
        return []
    lines = [diag.signals[d].detail for d in pb.detect if d in diag.signals and diag.signals[d].holds]
    lines.append(" ".join(pb.explanation.split()))
    lines.append(f"article{'s' if len(diag.articles()) > 1 else ''}: {', '.join(diag.articles())}")
    lines += [f"post-check {what}: {'yes' if ok else 'NO'} ({seen})" for what, ok, seen in diag.post_checks()]
    return [part for line in lines for part in textwrap.wrap(line, 92, subsequent_indent="  ",  # ids stay whole
                                                             break_on_hyphens=False, break_long_words=False)]


def _settings_for(scenario: Scenario, pb: Playbook, settings: Settings | None,
                  admin_secret: str | None) -> Settings:
    """``--set`` values checked against the scenario's steps, plus ``--admin-secret`` for every step that
    takes one."""
    names = [s.run for s in scenario.run_steps]
    out: Settings = {k: dict(v) for k, v in (settings or {}).items()}
    for step in out:
        if step not in names:
            raise UsageError(f"--set {step}.…: scenario {scenario.id} of {pb.id} has no step {step}; its steps: "
                             f"{', '.join(names)}")
    if admin_secret:
        for s in scenario.run_steps:
            if "admin_secret" in s.spec.params.model_fields:
                out.setdefault(s.run, {})["admin_secret"] = admin_secret
    return out


def plan_remediation(az: Azure, ref: VmRef, scenario: str | None = None, *,
                     playbooks: Mapping[str, Playbook] | None = None, playbook: str | None = None,
                     settings: Settings | None = None, admin_secret: str | None = None,
                     verify_timeout: float | None = None, prefer: str | None = None, hooks: Hooks | None = None,
                     yes: bool = False, dry_run: bool = False) -> tuple[Diagnosis, Plan]:
    """Observe, diagnose, choose the scenario and plan it (read-only)."""
    if verify_timeout is not None and not verify_timeout > 0:
        raise UsageError(f"verify timeout must be greater than 0 seconds (got {verify_timeout:g})")
    diag = run_diagnosis(az, ref, playbooks, playbook=playbook)
    chosen, decided_by = choose_scenario(diag, scenario, prefer=prefer, hooks=hooks, yes=yes, dry_run=dry_run,
                                         sized="size" in (settings or {}).get("resize-vm", {}))
    assert diag.playbook is not None
    gather(az, diag.observation, scenario_facts(chosen, diag.playbook))
    plan = make_plan(diag.observation, diag.playbook, chosen, run_id=str(uuid.uuid4()), decided_by=decided_by,
                     settings=_settings_for(chosen, diag.playbook, settings, admin_secret))
    if verify_timeout is not None:
        plan.verify_timeout_s = verify_timeout
    return diag, plan


def open_store(az: Azure | None, store: Store | str | None = None) -> Store:
    """``store`` itself, or the store a ``--store`` value or the environment names (blob stores use ``az``'s
    credential, the one ARM is called with)."""
    if isinstance(store, Store):
        return store
    return store_from_env(store or "", az.credential if az is not None else None)


def pending_run(az: Azure, ref: VmRef, *, store: Store | str | None = None) -> RunJournal | None:
    """The VM's unfinished run, if any: remediating the VM again resumes it instead of planning anew."""
    return open_store(az, store).active_run(ref.vm_id(az.conn.subscription_id))


def _calls_of(plan: Plan) -> list[Any]:
    return [call for step in plan.steps for call in step.calls]


def _remaining(plan: Plan, journal: RunJournal) -> list[Any]:
    """The calls of the steps a resume will still run."""
    done = journal.done_steps()
    return [call for i, step in enumerate(plan.steps) if i not in done for call in step.calls]


@dataclass
class RunResult:
    """What ``remediate_vm`` did: the plan it ran (or showed), the outcome (None for a dry run), whether it
    resumed an unfinished run, and the diagnosis (None when it resumed)."""

    plan: Plan
    outcome: Outcome | None
    resumed: bool = False
    diagnosis: Diagnosis | None = None


def remediate_vm(az: Azure, ref: VmRef, hooks: Hooks, *, playbook: str | None = None, scenario: str | None = None,
                 settings: Settings | None = None, admin_secret: str | None = None,
                 verify_timeout: float | None = None, prefer: str | None = None, yes: bool = False,
                 dry_run: bool = False, store: Store | str | None = None,
                 playbooks: Mapping[str, Playbook] | None = None,
                 show_plan: Callable[[Plan], None] | None = None) -> RunResult:
    """The one remediation path: resume the VM's unfinished run if it has one, else diagnose, choose, plan,
    show (``show_plan``), check every secret, and apply. ``dry_run`` stops after showing what the next run
    would do (a resume included) with zero writes."""
    runs = open_store(az, store)
    pending = runs.active_run(ref.vm_id(az.conn.subscription_id))
    if pending is not None:
        plan = pending.plan()
        if scenario and scenario != plan.scenario and scenario == plan.fallback and playbook in (None, plan.playbook) \
                and failed_verification(pending) is not None:
            return _fall_back(az, pending, scenario, hooks, settings=settings, admin_secret=admin_secret,
                              verify_timeout=verify_timeout, yes=yes, dry_run=dry_run, store=runs,
                              playbooks=playbooks, show_plan=show_plan)
        if scenario and scenario != plan.scenario and playbook in (None, plan.playbook) \
                and changed_nothing(pending):
            return _replace(az, pending, ref, scenario, hooks, settings=settings, admin_secret=admin_secret,
                            verify_timeout=verify_timeout, yes=yes, dry_run=dry_run, store=runs,
                            playbooks=playbooks, show_plan=show_plan)
        asked = [f"--{k} {v}" for k, v in (("playbook", playbook), ("scenario", scenario))
                 if v and v != getattr(plan, k)]
        if asked:
            raise JournalError(f"run {pending.run_id} ({plan.playbook}/{plan.scenario}) of {ref} is unfinished, and "
                               f"{' '.join(asked)} asks for another: resume it (invoke resume --vm {ref}) or close it "
                               f"(invoke runs.abandon {pending.run_id}) first; nothing was changed")
        if show_plan is not None:
            show_plan(plan)
        if dry_run:
            hooks.progress(f"Dry run: {ref} has the unfinished run {pending.run_id}; the next run resumes it "
                           f"(steps done so far: {len(pending.done_steps())} of {len(plan.steps)}).")
            return RunResult(plan, None, resumed=True)
        hooks.progress(f"An unfinished run {pending.run_id} exists for {ref}: resuming it.")
        check_secrets(az, _calls_of(plan))  # fail now, before any write
        return RunResult(plan, _run(az, plan, hooks, yes=yes, store=runs), resumed=True)
    diag, plan = plan_remediation(az, ref, scenario, playbooks=playbooks, playbook=playbook, settings=settings,
                                  admin_secret=admin_secret, verify_timeout=verify_timeout, prefer=prefer,
                                  hooks=hooks, yes=yes, dry_run=dry_run)
    return _show_then_run(az, plan, diag, hooks, yes=yes, dry_run=dry_run, store=runs, show_plan=show_plan)


def _show_then_run(az: Azure, plan: Plan, diag: Diagnosis | None, hooks: Hooks, *, yes: bool, dry_run: bool,
                   store: Store, show_plan: Callable[[Plan], None] | None, dry_note: str = "",
                   supersedes: str | None = None, reason: str = "") -> RunResult:
    """Show a new plan; a dry run stops there (saying ``dry_note``); else check every secret, then run it."""
    if show_plan is not None:
        show_plan(plan)
    if dry_run:
        if dry_note:
            hooks.progress(dry_note)
        return RunResult(plan, None, diagnosis=diag)
    check_secrets(az, _calls_of(plan))  # fail now, before any write
    return RunResult(plan, _run(az, plan, hooks, yes=yes, store=store, supersedes=supersedes, reason=reason),
                     diagnosis=diag)


def changed_nothing(journal: RunJournal) -> bool:
    """Did this run fail having changed nothing: every call it started was refused or failed (a start that Azure
    could not place)? A crash between a call and its answer does not count: that call may have taken effect."""
    events = journal.events()
    if not any(e.get("event") == "run-failed" for e in events):
        return False
    started = [(e.get("op"), e.get("resource")) for e in events if e.get("event") == "call-intent"]
    # only ARM's refusals (an error code) count: a lost answer may have taken effect
    failed = [(e.get("op"), e.get("resource")) for e in events if e.get("event") == "call-failed" and e.get("code")]
    return not any(e.get("event") == "call-done" for e in events) and sorted(map(str, started)) == sorted(
        map(str, failed))


def _replace(az: Azure, failed: RunJournal, ref: VmRef, scenario: str, hooks: Hooks, *, settings: Settings | None,
             admin_secret: str | None, verify_timeout: float | None, yes: bool, dry_run: bool, store: Store,
             playbooks: Mapping[str, Playbook] | None, show_plan: Callable[[Plan], None] | None) -> RunResult:
    """Another scenario after a failed run that changed nothing: planned afresh, and it closes the failed run."""
    old = failed.plan()
    diag, plan = plan_remediation(az, ref, scenario, playbooks=playbooks, playbook=old.playbook, settings=settings,
                                  admin_secret=admin_secret, verify_timeout=verify_timeout, hooks=hooks, yes=yes,
                                  dry_run=dry_run)
    plan.decided_by += f"; replaces run {old.run_id} ({old.scenario}), which failed having changed nothing"
    return _show_then_run(az, plan, diag, hooks, yes=yes, dry_run=dry_run, store=store, show_plan=show_plan,
                          dry_note=f"Dry run: run {old.run_id} failed having changed nothing; the next run closes it "
                          f"and runs {plan.scenario} as planned above.", supersedes=old.run_id,
                          reason=f"replaced by run {plan.run_id} (scenario {plan.scenario})")


def failed_verification(journal: RunJournal) -> str | None:
    """Why the run failed verification, when all its steps finished and only its verification failed."""
    failed = [e for e in journal.events() if e.get("event") == "run-failed"]
    if not failed or failed[-1].get("type") != "VerifyFailed":
        return None
    if len(journal.done_steps()) < len(journal.plan().steps):
        return None
    return str(failed[-1].get("error", ""))


def _fall_back(az: Azure, failed: RunJournal, scenario: str, hooks: Hooks, *, settings: Settings | None,
               admin_secret: str | None, verify_timeout: float | None, yes: bool, dry_run: bool, store: Store,
               playbooks: Mapping[str, Playbook] | None, show_plan: Callable[[Plan], None] | None) -> RunResult:
    """One command after a failed verification: plan the scenario the failed run names as its ``fallback`` on the
    VM as it is now, and run it, closing the failed run. The evidence is the failed run's own observation (the VM
    as it was before that run changed it): the fallback must have fitted then."""
    old = failed.plan()
    pb = _playbook(_pool(playbooks), old.playbook)
    chosen = pb.scenario(scenario)
    before = evaluate_playbook(old.observation, pb, [pb.id])
    fit = before.fit(chosen.id)
    if not fit.fits:
        raise NotApplicable(f"{old.ref}: scenario {chosen.id} did not fit before run {old.run_id} either: "
                            + "; ".join(r for r in fit.reasons if "does not hold" in r or "rules it out" in r))
    now = observe(az, old.observation.ref, playbook_facts(pb) | scenario_facts(chosen, pb))
    # The VM the failed run built may lack what only the first one had (an osProfile is not kept by a VM built on
    # an attached disk): the definition the failed run saw fills it in.
    if "osProfile" not in now.props and "osProfile" in old.observation.props:
        now.props["osProfile"] = copy.deepcopy(old.observation.props["osProfile"])
    evidence = "; ".join(f"{label}: {value}" for label, value in before.evidence(chosen))
    why = f"fallback of run {old.run_id}, whose scenario {old.scenario} failed verification; {chosen.id} fitted " \
          f"the VM before that run ({evidence})"
    plan = make_plan(now, pb, chosen, run_id=str(uuid.uuid4()), decided_by=why,
                     settings=_settings_for(chosen, pb, settings, admin_secret))
    if verify_timeout is not None:
        plan.verify_timeout_s = verify_timeout
    return _show_then_run(az, plan, None, hooks, yes=yes, dry_run=dry_run, store=store, show_plan=show_plan,
                          dry_note=f"Dry run: run {old.run_id} failed verification; the next run closes it and runs "
                          f"{chosen.id} as planned above.", supersedes=old.run_id,
                          reason=f"superseded by run {plan.run_id} (fallback scenario {chosen.id})")


def remediate(az: Azure, plan: Plan, hooks: Hooks, *, yes: bool = False, store: Store | str | None = None) -> Outcome:
    """Apply a plan just made from a fresh observation (``remediate_vm`` is the whole path)."""
    return _run(az, plan, hooks, yes=yes, store=open_store(az, store))


def load_plan_file(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"plan file {path} does not exist") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"plan file {path} is not readable JSON: {e}") from None
    return Plan.from_dict(data, source=str(path))


def apply_saved(az: Azure, plan: Plan, hooks: Hooks, *, yes: bool = False, vm: VmRef | None = None,
                store: Store | str | None = None, playbooks: Mapping[str, Playbook] | None = None) -> Outcome:
    """Apply a saved plan exactly. Refused, with zero writes, when its calls are not what the playbook plans from
    the plan's own observation and parameters (an edited file), or when the VM changed since (PlanDrifted)."""
    if vm is not None and vm.vm_id(az.conn.subscription_id).lower() != plan.vm_id.lower():
        raise UsageError(f"the plan is for {plan.ref}, not {vm}")
    if plan.observation.subscription.lower() != az.conn.subscription_id.lower():
        raise UsageError(f"the plan is for subscription {plan.observation.subscription}, not "
                         f"{az.conn.subscription_id}")
    if not plan.verify_timeout_s > 0:
        raise UsageError(f"the plan's verify timeout must be greater than 0 seconds (got {plan.verify_timeout_s:g})")
    pool = _pool(playbooks)
    if plan.playbook not in pool:
        raise JournalError(f"the plan names playbook {plan.playbook}, which this installation does not have")
    expected = replan(plan, pool[plan.playbook])
    if (why := _difference(expected, plan)) is not None:
        raise PlanDrifted(f"the plan file does not match what playbook {plan.playbook} plans from the file's own "
                          f"observation ({why}): it was edited, or made by another version; make a new plan. "
                          "Nothing was changed")
    runs = open_store(az, store)
    pending = runs.active_run(plan.vm_id)
    if pending is not None and pending.run_id == plan.run_id:
        return _run(az, pending.plan(), hooks, yes=yes, store=runs)
    if pending is not None:
        raise JournalError(f"run {pending.run_id} for {plan.ref} is unfinished: resume it first "
                           f"(invoke resume --vm {plan.ref})")
    now = observe(az, plan.observation.ref, plan.observation.gathered)
    if now.fingerprint() != plan.observation.fingerprint():
        raise PlanDrifted(f"{plan.ref} changed since the plan was made (fingerprint {plan.observation.fingerprint()} "
                          f"→ {now.fingerprint()}); make a new plan")
    check_secrets(az, _calls_of(plan))
    return _run(az, plan, hooks, yes=yes, store=runs)


def _difference(expected: Plan, saved: Plan) -> str | None:
    """The first way ``saved`` differs from ``expected`` (None: they are the same plan)."""
    want, have = expected.to_dict(), saved.to_dict()
    for i, (a, b) in enumerate(zip(want["steps"], have["steps"], strict=False)):
        if a != b:
            return f"step {i + 1} ({b.get('name')}) differs"
    for key in sorted(set(want) | set(have)):
        if key != "digest" and want.get(key) != have.get(key):
            return f"{key} differs"
    return None


def resume(az: Azure, ref: VmRef, hooks: Hooks, *, yes: bool = False, store: Store | str | None = None) -> Outcome:
    runs = open_store(az, store)
    pending = runs.active_run(ref.vm_id(az.conn.subscription_id))
    if pending is None:
        raise NotApplicable(f"no unfinished remediation for {ref}")
    plan = pending.plan()
    check_secrets(az, _calls_of(plan))
    return _run(az, plan, hooks, yes=yes, store=runs)


def rollback_run(az: Azure, run_id: str, hooks: Hooks, *, yes: bool = False, dry_run: bool = False,
                 store: Store | str | None = None, show_plan: Callable[[Plan], None] | None = None,
                 ) -> tuple[RollbackPlan, Outcome | None]:
    """Undo run ``run_id`` as far as Azure allows (``runbooks.rollback``): show the plan and what cannot be
    undone, then apply it as a run of its own. An unfinished original run is closed (abandoned) under the VM's
    lock first, so the rollback is not refused as a competing run."""
    from runbooks.rollback import plan_rollback

    runs = open_store(az, store)
    rollback = plan_rollback(az, runs.open(run_id))
    if rollback.plan is not None and show_plan is not None:
        show_plan(rollback.plan)
    for line in rollback.cannot:
        hooks.progress(f"  ! {line}")
    if rollback.plan is None:
        hooks.progress(f"Nothing of run {run_id} can be undone by a call: see the lines above.")
        return rollback, None
    if dry_run:
        return rollback, None
    return rollback, _run(az, rollback.plan, hooks, yes=yes, store=runs, supersedes=run_id,
                          reason=f"rolled back by run {rollback.plan.run_id}")


def _approve(plan: Plan, hooks: Hooks) -> None:
    """Confirm mode: the whole plan is approved once, before its first write (destructive steps ask again)."""
    calls = _calls_of(plan)
    if not calls:
        return
    kinds = {effect: sum(1 for c in calls if c.effect == effect) for effect in ("create", "update", "delete")}
    what = ", ".join(f"{n} {effect}{'s' if n > 1 else ''}" for effect, n in kinds.items() if n)
    if not hooks.confirm(f"Apply this plan to {plan.ref} ({len(calls)} call(s): {what})? Destructive steps ask "
                         "again"):
        raise Aborted(f"the plan for {plan.ref} was not approved: nothing was changed and no run was recorded")


def _other_vms(plan: Plan) -> list[str]:
    """The VMs other than the run's own that its calls write (the members of its availability set)."""
    out = {c.resource_id.lower(): c.resource_id for c in _calls_of(plan) if "/resourcegroups/" in c.resource_id.lower()
           and resource_parts(c.resource_id).type == "virtualmachines" and resource_parts(c.resource_id).child is None
           and c.resource_id.lower() != plan.vm_id.lower()}
    return [out[k] for k in sorted(out)]


def _run(az: Azure, plan: Plan, hooks: Hooks, *, yes: bool, store: Store, supersedes: str | None = None,
         reason: str = "") -> Outcome:
    with store.lock(plan.vm_id, plan.run_id) as lock, contextlib.ExitStack() as others:
        # Every other VM the run writes is locked too (a set's members): no run on a member meanwhile, and none
        # unfinished on one, which this run would act over.
        for vm_id in _other_vms(plan):
            others.enter_context(store.lock(vm_id, plan.run_id))
            unfinished = store.active_run(vm_id)
            if unfinished is not None and unfinished.run_id != plan.run_id:
                raise JournalError(f"run {unfinished.run_id} for {resource_parts(vm_id).name}, which this run would "
                                   f"also change, is unfinished: resume or abandon it first")
        # Under the lock: a run that started since this one was planned must be resumed, not run over.
        pending = store.active_run(plan.vm_id)
        superseded = pending if pending is not None and pending.run_id == supersedes else None
        if pending is not None and superseded is None and pending.run_id != plan.run_id:
            raise JournalError(f"run {pending.run_id} for {plan.ref} is unfinished: resume it first "
                               f"(invoke resume --vm {plan.ref})")
        # Before the first write (on a resume: for what is left), can the caller make every call?
        resuming = pending is not None and pending.run_id == plan.run_id
        preflight(az, _remaining(plan, pending) if resuming and pending else _calls_of(plan), hooks.progress)
        if not resuming and not yes:
            _approve(plan, hooks)
        if superseded is not None:  # a rollback or a fallback closes the run it replaces
            superseded.lock = lock
            superseded.append({"event": "run-abandoned", "reason": reason})
            superseded.finish("abandoned")
        journal = store.create(plan, lock)
        return execute(az, plan, journal, hooks, yes=yes)
