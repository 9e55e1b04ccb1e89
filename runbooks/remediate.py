"""The remediation use-cases the CLI and the Automation runbooks call: diagnose, plan, remediate, apply a
saved plan, resume. Each takes an ``Azure`` connection and returns data; rendering is elsewhere.

Those that read or write runs take ``store``: a ``runbooks.journal.Store``, a ``--store`` value, or None for
the one the environment names (the local directory unless ``RUNBOOKS_STORE_*`` say otherwise)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from runbooks.apply import Hooks, Outcome, execute
from runbooks.azure import Azure
from runbooks.detect import Diagnosis, diagnose
from runbooks.errors import JournalError, NotApplicable, PlanDrifted, UsageError
from runbooks.journal import RunJournal, Store, store_from_env
from runbooks.observe import VmRef, observe
from runbooks.plan import Plan, make_plan
from runbooks.playbook import Playbook, load_playbooks

SCENARIO_ALIASES = {"from-image": "from-image", "from-os-disk": "from-os-disk", "image": "from-image",
                    "os-disk": "from-os-disk"}


def run_diagnosis(az: Azure, ref: VmRef, playbooks: dict[str, Playbook] | None = None) -> Diagnosis:
    return diagnose(observe(az, ref), playbooks if playbooks is not None else load_playbooks())


def plan_remediation(az: Azure, ref: VmRef, scenario: str | None = None, *,
                     playbooks: dict[str, Playbook] | None = None, admin_secret: str | None = None,
                     verify_timeout: float | None = None) -> tuple[Diagnosis, Plan]:
    """Observe, diagnose and plan (read-only). The scenario is the recommended one unless given."""
    diag = run_diagnosis(az, ref, playbooks)
    if diag.playbook is None:
        state = ", ".join(diag.observation.statuses()) or "no status"
        raise NotApplicable(f"{ref} shows nothing a playbook covers ({state}); it is not generalized")
    if scenario:
        wanted = SCENARIO_ALIASES.get(scenario, scenario)
        try:
            chosen = diag.playbook.scenario(wanted)
        except KeyError:
            known = ", ".join(s.id for s in diag.playbook.scenarios)
            raise UsageError(f"unknown scenario '{scenario}' for playbook {diag.playbook.id}: use {known}") from None
        # An explicit choice picks among fitting scenarios; it must not override the conditions (a VM that is
        # no longer generalized still has the old refused start in its activity log).
        fit = next(f for f in diag.fits if f.scenario.id == chosen.id)
        if not fit.fits:
            raise NotApplicable(f"{ref}: scenario {chosen.id} does not fit: " + "; ".join(
                r for r in fit.reasons if "does not hold" in r or "rules it out" in r))
    else:
        recommended = diag.recommended
        if recommended is None:
            raise NotApplicable(f"{ref}: no scenario of {diag.playbook.id} fits: " + "; ".join(
                r for f in diag.fits for r in f.reasons if "does not hold" in r))
        chosen = recommended
    overrides: dict[str, dict[str, object]] = {}
    if admin_secret:
        overrides["create-vm-from-image"] = {"admin_secret": admin_secret}
    if verify_timeout is not None:
        if not verify_timeout > 0:  # the step's parameter model would reject it with a traceback, not one line
            raise UsageError(f"verify timeout must be greater than 0 seconds (got {verify_timeout:g})")
        overrides["verify-vm"] = {"agent_ready_timeout_s": verify_timeout}
    plan = make_plan(diag.observation, diag.playbook, chosen, run_id=str(uuid.uuid4()), overrides=overrides)
    return diag, plan


def open_store(az: Azure | None, store: Store | str | None = None) -> Store:
    """``store`` itself, or the store a ``--store`` value or the environment names (blob stores use ``az``'s
    credential, the one ARM is called with)."""
    if isinstance(store, Store):
        return store
    return store_from_env(store or "", az.credential if az is not None else None)


def pending_run(az: Azure, ref: VmRef, *, store: Store | str | None = None) -> RunJournal | None:
    """The VM's unfinished run, if any: re-running remediate resumes it instead of planning anew."""
    return open_store(az, store).active_run(ref.vm_id(az.conn.subscription_id))


def remediate(az: Azure, plan: Plan, hooks: Hooks, *, yes: bool = False, store: Store | str | None = None) -> Outcome:
    """Apply a plan just made from a fresh observation (``resume`` instead when ``pending_run`` finds one)."""
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
                store: Store | str | None = None) -> Outcome:
    """Apply a saved plan exactly, if the VM is still as it was observed (else PlanDrifted)."""
    if vm is not None and vm.vm_id(az.conn.subscription_id).lower() != plan.vm_id.lower():
        raise UsageError(f"the plan is for {plan.ref}, not {vm}")
    if plan.observation.subscription.lower() != az.conn.subscription_id.lower():
        raise UsageError(f"the plan is for subscription {plan.observation.subscription}, not "
                         f"{az.conn.subscription_id}")
    runs = open_store(az, store)
    pending = runs.active_run(plan.vm_id)
    if pending is not None and pending.run_id == plan.run_id:
        return _run(az, pending.plan(), hooks, yes=yes, store=runs)
    if pending is not None:
        raise JournalError(f"run {pending.run_id} for {plan.ref} is unfinished: resume it first "
                           f"(invoke resume --vm {plan.ref})")
    now = observe(az, plan.observation.ref)
    if now.fingerprint() != plan.fingerprint:
        raise PlanDrifted(f"{plan.ref} changed since the plan was made (fingerprint {plan.fingerprint} → "
                          f"{now.fingerprint()}); make a new plan")
    return _run(az, plan, hooks, yes=yes, store=runs)


def resume(az: Azure, ref: VmRef, hooks: Hooks, *, yes: bool = False, store: Store | str | None = None) -> Outcome:
    runs = open_store(az, store)
    pending = runs.active_run(ref.vm_id(az.conn.subscription_id))
    if pending is None:
        raise NotApplicable(f"no unfinished remediation for {ref}")
    return _run(az, pending.plan(), hooks, yes=yes, store=runs)


def _run(az: Azure, plan: Plan, hooks: Hooks, *, yes: bool, store: Store) -> Outcome:
    with store.lock(plan.vm_id, plan.run_id) as lock:
        # Under the lock: a run that started since this one was planned must be resumed, not run over.
        pending = store.active_run(plan.vm_id)
        if pending is not None and pending.run_id != plan.run_id:
            raise JournalError(f"run {pending.run_id} for {plan.ref} is unfinished: resume it first "
                               f"(invoke resume --vm {plan.ref})")
        journal = store.create(plan, lock)
        return execute(az, plan, journal, hooks, yes=yes)
