"""The Automation entry points: one JSON parameter (validated), stream prefixes, exit status, managed identity —
run in-process against armsim with the sandbox's environment (IDENTITY_ENDPOINT/IDENTITY_HEADER)."""

from __future__ import annotations

import io

import pytest
from remediation_helpers import Rig

from runbooks.automation.entry import (
    JobOutput,
    RemediateParameters,
    SweepParameters,
    parse_parameter,
    remediate_main,
)
from runbooks.errors import UsageError

# argv as a sandbox may deliver it → fields expected after validation
GOOD = [
    (['{"vm": "rg/x"}'], {"vm": "rg/x", "apply": False}),
    (['{"vm":', '"rg/x",', '"apply":', "true}"], {"vm": "rg/x", "apply": True}),  # split at spaces
    (["'{\"vm\": \"rg/x\"}'"], {"vm": "rg/x"}),  # surrounding quotes
    (["{'vm': 'rg/x', 'apply': True}"], {"vm": "rg/x", "apply": True}),  # the Linux worker's str(json.loads(v))
    (['{"vm": " rg/x ", "scenario": "from-os-disk", "verify_timeout": 30}'],
     {"vm": "rg/x", "scenario": "from-os-disk", "verify_timeout": 30.0}),
]
BAD = [
    ([], "vm: Field required"),
    (["not json"], "not a JSON object"),
    (['["rg/x"]'], "must be a JSON object, not list"),
    (['{"vm": "rg/x", "force": true}'], "force: Extra inputs are not permitted"),
    (['{"vm": "rg/x", "scenario": "from-backup"}'], "scenario"),
    (['{"vm": "rg/x", "subscription_id": "nope"}'], "subscription_id"),
    (['{"vm": "rg/x", "verify_timeout": 0}'], "verify_timeout"),
    (['{"vm": ""}'], "vm"),
]


@pytest.mark.parametrize(("argv", "expected"), GOOD)
def test_parameter_forms_the_sandboxes_deliver(argv: list[str], expected: dict[str, object]) -> None:
    params = parse_parameter(argv, RemediateParameters)
    assert {k: getattr(params, k) for k in expected} == expected


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_parameters_are_one_line_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_parameter(argv, RemediateParameters)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_sweep_parameter_bounds() -> None:
    assert parse_parameter([], SweepParameters).remediate is False  # report mode unless told
    for bad in ('{"max_concurrency": 0}', '{"max_vms": 0}', '{"max_errors": -1}', '{"remediate": "maybe"}'):
        with pytest.raises(UsageError):
            parse_parameter([bad], SweepParameters)


def test_stream_prefixes_one_record_per_line() -> None:
    buf = io.StringIO()
    out = JobOutput(buf)
    out.output("plain\nsecond")
    out.warning("careful")
    out.error("broken")
    out.verbose("detail")
    assert buf.getvalue().splitlines() == ["plain", "second", "WARNING: careful", "ERROR: broken",
                                           "VERBOSE: detail"]


@pytest.fixture
def sandbox_env(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> Rig:
    """What armsim's job runner gives a runbook: the identity endpoint and where ARM is."""
    for key, value in rig.arm.env().items():
        monkeypatch.setenv(key, value)
    return rig


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = remediate_main(argv)
    return code, capsys.readouterr().out.splitlines()


def test_plan_only_by_default_makes_no_write(sandbox_env: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    rig = sandbox_env
    rig.arm.seed("generalized-without-sysprep")
    since = rig.arm.last_request
    code, lines = _run(['{"vm": "rg-demo/api-01"}'], capsys)
    assert code == 0
    assert any(line.startswith("Plan ") for line in lines)
    assert lines[-1].startswith("Plan only (apply=false): nothing was changed (0 writes)")
    assert rig.arm.writes(since) == []
    principals = {r["principal"] for r in rig.arm.requests(since)}
    assert principals and "armsim-user" not in principals  # authenticated as the managed identity


def test_apply_remediates_and_verifies(sandbox_env: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    rig = sandbox_env
    rig.arm.seed("generalized-without-sysprep")
    code, lines = _run(['{"vm": "rg-demo/api-01", "scenario": "from-os-disk", "apply": true, '
                        '"allow_local_store": true}'], capsys)
    assert code == 0, lines
    assert any(line.startswith("Remediated rg-demo/api-01") for line in lines)
    assert not any(line.startswith("ERROR:") for line in lines)
    assert "osstate/generalized" not in [s.lower() for s in rig.observe("rg-demo/api-01").statuses()]


@pytest.mark.parametrize(("argv", "status", "message"), [
    (['{"vm": "rg-web/web-01", "apply": true, "allow_local_store": true}'], 2, "shows nothing a playbook covers"),
    (['{"vm": "rg-web/nope", "apply": true, "allow_local_store": true}'], 2, "nope"),
    (['{"vm": "a/b/c"}'], 2, "malformed VM reference"),
    (['{"vm": "rg/x", "apply": "yes please"}'], 2, "apply"),
    (['{"vm": "rg-demo/api-01", "scenario": "from-os-disk", "apply": true}'], 2, "needs 'store'"),
])
def test_failures_are_one_error_record_and_an_exit_status(sandbox_env: Rig, capsys: pytest.CaptureFixture[str],
                                                          argv: list[str], status: int, message: str) -> None:
    rig = sandbox_env
    rig.arm.seed("healthy")
    since = rig.arm.last_request
    code, lines = _run(argv, capsys)
    errors = [line for line in lines if line.startswith("ERROR: ")]
    assert code == status
    assert len(errors) == 1 and message in errors[0], lines
    assert rig.arm.writes(since) == []


def test_without_a_managed_identity_it_says_so(rig: Rig, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    code, lines = _run(['{"vm": "rg/x"}'], capsys)
    assert code == 2
    assert lines == ["ERROR: no managed identity: IDENTITY_ENDPOINT is not set (enable an identity on the "
                     "Automation account; Hybrid Workers use the account's system-assigned identity)"]


def test_an_unattended_job_does_not_guess_between_fitting_scenarios(sandbox_env: Rig,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rig = sandbox_env
    rig.arm.seed("generalized-without-sysprep")  # an image exists, yet the guest was never sysprepped
    since = rig.arm.last_request
    code, lines = _run(['{"vm": "rg-demo/api-01", "apply": true, "allow_local_store": true}'], capsys)
    errors = [line for line in lines if line.startswith("ERROR: ")]
    assert code == 2
    assert len(errors) == 1 and "from-image and from-os-disk both fit" in errors[0]
    assert "Pass --scenario from-image or from-os-disk; nothing was changed" in errors[0]
    assert rig.arm.writes(since) == []


def test_a_sizing_job_advises_on_the_output_stream_and_applies_only_the_named_fix(
        sandbox_env: Rig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Remediate-VM on size-not-in-cluster's api-01 (a set member): an unnamed job prints the advice and exits 0
    with zero writes, nothing on the Error stream; naming resize-in-place applies it."""
    monkeypatch.setenv("RUNBOOKS_POLL_INTERVAL_S", "0.1")
    rig = sandbox_env
    rig.arm.seed("size-not-in-cluster")
    since = rig.arm.last_request
    code, lines = _run(['{"vm": "rg-resize/api-01", "apply": true, "allow_local_store": true}'], capsys)
    assert code == 0, lines
    assert any("It advises; nothing was changed" in line for line in lines)
    assert any("--scenario resize-in-place" in line for line in lines)
    assert not any(line.startswith("ERROR:") for line in lines)
    assert rig.arm.writes(since) == []
    code, lines = _run(['{"vm": "rg-resize/api-01", "scenario": "resize-in-place", "apply": true, '
                        '"allow_local_store": true}'], capsys)
    assert code == 0, lines
    assert any(line.startswith("Remediated rg-resize/api-01") for line in lines)
    vm = rig.arm.compute_client(retry_total=0).virtual_machines.get("rg-resize", "api-01")
    assert vm.hardware_profile.vm_size == "Standard_D4s_v5"
