"""Bad input through the real CLI (``invoke`` in a subprocess, armsim in this process): the cases are data
in ``cases/cli-bad-inputs.yaml``; each must end with one line on stderr, a non-zero exit, no traceback, zero
writes in armsim's request log and nothing lost. Plus the torn-journal case, which must still resume."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from remediation_helpers import Rig, assert_converged, before, run_to_completion, seed

from runbooks.journal import Journal, VmLock, vm_key
from runbooks.observe import VmRef
from runbooks.plan import PLAN_FORMAT
from runbooks.remediate import plan_remediation

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "cli-bad-inputs.yaml").read_text())
OTHER_SUB = "11111111-2222-3333-4444-555555555555"

Setup = Callable[[Rig, Path, ExitStack], dict[str, str]]
SETUPS: dict[str, Setup] = {}


def setup(name: str) -> Callable[[Setup], Setup]:
    def register(fn: Setup) -> Setup:
        SETUPS[name] = fn
        return fn

    return register


def _vm_id(rig: Rig, vm: str) -> str:
    return VmRef.parse(vm).vm_id(rig.sub)


def _model(rig: Rig, vm: str) -> Any:
    """armsim's own model of a VM (test-side edits of the emulated world, for states ARM cannot be asked for)."""
    return rig.arm.world.sub(rig.sub).compute.vms[_vm_id(rig, vm).lower()]


def _save_plan(rig: Rig, vm: str, tmp: Path, scenario: str | None = None) -> Path:
    _, plan = plan_remediation(rig.az(), VmRef.parse(vm), scenario)
    path = tmp / "plan.json"
    path.write_text(plan.dumps())
    return path


def _pending_run(rig: Rig, vm: str) -> Path:
    """A run pointer for ``vm`` naming a run folder, as a crashed run leaves them."""
    run_id = str(uuid.uuid4())
    pointer = rig.home / "vms" / f"{vm_key(_vm_id(rig, vm))}.json"
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(json.dumps({"run_id": run_id, "vm_id": _vm_id(rig, vm), "status": "running"}))
    run_dir = rig.home / "runs" / run_id
    run_dir.mkdir(parents=True)
    return run_dir


@setup("remediated")
def _remediated(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    run_to_completion(rig, "rg-demo/app-01")
    return {}


@setup("delete-image")
def _delete_image(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    rig.arm.compute_client().images.begin_delete("rg-demo", "api-01-image").result()
    return {}


@setup("image-to-westus")
def _image_elsewhere(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    with rig.arm.world.lock:
        for image in rig.arm.world.sub(rig.sub).compute.images.values():
            image.location = "westus"
    return {}


@setup("trusted-launch")
def _trusted_launch(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    with rig.arm.world.lock:
        _model(rig, "rg-demo/app-01").properties["securityProfile"] = {
            "securityType": "TrustedLaunch", "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True}}
    return {}


@setup("lock-resource-group")
def _lock_rg(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    rig.arm.lock_client().management_locks.create_or_update_at_resource_group_level(
        "rg-demo", "no-delete", {"level": "CanNotDelete"})
    return {}


@setup("lock-vm-read-only")
def _lock_vm(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    rig.arm.lock_client().management_locks.create_or_update_by_scope(
        _vm_id(rig, "rg-demo/api-01"), "frozen", {"level": "ReadOnly"})
    return {}


@setup("corrupt-plan-json")
def _corrupt_plan(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    (_pending_run(rig, "rg-demo/app-01") / "plan.json").write_bytes(b"\x00{garbage")
    return {}


@setup("corrupt-journal-line")
def _corrupt_line(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    _, plan = plan_remediation(rig.az(), VmRef.parse("rg-demo/app-01"), "from-image")
    journal = Journal.create(plan)
    with open(journal.dir / "journal.jsonl", "a") as f:
        f.write("{not json\n")
    journal.append({"event": "step-start", "index": 0, "step": "export-vm-definition"})
    return {}


def _journal_with(rig: Rig, event: dict[str, Any]) -> None:
    _, plan = plan_remediation(rig.az(), VmRef.parse("rg-demo/app-01"), "from-image")
    Journal.create(plan).append(event)


@setup("journal-bad-index")
def _journal_bad_index(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    _journal_with(rig, {"event": "step-done", "index": "two", "step": "export-vm-definition"})
    return {}


@setup("journal-missing-index")
def _journal_missing_index(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    _journal_with(rig, {"event": "step-done", "step": "export-vm-definition"})
    return {}


@setup("pending-from-image")
def _pending_from_image(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    _journal_with(rig, {"event": "step-start", "index": 0, "step": "export-vm-definition"})
    return {}


@setup("plan-redigested")
def _plan_redigested(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    """As an attacker would: empty the snapshot step and recompute the plan's digest."""
    import hashlib

    path = _save_plan(rig, "rg-demo/api-01", tmp, "from-os-disk")
    data = json.loads(path.read_text())
    snap = next(s for s in data["steps"] if s["name"] == "snapshot-disks")
    snap["waves"], snap["backs_up"] = [], {}
    body = {k: v for k, v in data.items() if k != "digest"}
    data["digest"] = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    path.write_text(json.dumps(data))
    return {"plan": str(path)}


@setup("a-file")
def _a_file(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    (tmp / "a-file").write_text("not a folder")
    return {"file": str(tmp / "a-file")}


@setup("corrupt-pointer")
def _corrupt_pointer(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    pointer = rig.home / "vms" / f"{vm_key(_vm_id(rig, 'rg-demo/app-01'))}.json"
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text("[1, 2")
    return {}


@setup("hold-lock")
def _hold_lock(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    stack.enter_context(VmLock(_vm_id(rig, "rg-demo/app-01"), "held-by-test"))
    return {}


@setup("plan-file")
def _plan_file(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    return {"plan": str(_save_plan(rig, "rg-demo/api-01", tmp, "from-os-disk"))}


@setup("plan-then-drift")
def _plan_then_drift(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    path = _save_plan(rig, "rg-demo/api-01", tmp, "from-os-disk")
    with rig.arm.world.lock:  # someone retagged the VM since (an edit ARM refuses on a generalized VM)
        model = _model(rig, "rg-demo/api-01")
        model.tags["changed-by"] = "someone-else"
        model.etag += 1
    return {"plan": str(path)}


@setup("plan-retargeted")
def _plan_retargeted(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    path = _save_plan(rig, "rg-demo/app-01", tmp, "from-image")
    data = json.loads(path.read_text())
    data["vm_id"] = _vm_id(rig, "rg-demo/api-01")
    data["ref"] = data["observation"]["ref"] = "rg-demo/api-01"
    path.write_text(json.dumps(data))
    return {"plan": str(path)}


@setup("plan-not-json")
def _plan_not_json(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    (tmp / "plan.json").write_text("Plan for rg-demo/app-01:\n  1. snapshot\n")
    return {"plan": str(tmp / "plan.json")}


@setup("plan-wrong-format")
def _plan_wrong_format(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    (tmp / "plan.json").write_text(json.dumps({"format": "terraform-plan-v4", "resource_changes": []}))
    return {"plan": str(tmp / "plan.json")}


@setup("plan-damaged")
def _plan_damaged(rig: Rig, tmp: Path, stack: ExitStack) -> dict[str, str]:
    (tmp / "plan.json").write_text(json.dumps({"format": PLAN_FORMAT, "run_id": "x"}))
    return {"plan": str(tmp / "plan.json")}


def test_every_setup_is_used_and_there_are_enough_cases() -> None:
    assert len(CASES) >= 30
    assert {c["setup"] for c in CASES if "setup" in c} == set(SETUPS)
    assert len({c["id"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_is_one_line_nonzero_and_writes_nothing(rig: Rig, tmp_path: Path, case: dict[str, Any]) -> None:
    for scenario in case.get("seed", []):
        rig.arm.seed(scenario)
    with ExitStack() as stack:
        values = {"tmp": str(tmp_path), "sub": rig.sub, "other_sub": OTHER_SUB}
        if "setup" in case:
            values.update(SETUPS[case["setup"]](rig, tmp_path, stack))
        disks, nics = rig.disk_contents(), rig.nic_ids()
        env = rig.env()
        for key, value in (case.get("env") or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value.format(**values)
        mark = rig.arm.last_request
        done = rig.invoke(*[a.format(**values) for a in case["args"]], env=env, timeout=60)

    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert re.search(case["error"], lines[0]), lines[0]
    assert rig.arm.writes(mark) == [], "a refused command must not write"
    assert rig.disk_contents() == disks and rig.nic_ids() == nics
    if "--json" in case["args"]:  # stdout stays one valid JSON document: the plan if it was shown, else the refusal
        shown = json.loads(done.stdout)
        if "error" in shown:
            assert lines[0].endswith(shown["error"]["message"]) and shown["error"]["exit_code"] == done.returncode
        else:
            assert shown["run_id"] and shown["scenario"], done.stdout


def test_torn_last_journal_line_still_resumes(rig: Rig) -> None:
    """A crash while the journal's last line was being written leaves half a line: resume ignores it."""
    seed(rig, "rg-demo/app-01")
    b = before(rig, "rg-demo/app-01")
    _, plan = plan_remediation(rig.az(), VmRef.parse("rg-demo/app-01"), "from-image")
    journal = Journal.create(plan)
    journal.append({"event": "step-start", "index": 0, "step": "export-vm-definition"})
    with open(journal.dir / "journal.jsonl", "a") as f:
        f.write('{"t": "2026-01-01T00:00:00+00:00", "run": "x", "event": "step-do')
    done = rig.invoke("resume", "--vm", "rg-demo/app-01", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Remediated rg-demo/app-01" in done.stdout
    assert_converged(rig, b, "from-image")
