"""Step cases as data (pyinfra's habit): ``cases/<step>/<case>.yaml`` holds an observation, the steps planned
before it (``before``: folded over the predicted state, as the planner does) and the step's parameters;
``expected`` is ``refused: <message>``, ``noop: <reason>``, or the summary, notes and every call (operation,
resource, REST body, and the goal apply checks before and after it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbooks.changes import StepContext
from runbooks.errors import StepRefused
from runbooks.observe import Observation
from runbooks.plan import NOOP, plan_step
from runbooks.steps.registry import catalog

CASES = Path(__file__).parent / "cases"
FILES = sorted(p for p in CASES.glob("*/*.yaml") if p.parent.is_dir() and p.parent.name in catalog())
RUN_ID = "0badc0de-0000-4000-8000-000000000001"


def outcome_as_data(step: str, case: dict[str, Any]) -> dict[str, Any]:
    """Plan ``step`` against the case's observation, as plain data (a refusal is an outcome too)."""
    obs = Observation.from_dict(case["observation"])
    ctx = StepContext(RUN_ID, obs)
    state = obs
    try:
        for earlier in case.get("before", []):
            name, params = (earlier, {}) if isinstance(earlier, str) else (earlier["run"], earlier.get("with", {}))
            _, state = plan_step(state, name, catalog()[name].params.model_validate(params).model_dump(), ctx)
        params = catalog()[step].params.model_validate(case.get("params", {})).model_dump()
        planned, _ = plan_step(state, step, params, ctx)
    except StepRefused as e:
        return {"refused": str(e)}
    if planned.kind == NOOP:
        return {"noop": planned.summary, **({"notes": planned.notes} if planned.notes else {})}
    out: dict[str, Any] = {"summary": planned.summary,
                           "waves": [[{"op": a.call.op, "resource_id": a.call.resource_id, "effect": a.call.effect,
                                       "args": a.call.args,
                                       "goal": [[e.subject.rsplit("/", 1)[-1], e.path, e.value] for e in a.goal],
                                       **({"fallback": {"on": list(a.fallback_on), "summary": a.fallback.summary,
                                                        "args": a.fallback.args}} if a.fallback else {})}
                                      for a in wave] for wave in planned.waves]}
    if planned.notes:
        out["notes"] = planned.notes
    return out


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_step_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    assert outcome_as_data(path.parent.name, case) == case["expected"]


def test_every_case_folder_is_a_step_and_the_required_steps_have_cases() -> None:
    folders = {p.name for p in CASES.iterdir() if p.is_dir()}
    assert folders <= set(catalog()), folders - set(catalog())
    assert {"delete-vm", "rebuild-deleted-disks", "rebuild-deleted-nics", "create-vm-from-image",
            "create-vm-from-os-disk", "snapshot-disks", "start-vm", "deallocate-vm", "resize-vm", "redeploy-vm",
            "restart-vm", "update-vm"} <= folders


def test_no_create_body_holds_a_secret_value() -> None:
    """Across every case, an admin password appears only as {"$secret": reference}."""
    for path in FILES:
        expected = yaml.safe_load(path.read_text())["expected"]
        for wave in expected.get("waves", []):
            for call in wave:
                profile = call["args"].get("parameters", {}).get("properties", {}).get("osProfile", {})
                if "adminPassword" in profile:
                    assert profile["adminPassword"] == {"$secret": profile["adminPassword"]["$secret"]}
                    assert str(profile["adminPassword"]["$secret"]).startswith("env:")
    seen = [p for p in FILES if '"adminPassword"' in json.dumps(yaml.safe_load(p.read_text())["expected"])]
    assert seen, "some case must cover a create with an admin password"
