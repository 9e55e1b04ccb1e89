"""Detection: evaluate a playbook's signals against an Observation and recommend a scenario.

Pure functions over observed data (no Azure calls): each signal holds, does not hold, or cannot be
known, with a one-line detail that the diagnosis shows as evidence.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from runbooks.observe import Observation
from runbooks.playbook import (
    ActivityLogSignal,
    InstanceViewSignal,
    Playbook,
    ProvisioningStateSignal,
    RelatedResourceSignal,
    Scenario,
    VmPropertySignal,
    load_playbooks,
)

Signal = InstanceViewSignal | ProvisioningStateSignal | ActivityLogSignal | VmPropertySignal | RelatedResourceSignal


@dataclass(frozen=True)
class SignalResult:
    id: str
    holds: bool
    detail: str


def dotted(data: Any, path: str) -> Any:
    """``a.b.c`` lookup in nested dicts; None when any part is missing."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def evaluate(signal: Signal, obs: Observation) -> SignalResult:
    """Does this signal hold for the observed VM?"""
    if obs.vm is None:
        return SignalResult(signal.id, False, "the VM does not exist")
    if isinstance(signal, InstanceViewSignal):
        statuses = obs.instance_view.get("statuses", []) if signal.of == "vm" else \
            (obs.instance_view.get("vmAgent") or {}).get("statuses", [])
        hit = next((s for s in statuses if fnmatch.fnmatch(str(s.get("code", "")).lower(),
                                                           signal.status_code.lower())), None)
        where = "instance view" if signal.of == "vm" else "VM agent status"
        if hit:
            return SignalResult(signal.id, True, f"{where}: {hit.get('code')} ({hit.get('displayStatus', '')})")
        return SignalResult(signal.id, False, f"{where}: no {signal.status_code}")
    if isinstance(signal, ProvisioningStateSignal):
        state = str(obs.props.get("provisioningState", ""))
        return SignalResult(signal.id, state.lower() == signal.state.lower(), f"provisioningState: {state}")
    if isinstance(signal, ActivityLogSignal):
        for op in obs.failed_operations:
            if signal.operation and str(op.get("operation", "")).lower() != signal.operation.lower():
                continue
            if signal.error_code and str(op.get("error_code", "")).lower() != signal.error_code.lower():
                continue
            if signal.message and not re.search(signal.message, str(op.get("message") or ""), re.IGNORECASE):
                continue
            return SignalResult(signal.id, True, f"{op.get('operation_display') or op.get('operation')} at "
                                f"{op.get('time')} failed with {op.get('error_code')}: {op.get('message')}")
        return SignalResult(signal.id, False, "no matching failed operation in the activity log")
    if isinstance(signal, VmPropertySignal):
        value = dotted(obs.props, signal.property)
        if signal.exists is not None:
            return SignalResult(signal.id, (value is not None) == signal.exists, f"{signal.property}: {value}")
        return SignalResult(signal.id, str(value).lower() == str(signal.equals).lower(),
                            f"{signal.property}: {value}")
    if isinstance(signal, RelatedResourceSignal):
        if signal.type.lower() != "microsoft.compute/images":
            return SignalResult(signal.id, False, f"related {signal.type} are not observed")
        wanted = {k: v.replace("$vm.id", obs.vm_id) for k, v in signal.where.items()}
        for image in obs.images:
            if all(str(dotted(image, k) or "").lower() == v.lower() for k, v in wanted.items()):
                return SignalResult(signal.id, True, f"image {image.get('name')} ({image.get('location')})")
        return SignalResult(signal.id, False, "no image captured from this VM")
    raise TypeError(f"unknown signal type {type(signal).__name__}")


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

    @property
    def recommended(self) -> Scenario | None:
        return next((f.scenario for f in self.fits if f.fits), None)

    @property
    def fitting(self) -> list[str]:
        return [f.scenario.id for f in self.fits if f.fits]

    def ambiguity(self) -> str | None:
        """Why an unattended run must not pick for itself: several scenarios fit, and what tells them apart
        (was the guest sysprepped before the capture?) is inside the VM, where ARM cannot look."""
        if len(self.fitting) < 2:
            return None
        return (f"{' and '.join(self.fitting)} all fit {self.observation.ref}: ARM cannot tell whether the guest was "
                "prepared for imaging before the capture; choose the scenario (a wrong guess leaves a VM that does "
                "not boot)")

    def evidence(self, scenario: Scenario) -> list[tuple[str, str]]:
        out = []
        for ev in scenario.evidence:
            if ev.signal:
                r = self.signals.get(ev.signal)
                out.append((ev.label, r.detail if r else "unknown"))
            elif ev.property:
                out.append((ev.label, str(dotted(self.observation.props, ev.property))))
        return out


def diagnose(obs: Observation, playbooks: dict[str, Playbook] | None = None) -> Diagnosis:
    """Evaluate every playbook; the first whose detect signals hold is the one that applies."""
    pool = playbooks if playbooks is not None else load_playbooks()
    for pb in pool.values():
        results = {s.id: evaluate(s, obs) for s in pb.signals}
        if not any(results[d].holds for d in pb.detect):
            continue
        fits = []
        for sc in pb.scenarios:
            missing = [s for s in sc.when if not results[s].holds]
            blocking = [s for s in sc.unless if results[s].holds]
            reasons = [f"{s} holds: {results[s].detail}" for s in sc.when if results[s].holds]
            reasons += [f"{s} does not hold: {results[s].detail}" for s in missing]
            reasons += [f"{s} holds (rules it out): {results[s].detail}" for s in blocking]
            fits.append(ScenarioFit(sc, not missing and not blocking, reasons))
        return Diagnosis(obs, pb, results, fits)
    return Diagnosis(obs, None, {}, [])
