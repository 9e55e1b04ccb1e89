"""Detection: evaluate playbooks' signals on an Observation and recommend a scenario. Pure (no Azure calls).

Each signal holds, does not hold, or cannot be known, with a one-line detail the diagnosis shows as
evidence; how each type evaluates is declared with the type (``runbooks.signals``). ``detection_facts`` and
``playbook_facts`` say what to read first (enough to see which playbooks apply) and then (enough to choose
among one playbook's scenarios), so nothing else is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runbooks.checks import CHECKS
from runbooks.observe import Observation, dotted
from runbooks.playbook import Playbook, Scenario
from runbooks.signals import SignalResult
from runbooks.steps.registry import catalog


def detection_facts(playbooks: Iterable[Playbook]) -> set[str]:
    """The facts the ``detect`` signals of these playbooks read (those detected unasked: ``auto_detect``)."""
    return {f for pb in playbooks if pb.auto_detect for s in (*pb.detect, *pb.detect_unless)
            for f in pb.signal(s).needs}


def playbook_facts(pb: Playbook) -> set[str]:
    """The facts every signal of the playbook reads (its scenarios' conditions and evidence), and its advice's."""
    from runbooks.sizing import ADVICE_FACTS

    return {f for s in pb.signals for f in s.needs} | (set(ADVICE_FACTS) if pb.recommend else set())


def scenario_facts(sc: Scenario, pb: Playbook) -> set[str]:
    """What planning and verifying this scenario reads: its steps' facts, its signals' and checks' needs."""
    steps = catalog()
    out = {f for st in sc.run_steps for f in steps[st.run].reads}
    for ck in sc.verify:
        out |= pb.signal(ck.signal).needs if ck.signal else CHECKS[str(ck.check)].needs
    return out | {"vm"}


def matching(obs: Observation, playbooks: Mapping[str, Playbook]) -> list[Playbook]:
    """The playbooks detected unasked (``auto_detect``) one of whose ``detect`` signals holds: those that fix
    first, then those that only explain (a VM with a failure to fix and an old reboot is about the failure), each
    in the pool's order."""
    found = [pb for pb in playbooks.values() if pb.auto_detect and detected(obs, pb)]
    return sorted(found, key=lambda pb: pb.explains)


def detected(obs: Observation, pb: Playbook) -> bool:
    """Does one of the playbook's ``detect`` signals hold, and none of its ``detect_unless``?"""
    return any(pb.signal(d).evaluate(obs).holds for d in pb.detect) and \
        not any(pb.signal(d).evaluate(obs).holds for d in pb.detect_unless)


@dataclass
class ScenarioFit:
    scenario: Scenario
    fits: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class Diagnosis:
    """Which playbook applies, what the evidence is, which scenario is recommended and why."""

    observation: Observation
    playbook: Playbook | None
    signals: dict[str, SignalResult]
    fits: list[ScenarioFit]
    matched: list[str] = field(default_factory=list)  # every playbook whose detection holds

    @property
    def recommended(self) -> Scenario | None:
        """The first scenario that fits and may be chosen for the operator (not ``explicit``)."""
        return next((f.scenario for f in self.fits if f.fits and not f.scenario.explicit), None)

    @property
    def advice(self) -> dict[str, Any] | None:
        """The playbook's recommendation for this VM (``recommend:``), or None."""
        from runbooks.sizing import ADVICE_WITHOUT_VM, advise

        if self.playbook is None or self.playbook.recommend is None or (
                self.observation.vm is None and self.playbook.recommend not in ADVICE_WITHOUT_VM):
            return None

        return advise(self.observation, self.playbook.recommend)

    @property
    def fitting(self) -> list[str]:
        """The scenarios that fit and may be chosen for the operator."""
        return [f.scenario.id for f in self.fits if f.fits and not f.scenario.explicit]

    def ambiguity(self) -> str | None:
        """Why a run must not pick for itself: several scenarios fit and the playbook says the choice matters."""
        if len(self.fitting) < 2 or self.playbook is None or not self.playbook.ambiguity:
            return None
        names = self.fitting
        which = f"{names[0]} and {names[1]} both fit" if len(names) == 2 else \
            f"{', '.join(names[:-1])} and {names[-1]} all fit"
        return f"{which} {self.observation.ref}: {self.playbook.ambiguity.strip()}"

    def post_checks(self) -> list[tuple[str, bool, str]]:
        """Each post-check of the playbook: (what it expects, whether that is so now, what was seen)."""
        out = []
        for ck in self.playbook.post_checks if self.playbook else ():
            result = self.signals.get(str(ck.signal))
            if result is not None:
                out.append((ck.describe(), result.holds == ck.holds, result.detail))
        return out

    def articles(self) -> list[str]:
        """The playbook's articles the evidence picks: those Resource Health names for the VM's events, then
        those whose ``article_signals`` signal holds; every article of the playbook when nothing picks one."""
        if self.playbook is None:
            return []
        claimed = {a.lower(): a for a in self.playbook.articles}
        named = [claimed[str(h.get("articleId")).lower()] for h in self.observation.health
                 if str(h.get("articleId") or "").lower() in claimed]
        named += [a for a, ref in self.playbook.article_signals.items()
                  if (r := self.signals.get(ref)) is not None and r.holds]
        return list(dict.fromkeys(named)) or list(self.playbook.articles)

    def fit(self, scenario_id: str) -> ScenarioFit:
        return next(f for f in self.fits if f.scenario.id == scenario_id)

    def evidence(self, scenario: Scenario) -> list[tuple[str, str]]:
        out = []
        for ev in scenario.evidence:
            if ev.signal:
                r = self.signals.get(ev.signal)
                out.append((ev.label, r.detail if r else "unknown"))
            elif ev.property:
                out.append((ev.label, str(dotted(self.observation.props, ev.property))))
        return out


def evaluate_playbook(obs: Observation, pb: Playbook, matched: list[str] | None = None) -> Diagnosis:
    """Every signal of ``pb`` on ``obs``, and which of its scenarios fit."""
    results = {s.id: s.evaluate(obs) for s in pb.signals}
    fits = []
    for sc in pb.scenarios:
        missing = [s for s in sc.when if not results[s].holds]
        blocking = [s for s in sc.unless if results[s].holds]
        reasons = [f"{s} holds: {results[s].detail}" for s in sc.when if results[s].holds]
        reasons += [f"{s} does not hold: {results[s].detail}" for s in missing]
        reasons += [f"{s} holds (rules it out): {results[s].detail}" for s in blocking]
        if obs.vm is None:  # a refused create: only steps that need no VM can run
            needy = [st.run for st in sc.run_steps if not catalog()[st.run].without_vm]
            blocking += needy
            reasons += [f"step {name} needs the VM, which does not exist (rules it out)" for name in needy]
        fits.append(ScenarioFit(sc, not missing and not blocking, reasons))
    return Diagnosis(obs, pb, results, fits, matched if matched is not None else [pb.id])


def diagnose(obs: Observation, playbooks: Mapping[str, Playbook]) -> Diagnosis:
    """The first playbook whose detection holds (the others are named in ``matched``), or none."""
    found = matching(obs, playbooks)
    if not found:
        return Diagnosis(obs, None, {}, [], [])
    return evaluate_playbook(obs, found[0], [pb.id for pb in found])


__all__ = ["Diagnosis", "ScenarioFit", "SignalResult", "detected", "detection_facts", "diagnose", "evaluate_playbook",
           "matching", "playbook_facts", "scenario_facts"]
