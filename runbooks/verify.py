"""Verification and fallout: what a scenario's ``verify:`` and ``fallout:`` say, evaluated after its steps.

The plan carries each condition with its signal's full definition (a saved plan verifies the same way
wherever it is applied). ``verify`` re-reads the VM (only the facts the conditions need) until every
condition holds, or a condition that need not wait fails once the VM has settled, or the scenario's
timeout passes; then ``VerifyFailed`` lists what is wrong and the ways back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from runbooks.azure import Azure, duration_memory, probe_lower
from runbooks.checks import CHECKS, FALLOUT, FalloutContext
from runbooks.errors import TargetNotFound, VerifyFailed
from runbooks.observe import Observation, gather, observe
from runbooks.progress import Operation, PlainTracker, Tracker, progress_every, scaled
from runbooks.signals import AnySignal, Signal

_SIGNAL = TypeAdapter(Signal)
_SETTLED = ("succeeded", "failed")


@dataclass(frozen=True)
class Condition:
    """One verification condition of a plan: a signal that must (not) hold, or a named check."""

    describe: str
    wait: bool
    needs: frozenset[str]
    signal: AnySignal | None = None
    holds: bool = True
    check: str | None = None

    def problems(self, before: Observation, now: Observation) -> list[str]:
        if self.signal is not None:
            result = self.signal.evaluate(now)
            if result.holds == self.holds:
                return []
            return [f"{self.describe}: {result.detail}"]
        return CHECKS[str(self.check)].fn(before, now)


def conditions(verify: list[dict[str, Any]]) -> list[Condition]:
    """A plan's ``verify`` entries as conditions (UsageError-free: a plan that loaded has valid entries)."""
    out = []
    for entry in verify:
        if entry.get("check"):
            name = str(entry["check"])
            out.append(Condition(name, bool(entry.get("wait", False)), CHECKS[name].needs, check=name))
        else:
            signal = _SIGNAL.validate_python(entry["definition"])
            holds = bool(entry.get("holds", True))
            out.append(Condition(signal.id if holds else f"not {signal.id}", bool(entry.get("wait", False)),
                                 signal.needs, signal=signal, holds=holds))
    return out


def verify(az: Azure, plan: Any, progress: Callable[[str], None], *, tracker: Tracker | None = None) -> Observation:
    """Poll the VM until the plan's conditions hold; return that observation. ``plan``: a ``runbooks.plan.Plan``.
    The wait is one operation of ``tracker`` (default: plain lines through ``progress``): its timeout is the
    plan's, at ``RUNBOOKS_TIMEOUT_SCALE``; its state, the conditions still unmet."""
    with (tracker or PlainTracker(progress)).operation("verify", scaled(float(plan.verify_timeout_s))) as op:
        after = _verify(az, plan, op)
        op.end(True, "every condition holds")
        return after


def _verify(az: Azure, plan: Any, op: Operation) -> Observation:
    conds = conditions(plan.verify)
    facts = set().union(*(c.needs for c in conds)) | {"vm"}
    # While it waits (an agent that boots), only what the waiting conditions read is polled; everything is read
    # on the first poll (a condition that need not wait fails early) and again once the waiting ones hold, but
    # for what that first read judged and the wait does not change (CARRIED).
    waiting = set().union(*(c.needs for c in conds if c.wait)) | {"vm"}
    timeout = float(op.timeout_s or plan.verify_timeout_s)
    start = time.monotonic()
    ref = plan.observation.ref
    full, unsettled_failure = True, False
    judged_ok: Observation | None = None  # the first full read, when only waiting conditions failed on it
    # Between polls: the connection's poll interval; no poll before the waiting conditions held the last time this
    # scenario was verified on this connection (a VM agent takes as long to boot each time), the first read aside.
    memory, kind = duration_memory(az.conn), f"verify {plan.playbook}/{plan.scenario}"
    expected, held_at, polls_waited = memory.expected(kind), 0.0, 0
    interval = az.conn.polling_interval or 5.0
    # A VM whose create was refused (it does not exist) is verified by conditions that read its evidence only.
    without_vm = bool(conds) and all(c.signal is not None and c.signal.without_vm for c in conds)
    while True:
        carried = _carried(judged_ok, waiting, facts) if full else set()
        now = observe(az, ref, (facts - carried) if full else waiting, missing_ok=True, user_data=False)
        _carry(judged_ok, now, carried)
        if now.vm is None and without_vm:
            with contextlib.suppress(TargetNotFound):
                now = observe(az, ref, facts, user_data=False)  # its refused create and what it names
        if now.vm is None and not (without_vm and now.failed_operations):
            wrong = [f"VM {ref} does not exist"]
            break
        full = full or waiting >= facts  # a poll of what the waiting conditions read reads everything
        judged = conds if full else [c for c in conds if c.needs <= waiting]
        failing = [(c, p) for c in judged for p in c.problems(plan.observation, now)]
        if not failing:
            if full:
                memory.learn(kind, probe_lower(expected, polls_waited, held_at or time.monotonic() - start))
                return now
            held_at = held_at or time.monotonic() - start
            full = True  # the waiting conditions hold: read everything once more and judge it all
            continue
        wrong = [p for _, p in failing]
        elapsed = time.monotonic() - start
        settled = now.vm is None or str(now.props.get("provisioningState", "")).lower() in _SETTLED
        if (settled and any(not c.wait for c, _ in failing)) or elapsed > timeout:
            break
        if full:
            unsettled_failure = any(not c.wait for c, _ in failing)
            judged_ok = None if unsettled_failure else now
        elif settled and unsettled_failure:
            full = True  # it has settled since a condition that need not wait failed: judge that one again
            continue
        full = False
        op.poll("; ".join(wrong))  # shown when it changes (and, plain, every RUNBOOKS_PROGRESS_EVERY_S)
        pause = max(interval, start + expected - time.monotonic()) if expected else interval
        _sleep_saying(op, "; ".join(wrong), min(pause, max(interval, start + timeout - time.monotonic())))
        polls_waited += 1
    ways_back = [f"the snapshots taken before any change are kept: {', '.join(_names(plan.snapshots))}"] \
        if plan.snapshots else []
    ways_back.append(f"close this run before planning again: invoke runs.abandon {plan.run_id}")
    if plan.fallback:
        ways_back.append(f"if scenario {plan.scenario} was the wrong choice, run the alternative in one command "
                         f"(it closes this run): invoke remediate --vm {plan.ref} --scenario {plan.fallback}")
    back = f" Ways back: {'; '.join(ways_back)}" if ways_back else ""
    raise VerifyFailed(f"{plan.ref} failed verification: {'; '.join(wrong)}.{back}", failures=wrong)


# What the last full read may carry from the first one instead of reading it again: resources the wait for the VM
# (its agent, its power state) does not change, once the conditions on them held. Fact → Observation fields.
CARRIED = {"nics": ("nics", "public_ips"), "disks": ("disks",), "extensions": ("extensions",), "locks": ("locks",)}


def _carried(judged_ok: Observation | None, waiting: set[str], facts: set[str]) -> set[str]:
    if judged_ok is None:
        return set()
    # requested-nics and subnets read the NICs while they are read: those need them read, not carried after
    keep = {"nics"} if facts & {"requested-nics", "subnets"} else set()
    return {f for f in CARRIED if f in judged_ok.gathered and f not in waiting and f not in keep}


def _carry(judged_ok: Observation | None, now: Observation, facts: set[str]) -> None:
    for fact in facts:
        assert judged_ok is not None
        for name in CARRIED[fact]:
            setattr(now, name, getattr(judged_ok, name))
        now.gathered.add(fact)


def _sleep_saying(op: Operation, state: str, seconds: float) -> None:
    """Sleep ``seconds`` in slices of at most ``RUNBOOKS_PROGRESS_EVERY_S``, telling ``op`` the state after each:
    a long expected wait is never a silent one."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, progress_every()))
        op.poll(state)


def _names(ids: list[str]) -> list[str]:
    return [i.rsplit("/", 1)[-1] for i in ids]


def report_fallout(az: Azure | None, plan: Any, after: Observation | None) -> list[str]:
    """The scenario's fallout reports, in order."""
    if az is not None and after is not None:
        gather(az, after, {f for name in plan.fallout for f in FALLOUT[name].needs})
    ctx = FalloutContext(az, plan.observation, after, _names(plan.snapshots))
    return [line for name in plan.fallout for line in FALLOUT[name].fn(ctx)]
