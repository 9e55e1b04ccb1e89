"""Planner cases as data (pyinfra's habit): ``cases/<step>/<case>.yaml`` holds an observation fragment, the
playbook scenario, the steps planned before it (``before``) and the step's parameters; ``expected`` is
either ``refused: <message>`` or the summary, notes and every call (operation, resource, REST body)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbooks.errors import StepRefused
from runbooks.observe import Observation
from runbooks.plan import PlanContext
from runbooks.playbook import load_playbooks
from runbooks.steps.catalog import CATALOG
from runbooks.steps.registry import planners

CASES = Path(__file__).parent / "cases"
FILES = sorted(p for p in CASES.glob("*/*.yaml") if p.parent.name in CATALOG)
RUN_ID = "0badc0de-0000-4000-8000-000000000001"


def outcome_as_data(step: str, case: dict[str, Any]) -> dict[str, Any]:
    """Plan ``step`` against the case's observation, as plain data (a refusal is an outcome too)."""
    playbook = load_playbooks()["generalized-vm"]
    ctx = PlanContext(Observation.from_dict(case["observation"]), RUN_ID, playbook.scenario(case["scenario"]))
    for earlier in case.get("before", []):
        planners()[earlier](ctx, CATALOG[earlier].params())
    try:
        planned = planners()[step](ctx, CATALOG[step].params(**case.get("params", {})))
    except StepRefused as e:
        return {"refused": str(e)}
    out: dict[str, Any] = {"summary": planned.summary,
                           "waves": [[{"op": c.op, "resource_id": c.resource_id, "effect": c.effect, "args": c.args}
                                      for c in wave] for wave in planned.waves]}
    if planned.notes:
        out["notes"] = planned.notes
    return out


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_planner_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    assert outcome_as_data(path.parent.name, case) == case["expected"]


def test_every_case_folder_is_a_step_and_the_required_steps_have_cases() -> None:
    folders = {p.name for p in CASES.iterdir() if p.is_dir()}
    assert folders <= set(CATALOG), folders - set(CATALOG)
    assert {"delete-vm", "rebuild-deleted-disks", "rebuild-deleted-nics", "create-vm-from-image",
            "create-vm-from-os-disk"} <= folders


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
