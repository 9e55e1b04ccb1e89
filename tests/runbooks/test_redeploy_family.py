"""The redeploy-vm family end to end, real SDK over real HTTPS against armsim's ``redeploy-vm`` world: web-01 (host
with a provisioning-timeout fault) is the one target the playbook detects; web-02 (agent-unreachable host, no
failed operation in ARM), web-03 (healthy) and web-04 (deallocated after an AllocationFailed start) must never
be touched. Hidden facts (host node, temporary disk) come from ``arm.vm_facts``; the request log proves what was
written. Faces covered: the library (run_diagnosis, remediate_vm, sweep), the CLI (invoke) and an Automation job."""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from automation_helpers import AA_RG, ACCOUNT
from remediation_helpers import Rig

from runbooks.apply import Hooks
from runbooks.automation.jobs import follow_job
from runbooks.errors import Aborted
from runbooks.observe import VmRef
from runbooks.playbook import load_playbooks
from runbooks.remediate import pending_run, remediate_vm, run_diagnosis
from runbooks.sweep import REMEDIATED, sweep

RG = "rg-redeploy"
TARGET = f"{RG}/web-01"
OTHERS = ("web-02", "web-03", "web-04")
CAPACITY_DISTRACTOR = "web-04"  # deallocated after an AllocationFailed start: the allocation-failure playbook's
REDEPLOY = re.compile(r"/resourceGroups/rg-redeploy/providers/Microsoft\.Compute/virtualMachines/web-01/redeploy$",
                      re.IGNORECASE)


# --- the world ------------------------------------------------------------------------------------------------


def seed(rig: Rig) -> dict[str, str]:
    """Seed the redeploy-vm world; VM name → VM id."""
    seeded = rig.arm.seed("redeploy-vm")
    ids = {vm_id.rsplit("/", 1)[-1]: vm_id for vm_id in seeded["vms"]}
    assert set(ids) == {"web-01", *OTHERS}
    return ids


def facts(rig: Rig, vm_id: str) -> tuple[str | None, str | None, str | None]:
    """(host, temp_disk fingerprint, power state): what ARM never shows."""
    f = rig.arm.vm_facts(vm_id)
    return f["host"], f["temp_disk"], f["power_state"]


def agent_status(rig: Rig, name: str) -> str | None:
    view = rig.arm.compute_client().virtual_machines.instance_view(RG, name)
    statuses = (view.vm_agent.statuses if view.vm_agent else None) or []
    return statuses[0].display_status if statuses else None


def provisioning_state(rig: Rig, name: str) -> str | None:
    return rig.arm.compute_client().virtual_machines.get(RG, name).provisioning_state


def untouched_state(rig: Rig, ids: dict[str, str]) -> dict[str, Any]:
    """Everything about web-02/03/04 a remediation of web-01 must leave alone: hidden host and temporary disk,
    power state, the ARM model, the instance view's codes and the agent's status."""
    compute = rig.arm.compute_client()
    out: dict[str, Any] = {}
    for name in OTHERS:
        view = compute.virtual_machines.instance_view(RG, name)
        agent = [(s.code, s.display_status) for s in (view.vm_agent.statuses if view.vm_agent else None) or []]
        out[name] = {"facts": facts(rig, ids[name]), "model": compute.virtual_machines.get(RG, name).as_dict(),
                     "statuses": [s.code for s in view.statuses or []], "agent": agent}
    return out


def redeploys(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for w in log if w["method"] == "POST" and REDEPLOY.search(w["path"])]


def assert_only_the_redeploy(writes: list[dict[str, Any]], n: int = 1) -> None:
    """The run's writes are exactly ``n`` POSTs of web-01's redeploy, nothing else."""
    assert [(w["method"], bool(REDEPLOY.search(w["path"]))) for w in writes] == [("POST", True)] * n, \
        [(w["method"], w["path"], w["status"]) for w in writes]


def assert_healed(rig: Rig, vm_id: str, old_host: str | None, old_temp: str | None) -> None:
    """web-01 is on another host with a fresh temporary disk, provisioned, running and its agent Ready."""
    host, temp, power = facts(rig, vm_id)
    assert host is not None and host != old_host, (old_host, host)
    assert temp is not None and temp != old_temp, (old_temp, temp)
    assert power == "running"
    assert rig.arm.vm_facts(vm_id)["host_fault"] is None  # the new host is a healthy one
    assert provisioning_state(rig, "web-01") == "Succeeded"
    assert agent_status(rig, "web-01") == "Ready"


def invoke_all(rig: Rig, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Several read-only CLI runs at once (each pays the SDK's import time), results in order."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda args: rig.invoke(*args), commands))


def last_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines, "no error line on stderr"
    return lines[-1]


# --- 1. diagnosis -------------------------------------------------------------------------------------------------


def test_diagnose_names_the_redeploy_playbook_only_for_web01(rig: Rig) -> None:
    seed(rig)
    az = rig.az()
    mark = rig.arm.last_request

    diag = run_diagnosis(az, VmRef.parse(TARGET))
    assert diag.playbook is not None and diag.playbook.id == "redeploy-vm"
    assert diag.recommended is not None and diag.recommended.id == "redeploy"
    assert diag.matched == ["redeploy-vm"]
    assert diag.signals["provisioning-timed-out"].holds and diag.signals["failed-op-provisioning-timeout"].holds
    assert not diag.signals["image-not-prepared"].holds and not diag.signals["os-generalized"].holds
    for name in OTHERS:
        other = run_diagnosis(az, VmRef(RG, name))
        if name == CAPACITY_DISTRACTOR:  # a capacity problem: another family's, never a redeploy
            assert other.matched == ["allocation-failure"], name
            continue
        assert other.playbook is None and other.recommended is None and other.matched == [], name

    *runs, listed = invoke_all(rig, *(("diagnose", "--vm", f"{RG}/{name}", "--json") for name in ("web-01", *OTHERS)),
                               ("playbooks.list", "--json"))
    assert all(done.returncode == 0 for done in (*runs, listed)), [done.stderr for done in (*runs, listed)]
    report, *others = (json.loads(done.stdout) for done in runs)
    assert report["playbook"] == "redeploy-vm" and report["recommended"] == "redeploy"
    assert report["matched"] == ["redeploy-vm"]
    assert [s["id"] for s in report["scenarios"] if s["fits"]] == ["redeploy"]
    assert "ProvisioningState/failed/OSProvisioningTimedOut" in report["statuses"]
    assert [op["error_code"] for op in report["failed_operations"]] == ["OSProvisioningTimedOut"]
    for name, other in zip(OTHERS, others, strict=True):
        assert other["vm"].endswith(f"/{name}")
        if name == CAPACITY_DISTRACTOR:
            assert other["playbook"] == "allocation-failure" and other["recommended"] == "start-again", name
            continue
        assert other["playbook"] is None and other["recommended"] is None and other["matched"] == [], name
    # web-02's host fault is invisible to the playbook: ARM holds no failed operation for it
    assert others[0]["failed_operations"] == [] and "ProvisioningState/succeeded" in others[0]["statuses"]
    assert rig.arm.writes(mark) == []
    assert {p["id"]: p["scenarios"] for p in json.loads(listed.stdout)}["redeploy-vm"] == ["redeploy"]


# --- 2. dry run -------------------------------------------------------------------------------------------------


def test_dry_run_shows_the_destructive_redeploy_and_writes_nothing(rig: Rig) -> None:
    ids = seed(rig)
    host, temp, _ = facts(rig, ids["web-01"])
    mark = rig.arm.last_request

    done, as_json = invoke_all(rig, ("remediate", "--vm", TARGET, "--dry-run"),
                               ("remediate", "--vm", TARGET, "--dry-run", "--json"))

    assert done.returncode == 0, done.stdout + done.stderr
    assert rig.arm.writes(mark) == []
    out = done.stdout
    assert "playbook redeploy-vm, scenario redeploy" in out
    step_line = next(line for line in out.splitlines() if "redeploy-vm [" in line)
    assert "DESTRUCTIVE" in step_line and "redeploy VM web-01 to a new host" in step_line
    assert re.search(r"the temporary disk .* is wiped", out), out
    # the call by its short path (the full id is in --json and the plan file), within 100 columns
    assert "POST redeploy rg-redeploy/…/virtualMachines/web-01" in out and ids["web-01"] not in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "Azure writes: 1" in out and "Dry run: nothing was changed (0 writes)." in out
    assert facts(rig, ids["web-01"])[:2] == (host, temp)
    assert not (rig.home / "runs").exists() or not any((rig.home / "runs").rglob("journal.jsonl"))

    assert as_json.returncode == 0, as_json.stderr
    plan = json.loads(as_json.stdout)
    assert [(s["name"], s["destructive"]) for s in plan["steps"]] == [("export-vm-definition", False),
                                                                     ("redeploy-vm", True)]
    assert any("temporary disk" in n and "wiped" in n for n in plan["steps"][1]["notes"])
    assert [a["resource_id"].lower() for w in plan["steps"][1]["waves"] for a in w] == [ids["web-01"].lower()]
    assert rig.arm.writes(mark) == []


# --- 3. remediate --yes -----------------------------------------------------------------------------------------


def test_remediate_yes_moves_web01_to_a_new_host_with_one_write_and_leaves_the_others(rig: Rig) -> None:
    ids = seed(rig)
    host, temp, _ = facts(rig, ids["web-01"])
    assert host is not None and temp is not None
    assert provisioning_state(rig, "web-01") == "Failed" and agent_status(rig, "web-01") == "Not Ready"
    others = untouched_state(rig, ids)
    mark = rig.arm.last_request

    done = rig.invoke("remediate", "--vm", TARGET, "--yes")

    assert done.returncode == 0, done.stdout + done.stderr
    writes = rig.arm.writes(mark)
    assert_only_the_redeploy(writes)
    assert writes[0]["status"] == 202
    assert "Remediated rg-redeploy/web-01 (redeploy): 1 call(s) made" in done.stdout
    assert "temporary disk started empty" in done.stdout  # the fallout is reported
    assert_healed(rig, ids["web-01"], host, temp)
    assert untouched_state(rig, ids) == others
    assert pending_run(rig.az(), VmRef.parse(TARGET)) is None


# --- 4. confirm mode, declined ------------------------------------------------------------------------------------


def test_declining_the_destructive_step_aborts_before_any_write(rig: Rig) -> None:
    ids = seed(rig)
    host, temp, _ = facts(rig, ids["web-01"])
    others = untouched_state(rig, ids)
    asked: list[str] = []

    def decline(question: str) -> bool:
        asked.append(question)
        return question.startswith("Apply this plan")  # the plan is approved, its destructive step is not

    mark = rig.arm.last_request
    with pytest.raises(Aborted, match=r"stopped before step 2 \(redeploy-vm\): nothing was deleted or changed"):
        remediate_vm(rig.az(), VmRef.parse(TARGET), Hooks(confirm=decline, progress=rig.progress.append))

    assert len(asked) == 2 and "destructive" in asked[1] and "redeploy VM web-01" in asked[1], asked
    assert rig.arm.writes(mark) == []
    assert facts(rig, ids["web-01"])[:2] == (host, temp)
    assert provisioning_state(rig, "web-01") == "Failed"
    assert untouched_state(rig, ids) == others
    # the operator was warned about the temporary disk before being asked
    assert any("temporary disk" in line and "wiped" in line for line in rig.progress)


# --- 5. sweep -----------------------------------------------------------------------------------------------------


def test_sweep_remediates_exactly_web01(rig: Rig) -> None:
    ids = seed(rig)
    host, temp, _ = facts(rig, ids["web-01"])
    others = untouched_state(rig, ids)
    mark = rig.arm.last_request

    # web-04 (deallocated after an AllocationFailed start) is allocation-failure's, not this playbook's: the sweep
    # finds it from the activity log too, so this sweep is of the redeploy playbook alone
    only = {"redeploy-vm": load_playbooks()["redeploy-vm"]}
    assert {i.name: i.playbook for i in sweep(rig.az(), playbooks=None).items}["web-04"] == "allocation-failure"
    report = sweep(rig.az(), remediate=True, max_vms=1, playbooks=only)  # one candidate: max_vms 1 holds

    assert report.ok and report.stopped is None and report.failures() == []
    assert [(i.ref, i.playbook, i.scenario, i.result) for i in report.items] == \
        [(TARGET, "redeploy-vm", "redeploy", REMEDIATED)], [i.to_dict() for i in report.items]
    assert report.listed == 4
    assert_only_the_redeploy(rig.arm.writes(mark))
    assert_healed(rig, ids["web-01"], host, temp)
    assert untouched_state(rig, ids) == others
    mark = rig.arm.last_request
    assert sweep(rig.az(), playbooks=only).items == []  # nothing left to find
    assert rig.arm.writes(mark) == []


# --- 6. a second remediation ----------------------------------------------------------------------------------------


def test_remediating_again_after_success_is_refused_without_a_write(rig: Rig) -> None:
    ids = seed(rig)
    result = remediate_vm(rig.az(), VmRef.parse(TARGET), rig.hooks(), yes=True)
    assert result.outcome is not None and result.outcome.made_calls == 1 and not result.resumed
    healed = facts(rig, ids["web-01"])

    mark = rig.arm.last_request
    again = rig.invoke("remediate", "--vm", TARGET, "--yes")

    assert again.returncode == 2, again.stdout + again.stderr
    assert "Traceback" not in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1, again.stderr
    line = last_line(again.stderr)
    assert line.startswith("error: ") and re.search(
        r"shows nothing a playbook covers", line), line  # the redeploy resolved the failed create: healthy
    assert rig.arm.writes(mark) == []
    assert facts(rig, ids["web-01"]) == healed
    # the failed create is still in the activity log, but the redeploy that succeeded after it resolves it
    diag = run_diagnosis(rig.az(), VmRef.parse(TARGET))
    assert diag.playbook is None and diag.matched == []
    named = run_diagnosis(rig.az(), VmRef.parse(TARGET), playbook="redeploy-vm")
    detail = named.signals["failed-op-provisioning-timeout"]
    assert not detail.holds and "redeploy/action succeeded later" in detail.detail
    assert rig.arm.writes(mark) == []


# --- 7. a fault at the redeploy POST ----------------------------------------------------------------------------------

FAULTS: dict[str, dict[str, Any]] = {
    # accepted (202), then the operation ends Failed: the run fails at its step, the re-run resumes it
    "async-failed": {"action": "async-failed", "times": 1,
                     "error": {"code": "InternalExecutionError", "message": "Injected async failure."}},
    # a refusal the SDK does not retry
    "409-conflict": {"action": "error", "status": 409, "times": 1,
                     "error": {"code": "Conflict", "message": "Injected: another operation is in progress."}},
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failed_redeploy_fails_the_run_and_the_same_command_converges(rig: Rig, fault: str) -> None:
    ids = seed(rig)
    host, temp, _ = facts(rig, ids["web-01"])
    others = untouched_state(rig, ids)
    rule = rig.arm.add_fault(method="POST", path="/virtualMachines/web-01/redeploy$", **FAULTS[fault])
    mark = rig.arm.last_request

    first = rig.invoke("remediate", "--vm", TARGET, "--yes")

    assert rule["fired"] == 1, rule
    assert first.returncode == 1, first.stdout + first.stderr
    assert "Traceback" not in first.stderr and len(first.stderr.strip().splitlines()) == 1, first.stderr
    line = last_line(first.stderr)
    assert line.startswith("error: ") and "redeploy VM web-01 failed" in line, line
    assert FAULTS[fault]["error"]["code"] in line and FAULTS[fault]["error"]["message"] in line, line
    assert len(redeploys(rig.arm.writes(mark))) == 1
    assert pending_run(rig.az(), VmRef.parse(TARGET)) is not None  # the journal keeps the run open

    with rig.arm.world.lock:
        rig.arm.world.faults.clear()  # the outage is over
    mark = rig.arm.last_request
    again = rig.invoke("remediate", "--vm", TARGET, "--yes")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming it" in again.stdout
    writes = rig.arm.writes(mark)
    assert len(redeploys(writes)) <= 1 and len(writes) == len(redeploys(writes)), writes
    assert_healed(rig, ids["web-01"], host, temp)
    assert untouched_state(rig, ids) == others
    assert pending_run(rig.az(), VmRef.parse(TARGET)) is None


def test_a_500_at_the_redeploy_is_retried_by_the_sdk_within_the_run(rig: Rig) -> None:
    """A single 500 never reaches the runbook: azure-core retries the POST, so the first run itself succeeds,
    with the redeploy sent once more (the 500, then the 202)."""
    ids = seed(rig)
    host, temp, _ = facts(rig, ids["web-01"])
    rule = rig.arm.add_fault(method="POST", path="/virtualMachines/web-01/redeploy$", action="error", status=500,
                             times=1, error={"code": "InternalServerError", "message": "Injected 500."})
    mark = rig.arm.last_request

    done = rig.invoke("remediate", "--vm", TARGET, "--yes")

    assert rule["fired"] == 1
    assert done.returncode == 0, done.stdout + done.stderr
    assert [w["status"] for w in rig.arm.writes(mark)] == [500, 202]
    assert_only_the_redeploy(rig.arm.writes(mark), n=2)
    assert_healed(rig, ids["web-01"], host, temp)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_connection_dropped_at_the_redeploy_is_one_line_exit_1(rig: Rig, when: str) -> None:
    seed(rig)
    rig.arm.add_fault(method="POST", path="/virtualMachines/web-01/redeploy$", action="drop", when=when, times=1)
    first = rig.invoke("remediate", "--vm", TARGET, "--yes")
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr, first.stderr[-2000:]
    assert last_line(first.stderr).startswith("error: step redeploy-vm: ")


# --- 8. an Azure Automation job ----------------------------------------------------------------------------------





def test_an_automation_job_redeploys_web01_with_the_accounts_identity(rig: Rig, deployed: Any) -> None:
    client, _, report = deployed
    ids = seed(rig)
    host_before, temp, _ = facts(rig, ids["web-01"])
    others = untouched_state(rig, ids)
    since = rig.arm.last_request
    lines: list[str] = []

    result = follow_job(client, AA_RG, ACCOUNT, "Remediate-VM",
                        json.dumps({"vm": TARGET, "apply": True, "allow_local_store": True}),
                        timeout=120, progress=lines.append)

    assert result.status == "Completed", (lines, result.streams)
    assert any(s["text"].startswith("Remediated rg-redeploy/web-01") for s in result.streams if s["type"] == "Output")
    assert not [s for s in result.streams if s["type"] == "Error"]
    vm_writes = [w for w in rig.arm.writes(since) if "/Microsoft.Automation/" not in w["path"]]
    assert_only_the_redeploy(vm_writes)
    assert vm_writes[0]["principal"] == report.principal_id
    assert_healed(rig, ids["web-01"], host_before, temp)
    assert untouched_state(rig, ids) == others
