"""Schedules as the deploy task takes them, and the ARM template export: the same resources as the SDK
deployment, content URIs from _artifactsLocation, the SAS token only as a securestring parameter."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from runbooks.automation.deploy import ScheduleSpec, Settings, package_name, resources
from runbooks.automation.package import RUNBOOKS, Script, Wheel, WheelSet, sha256
from runbooks.automation.template import arm_template
from runbooks.errors import UsageError


@pytest.mark.parametrize(("text", "expected"), [
    ("day@02:00", ("Day", 1, "02:00")), ("hour/6", ("Hour", 6, "02:00")), ("WEEK/2@3:05", ("Week", 2, "03:05")),
    ("month", ("Month", 1, "02:00")),
])
def test_schedule_spec(text: str, expected: tuple[str, int, str]) -> None:
    spec = ScheduleSpec.parse(text)
    assert (spec.frequency, spec.interval, spec.at) == expected


@pytest.mark.parametrize("text", ["minute/5", "day/0", "day@25:00", "day@2", "daily", "hour/x", ""])
def test_bad_schedules(text: str) -> None:
    with pytest.raises(UsageError, match="bad schedule"):
        ScheduleSpec.parse(text)


def test_first_run_is_in_the_future() -> None:
    now = datetime(2026, 11, 21, 1, 55, tzinfo=timezone.utc)
    assert ScheduleSpec.parse("day@02:00").first_run(now) == datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
    assert ScheduleSpec.parse("day@03:00").first_run(now) == datetime(2026, 11, 21, 3, 0, tzinfo=timezone.utc)


@pytest.fixture
def small_set(tmp_path: Path) -> WheelSet:
    wheels = []
    for name, file in (("azure-core", "azure_core-1.41.0-py3-none-any.whl"),
                       ("azure.mgmt.thing", "azure.mgmt.thing-1.0-py3-none-any.whl")):
        (tmp_path / file).write_bytes(name.encode())
        wheels.append(Wheel(name, "1.0", file, sha256(tmp_path / file), len(name)))
    (tmp_path / "runbooks").mkdir()
    scripts = []
    for runbook, (file, _) in RUNBOOKS.items():
        (tmp_path / "runbooks" / file).write_text(f"# {runbook}\n")
        scripts.append(Script(runbook, f"runbooks/{file}", sha256(tmp_path / "runbooks" / file)))
    return WheelSet(tmp_path, "3.10", wheels, scripts)


def test_template_matches_the_sdk_deployment(small_set: WheelSet) -> None:
    settings = Settings(location="westeurope", wheels_url="https://st.blob.core.windows.net/wheels/",
                        schedule=ScheduleSpec.parse("day@02:00"), sweep_parameters={"max_vms": 5},
                        wheels_sas="sv=2024&sig=SECRETSIG")
    template = arm_template(small_set, settings, "aa-rca")
    text = json.dumps(template)
    assert "SECRETSIG" not in text
    assert template["parameters"]["_artifactsLocationSasToken"]["type"] == "securestring"
    by_type: dict[str, list[dict[str, object]]] = {}
    for res in template["resources"]:
        by_type.setdefault(str(res["type"]), []).append(res)
    ns = "Microsoft.Automation/automationAccounts"
    assert len(by_type[ns]) == 1 and len(by_type[f"{ns}/runtimeEnvironments"]) == 1
    assert len(by_type[f"{ns}/runtimeEnvironments/packages"]) == len(small_set.wheels)
    assert len(by_type[f"{ns}/runbooks"]) == len(RUNBOOKS)
    assert len(by_type[f"{ns}/schedules"]) == 1 and len(by_type[f"{ns}/jobSchedules"]) == 1
    for w in small_set.wheels:
        assert w.sha256.upper() in text and package_name(w.name) in text
    assert "azure.mgmt.thing'" not in text  # package names carry no dots
    # Same bodies as the SDK deployment, apart from what a template parameterises.
    sdk = {(r["kind"], r["name"]): r["body"] for r in resources(small_set, settings)}
    runbook = next(r for r in by_type[f"{ns}/runbooks"] if "Sweep-VMs" in str(r["name"]))
    props = dict(runbook["properties"])  # type: ignore[arg-type]
    script = next(s for s in small_set.scripts if s.runbook == "Sweep-VMs")
    link = props.pop("publishContentLink")
    assert link["contentHash"]["value"] == script.sha256.upper()
    assert link["uri"] == (f"[concat(parameters('_artifactsLocation'), '/{script.file}', "
                           "parameters('_artifactsLocationSasToken'))]")
    assert props == sdk[("runbook", "Sweep-VMs")]["properties"]
    job_schedule = by_type[f"{ns}/jobSchedules"][0]["properties"]
    assert job_schedule == sdk[("jobSchedule", "")]["properties"]
    assert json.loads(job_schedule["parameters"]["parameter"]) == {"max_vms": 5}  # type: ignore[index]


def test_sdk_uris_carry_the_sas_and_template_uris_do_not(small_set: WheelSet) -> None:
    settings = Settings(location="eastus", wheels_url="https://host/w", wheels_sas="?sig=S")
    uris = [r["body"]["properties"]["contentLink"]["uri"] for r in resources(small_set, settings)
            if r["kind"] == "package"]
    assert uris == [f"https://host/w/{w.file}?sig=S" for w in small_set.wheels]


@pytest.mark.parametrize(("args", "message"), [
    (["--wheels-url", "https://h/w"], "--location is required"),
    (["--location", "eastus", "--wheels-url", "ftp://h/w"], "--wheels-url must be the http(s) URL"),
    (["--location", "eastus", "--wheels-url", "https://h/w", "--schedule", "minute/5"], "bad schedule 'minute/5'"),
    (["--location", "eastus", "--wheels-url", "https://h/w", "--sweep-parameter", '{"max_vms": 0}'],
     "bad runbook parameter max_vms"),
    (["--location", "eastus", "--wheels-url", "https://h/w", "--wheels", "/nonexistent/dir"], "has no manifest.json"),
    (["--location", "eastus", "--wheels-url", "https://h/w", "--identity", "Bogus"], "identity must be SystemAssigned"),
])
def test_deploy_bad_inputs_are_one_line_errors(tmp_path: Path, small_set: WheelSet, args: list[str],
                                               message: str) -> None:
    import os
    import subprocess

    from remediation_helpers import INVOKE, REPO

    small_set.save()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOKS_", "AZURE_", "IDENTITY_"))}
    env["AZURE_SUBSCRIPTION_ID"] = "00000000-0000-0000-0000-000000000001"
    env["RUNBOOKS_ARM_ENDPOINT"] = "https://127.0.0.1:9"  # never reached: every case fails before any request
    wheels = [] if "--wheels" in args else ["--wheels", str(small_set.directory)]
    cmd = [INVOKE, "automation.deploy", "--resource-group", "rg", "--account", "aa", *wheels, *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
