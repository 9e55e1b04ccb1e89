"""Hosts, faulty hosts and redeploy: what the redeploy-vm playbook sees and changes, through the real SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from armsim_env import Env
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.mgmt.compute import ComputeManagementClient

from armsim import ArmSim, StaticTokenCredential
from armsim.state import World

UNRESPONSIVE = "VM Agent is unresponsive."
TIMED_OUT = ("OS Provisioning for VM '{}' did not finish in the allotted time. The VM may still finish provisioning "
             "successfully. Please check provisioning state later.")


def _running(env: Env, rg: str = "rg", name: str = "vm1") -> str:
    """A running VM whose guest has booted (agent Ready); returns its id."""
    env.rg(rg)
    env.vm(rg, name)
    env.settle()
    assert env.agent_status(rg, name) == "Ready"
    return str(env.vm_id(rg, name))


def _agent(env: Env, rg: str, name: str) -> tuple[str | None, str | None]:
    agent = env.compute.virtual_machines.instance_view(rg, name).vm_agent
    if agent is None or not agent.statuses:
        return None, None
    return agent.statuses[0].display_status, agent.statuses[0].message


def _failed_events(arm: ArmSim, vm_id: str) -> list[Any]:
    since = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = arm.monitor_client().activity_logs.list(
        filter=f"eventTimestamp ge '{since}' and resourceUri eq '{vm_id}' and status eq 'Failed'")
    return list(events)


@pytest.fixture
def clock(arm: ArmSim) -> Iterator[list[float]]:
    """Shift armsim's clock: ``clock[0] += s`` moves the emulated time ``s`` seconds ahead."""
    real = arm.world.clock
    offset = [0.0]
    arm.world.clock = lambda: real() + offset[0]
    try:
        yield offset
    finally:
        arm.world.clock = real


# --- hosts and the temporary disk ---------------------------------------------------------------------------


def test_redeploy_moves_the_vm_to_a_new_host_and_wipes_the_temp_disk(arm: ArmSim, env: Env) -> None:
    vm_id = _running(env)
    arm.world.config.latencies["vm.boot"] = 3600.0  # only the guest's boot is slow: "Not Ready" is observable
    first = env.vm_facts(vm_id)
    assert first["host"] and first["temp_disk"] and first["host_fault"] is None
    env.compute.virtual_machines.begin_restart("rg", "vm1").result()
    after_restart = env.vm_facts(vm_id)
    assert (after_restart["host"], after_restart["temp_disk"]) == (first["host"], first["temp_disk"])
    env.compute.virtual_machines.begin_redeploy("rg", "vm1").result()
    moved = env.vm_facts(vm_id)
    assert moved["host"] != first["host"] and moved["temp_disk"] != first["temp_disk"]
    vm = env.compute.virtual_machines.get("rg", "vm1")
    assert vm.provisioning_state == "Succeeded"
    assert "PowerState/running" in env.statuses("rg", "vm1")
    assert _agent(env, "rg", "vm1")[0] == "Not Ready"  # the guest boots again on the new host
    env.settle()
    assert _agent(env, "rg", "vm1")[0] == "Ready"
    env.compute.virtual_machines.begin_redeploy("rg", "vm1").result()
    assert env.vm_facts(vm_id)["host"] not in (first["host"], moved["host"])  # always a host it was never on


def test_deallocate_releases_the_host_and_start_places_the_vm_on_a_new_one(env: Env) -> None:
    vm_id = _running(env)
    first = env.vm_facts(vm_id)
    env.compute.virtual_machines.begin_power_off("rg", "vm1").result()
    stopped = env.vm_facts(vm_id)
    assert (stopped["host"], stopped["temp_disk"]) == (first["host"], first["temp_disk"])  # still allocated
    env.compute.virtual_machines.begin_start("rg", "vm1").result()
    assert env.vm_facts(vm_id)["temp_disk"] == first["temp_disk"]
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    released = env.vm_facts(vm_id)
    assert released["host"] is None and released["temp_disk"] is None
    env.compute.virtual_machines.begin_start("rg", "vm1").result()
    placed = env.vm_facts(vm_id)
    assert placed["host"] not in (None, first["host"]) and placed["temp_disk"] not in (None, first["temp_disk"])
    env.settle()
    assert _agent(env, "rg", "vm1")[0] == "Ready"


def test_hosts_are_hidden_from_the_arm_model(env: Env) -> None:
    vm_id = _running(env)
    host = env.vm_facts(vm_id)["host"]
    body = env.raw("GET", vm_id + "?$expand=instanceView").text
    assert host not in body and "temp_disk" not in body and '"host"' not in body


def test_hosts_and_faults_survive_a_saved_state(arm: ArmSim, env: Env) -> None:
    vm_id = _running(env)
    env.host_fault(vm_id, "agent-unreachable")
    with arm.world.lock:
        state = json.loads(json.dumps(arm.world.to_state()))
    world = World()
    world.load_state(state)
    compute = world.sub(env.sub).compute
    vm = compute.vms[vm_id.lower()]
    assert vm.host == env.vm_facts(vm_id)["host"] and compute.host_fault(vm.host) == "agent-unreachable"


# --- redeploy: LRO shape, transitions, refusals -------------------------------------------------------------


def test_redeploy_is_202_with_both_headers_and_is_logged(arm: ArmSim, env: Env) -> None:
    vm_id = _running(env)
    resp = env.raw("POST", f"{vm_id}/redeploy")
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    aao, loc = resp.headers["Azure-AsyncOperation"], resp.headers["Location"]
    assert "/providers/Microsoft.Compute/locations/eastus/operations/" in aao
    assert "monitor=true" in loc and loc.split("?")[0] == aao.split("?")[0]
    assert "retry-after-ms" in resp.headers
    arm.settle()
    status = env.raw("GET", aao.replace(arm.endpoint, ""), api=None).json()
    assert status["status"] == "Succeeded" and "startTime" in status and "endTime" in status
    done = env.raw("GET", loc.replace(arm.endpoint, ""), api=None)
    assert done.status_code == 200 and done.content == b""
    since = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = arm.monitor_client().activity_logs.list(filter=f"eventTimestamp ge '{since}' and resourceUri eq '{vm_id}'")
    redeploys = [e for e in events if e.operation_name.value == "Microsoft.Compute/virtualMachines/redeploy/action"]
    assert {e.status.value for e in redeploys} == {"Started", "Accepted", "Succeeded"}
    assert redeploys[0].operation_name.localized_value == "Redeploy Virtual Machine"


def test_redeploy_goes_through_updating_then_starting(arm: ArmSim, env: Env, clock: list[float]) -> None:
    vm_id = _running(env)
    old_host = env.vm_facts(vm_id)["host"]
    arm.world.config.latencies["vm.redeploy"] = 10_000.0  # 10 s at this latency scale: only the clock moves it
    resp = env.raw("POST", f"{vm_id}/redeploy")
    assert resp.status_code == 202
    vm = env.compute.virtual_machines.get("rg", "vm1", expand="instanceView")
    assert vm.provisioning_state == "Updating"
    codes = [s.code for s in vm.instance_view.statuses]
    assert codes[:2] == ["ProvisioningState/updating", "PowerState/updating"]
    assert vm.instance_view.vm_agent is None  # not running
    with pytest.raises(ResourceExistsError) as e:  # one operation at a time
        env.compute.virtual_machines.begin_restart("rg", "vm1")
    assert e.value.error.message == "Operation 'restart' is not allowed on VM 'vm1' since another operation is in " \
                                    "progress."
    clock[0] += 6.0  # past half-way: on the new host, powering on
    assert env.statuses("rg", "vm1")[:2] == ["ProvisioningState/updating", "PowerState/starting"]
    clock[0] += 6.0
    assert env.statuses("rg", "vm1")[:2] == ["ProvisioningState/succeeded", "PowerState/running"]
    assert env.vm_facts(vm_id)["host"] != old_host


def test_redeploy_of_a_generalized_vm_is_refused_like_start(env: Env) -> None:
    vm_id = _running(env)
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    env.compute.virtual_machines.generalize("rg", "vm1")
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_redeploy("rg", "vm1")
    assert e.value.status_code == 409 and e.value.error.code == "OperationNotAllowed"
    assert e.value.error.message == "Operation 'redeploy' is not allowed on VM 'vm1' since the VM is generalized."
    assert env.vm_facts(vm_id)["host"] is None


def test_redeploy_of_a_deallocated_vm_is_refused_unless_configured(arm: ArmSim, env: Env) -> None:
    vm_id = _running(env)
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_redeploy("rg", "vm1")
    assert e.value.error.code == "OperationNotAllowed"
    assert e.value.error.message.startswith(
        "Operation 'redeploy' is not allowed on VM 'vm1' since the VM is either deallocated or marked to be "
        "deallocated.")
    bad = requests.patch(f"{arm.endpoint}/_armsim/config", json={"redeploy_deallocated": "sometimes"},
                         verify=arm.ca_bundle, timeout=10)
    assert bad.status_code == 400
    ok = requests.patch(f"{arm.endpoint}/_armsim/config", json={"redeploy_deallocated": "start"},
                        verify=arm.ca_bundle, timeout=10)
    assert ok.status_code == 200 and ok.json()["redeploy_deallocated"] == "start"
    env.compute.virtual_machines.begin_redeploy("rg", "vm1").result()
    assert "PowerState/running" in env.statuses("rg", "vm1")
    assert env.vm_facts(vm_id)["host"] is not None


def test_redeploy_of_a_stopped_vm_powers_it_on_on_a_new_host(env: Env) -> None:
    vm_id = _running(env)
    env.compute.virtual_machines.begin_power_off("rg", "vm1").result()
    host = env.vm_facts(vm_id)["host"]
    env.compute.virtual_machines.begin_redeploy("rg", "vm1").result()
    assert "PowerState/running" in env.statuses("rg", "vm1")
    assert env.vm_facts(vm_id)["host"] != host


# --- faulty hosts -------------------------------------------------------------------------------------------


def test_provisioning_timeout_host_restart_does_not_fix_redeploy_does(arm: ArmSim, env: Env) -> None:
    vm_id = _running(env)
    fault = env.host_fault(vm_id, "provisioning-timeout")
    assert fault["armed"] is False and fault["host"] == env.vm_facts(vm_id)["host"] and fault["operation"]
    vm = env.compute.virtual_machines.get("rg", "vm1", expand="instanceView")
    assert vm.provisioning_state == "Failed"
    first = vm.instance_view.statuses[0]
    assert first.code == "ProvisioningState/failed/OSProvisioningTimedOut" and first.level == "Error"
    assert first.display_status == "Provisioning failed" and first.message == TIMED_OUT.format("vm1")
    assert vm.instance_view.statuses[1].code == "PowerState/running"
    assert _agent(env, "rg", "vm1") == ("Not Ready", UNRESPONSIVE)
    failed = _failed_events(arm, vm_id)
    assert [e.operation_name.value for e in failed] == ["Microsoft.Compute/virtualMachines/write"]
    assert json.loads(failed[0].properties["statusMessage"])["error"]["code"] == "OSProvisioningTimedOut"
    # a restart stays on the same host: it fails the same way and the agent still cannot report
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_restart("rg", "vm1").result()
    assert e.value.error.code == "OSProvisioningTimedOut"
    env.settle()
    assert _agent(env, "rg", "vm1") == ("Not Ready", UNRESPONSIVE)
    assert "ProvisioningState/failed/OSProvisioningTimedOut" in env.statuses("rg", "vm1")
    # a redeploy moves it to a healthy host
    env.compute.virtual_machines.begin_redeploy("rg", "vm1").result()
    facts = env.vm_facts(vm_id)
    assert facts["host"] != fault["host"] and facts["host_fault"] is None
    env.settle()
    vm = env.compute.virtual_machines.get("rg", "vm1", expand="instanceView")
    assert vm.provisioning_state == "Succeeded"
    assert not any("OSProvisioningTimedOut" in s.code for s in vm.instance_view.statuses)
    assert _agent(env, "rg", "vm1")[0] == "Ready"


def test_agent_unreachable_host_restart_does_not_fix_deallocate_and_start_does(env: Env) -> None:
    vm_id = _running(env)
    fault = env.host_fault(vm_id, "agent-unreachable")
    assert fault["armed"] is False and "operation" not in fault
    assert _agent(env, "rg", "vm1") == ("Not Ready", UNRESPONSIVE)
    assert env.compute.virtual_machines.get("rg", "vm1").provisioning_state == "Succeeded"
    assert env.statuses("rg", "vm1")[:2] == ["ProvisioningState/succeeded", "PowerState/running"]
    env.compute.virtual_machines.begin_restart("rg", "vm1").result()
    env.settle()
    assert _agent(env, "rg", "vm1") == ("Not Ready", UNRESPONSIVE)
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    env.compute.virtual_machines.begin_start("rg", "vm1").result()
    env.settle()
    assert _agent(env, "rg", "vm1")[0] == "Ready"
    assert env.vm_facts(vm_id)["host"] != fault["host"]


def test_an_armed_fault_fails_the_create_that_lands_on_the_host(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    vm_id = env.vm_id("rg", "vm1")
    fault = env.host_fault(vm_id, "provisioning-timeout")  # the VM does not exist yet
    assert fault["armed"] is True
    poller = env.compute.virtual_machines.begin_create_or_update("rg", "vm1", env.vm_body("rg", "vm1"))
    with pytest.raises(HttpResponseError) as e:
        poller.result()
    assert e.value.status_code == 200 and e.value.error.code == "OSProvisioningTimedOut"
    assert e.value.error.message == TIMED_OUT.format("vm1")
    env.settle()
    assert env.statuses("rg", "vm1")[:2] == ["ProvisioningState/failed/OSProvisioningTimedOut", "PowerState/running"]
    assert _agent(env, "rg", "vm1") == ("Not Ready", UNRESPONSIVE)
    assert env.vm_facts(vm_id)["host"] == fault["host"]
    assert [e.operation_name.value for e in _failed_events(arm, vm_id)] == ["Microsoft.Compute/virtualMachines/write"]


def test_an_armed_fault_on_a_deallocated_vm_fails_its_next_start(env: Env) -> None:
    vm_id = _running(env)
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    fault = env.host_fault(vm_id, "provisioning-timeout")
    assert fault["armed"] is True and env.vm_facts(vm_id)["armed_fault"] == "provisioning-timeout"
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_start("rg", "vm1").result()
    assert e.value.error.code == "OSProvisioningTimedOut"
    facts = env.vm_facts(vm_id)
    assert facts["host"] == fault["host"] and facts["host_fault"] == "provisioning-timeout"
    assert facts["armed_fault"] is None
    assert "PowerState/running" in env.statuses("rg", "vm1")  # placed: the guest runs, the host never hears of it
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    env.compute.virtual_machines.begin_start("rg", "vm1").result()  # the next placement is a healthy host
    assert env.compute.virtual_machines.get("rg", "vm1").provisioning_state == "Succeeded"


def test_host_fault_requests_are_validated(arm: ArmSim, env: Env) -> None:
    vm_id = _running(env)
    url = f"{arm.endpoint}/_armsim/vms/host-fault"

    def post(body: Any) -> requests.Response:
        return requests.post(url, json=body, verify=arm.ca_bundle, timeout=10)

    assert post({"vm": vm_id, "kind": "flaky"}).status_code == 400
    assert post({"vm": vm_id}).status_code == 400
    assert post({"vm": env.vm_id("rg-missing", "vm1"), "kind": "agent-unreachable"}).status_code == 404
    assert post({"vm": env.disk_id("rg", "d1"), "kind": "agent-unreachable"}).status_code == 404
    facts = requests.get(f"{arm.endpoint}/_armsim/vms/facts", params={"id": env.vm_id("rg", "nope")},
                         verify=arm.ca_bundle, timeout=10)
    assert facts.status_code == 404
    # the in-process helpers do the same as the control API
    assert arm.host_fault(vm_id, "agent-unreachable")["host"] == arm.vm_facts(vm_id)["host"]
    assert arm.vm_facts(vm_id)["host_fault"] == "agent-unreachable"


# --- resize of a deallocated VM -----------------------------------------------------------------------------


def test_resize_of_a_deallocated_vm_persists_and_it_starts(env: Env) -> None:
    _running(env)
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    patched = env.compute.virtual_machines.begin_update(
        "rg", "vm1", {"properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}}}).result()
    assert patched.hardware_profile.vm_size == "Standard_D4s_v5" and patched.provisioning_state == "Succeeded"
    assert env.compute.virtual_machines.get("rg", "vm1").hardware_profile.vm_size == "Standard_D4s_v5"
    assert "PowerState/deallocated" in env.statuses("rg", "vm1")
    vm = env.compute.virtual_machines.get("rg", "vm1")
    vm.hardware_profile.vm_size = "Standard_E2s_v5"
    put = env.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm).result()
    assert put.hardware_profile.vm_size == "Standard_E2s_v5" and put.provisioning_state == "Succeeded"
    env.compute.virtual_machines.begin_start("rg", "vm1").result()
    vm = env.compute.virtual_machines.get("rg", "vm1")
    assert vm.hardware_profile.vm_size == "Standard_E2s_v5" and vm.provisioning_state == "Succeeded"
    assert "PowerState/running" in env.statuses("rg", "vm1")


# --- scenarios ----------------------------------------------------------------------------------------------


def test_seeded_redeploy_vm(arm: ArmSim, env: Env) -> None:
    seeded = arm.seed("redeploy-vm")
    ids = {v.rsplit("/", 1)[1]: v for v in seeded["vms"]}
    assert sorted(ids) == ["web-01", "web-02", "web-03", "web-04"]
    assert seeded["targets"] == [ids["web-01"], ids["web-02"]]
    assert seeded["distractors"] == [ids["web-03"], ids["web-04"]]
    rg = "rg-redeploy"
    # web-01: the deployment timed out on a faulty host
    assert env.statuses(rg, "web-01")[:2] == ["ProvisioningState/failed/OSProvisioningTimedOut", "PowerState/running"]
    assert _agent(env, rg, "web-01") == ("Not Ready", UNRESPONSIVE)
    failed = _failed_events(arm, ids["web-01"])
    assert [e.operation_name.value for e in failed] == ["Microsoft.Compute/virtualMachines/write"]
    error = json.loads(failed[0].properties["statusMessage"])["error"]
    assert error == {"code": "OSProvisioningTimedOut", "message": TIMED_OUT.format("web-01")}
    # web-02: the agent cannot reach its host, provisioning fine
    assert env.statuses(rg, "web-02")[:2] == ["ProvisioningState/succeeded", "PowerState/running"]
    assert _agent(env, rg, "web-02") == ("Not Ready", UNRESPONSIVE)
    assert _failed_events(arm, ids["web-02"]) == []
    assert env.vm_facts(ids["web-02"])["host_fault"] == "agent-unreachable"
    # distractors
    assert env.statuses(rg, "web-03")[:2] == ["ProvisioningState/succeeded", "PowerState/running"]
    assert _agent(env, rg, "web-03")[0] == "Ready" and env.vm_facts(ids["web-03"])["host_fault"] is None
    assert env.statuses(rg, "web-04")[:2] == ["ProvisioningState/failed/AllocationFailed", "PowerState/deallocated"]
    assert [e.operation_name.value for e in _failed_events(arm, ids["web-04"])] == [
        "Microsoft.Compute/virtualMachines/start/action"]
    assert env.vm_facts(ids["web-04"])["host"] is None
    assert requests.get(f"{arm.endpoint}/_armsim/faults", verify=arm.ca_bundle, timeout=10).json()["faults"] == []
    # the fix works on both targets
    for name in ("web-01", "web-02"):
        env.compute.virtual_machines.begin_redeploy(rg, name).result()
    env.settle()
    for name in ("web-01", "web-02"):
        assert env.statuses(rg, name)[:2] == ["ProvisioningState/succeeded", "PowerState/running"]
        assert _agent(env, rg, name)[0] == "Ready"


def test_seeded_generalized_vm(arm: ArmSim, env: Env) -> None:
    seeded = arm.seed("generalized-vm")
    ids = {v.rsplit("/", 1)[1]: v for v in seeded["vms"]}
    assert seeded["targets"] == [ids["app-01"], ids["api-01"]] and seeded["distractors"] == [ids["app-02"]]
    for name in ("app-01", "api-01"):
        codes = env.statuses("rg-demo", name)
        assert "OSState/generalized" in codes and "PowerState/deallocated" in codes
        assert env.compute.images.get("rg-demo", f"{name}-image").id in seeded["images"]
        failed = _failed_events(arm, ids[name])
        assert [e.operation_name.value for e in failed] == ["Microsoft.Compute/virtualMachines/start/action"]
    app01_os = env.compute.virtual_machines.get("rg-demo", "app-01").storage_profile.os_disk.managed_disk.id
    api01_os = env.compute.virtual_machines.get("rg-demo", "api-01").storage_profile.os_disk.managed_disk.id
    assert env.disk_facts(app01_os)["guest"] == "generalized" and env.disk_facts(api01_os)["guest"] == "specialized"
    codes = env.statuses("rg-demo", "app-02")
    assert "OSState/generalized" not in codes and "PowerState/running" in codes
    assert _agent(env, "rg-demo", "app-02")[0] == "Ready"
    names = sorted(v.name for v in env.compute.virtual_machines.list("rg-demo"))
    assert names == ["api-01", "app-01", "app-02"]
    # the scenarios it unites keep working on their own
    arm.reset()
    assert arm.seed("generalized-without-sysprep")["vms"] == [ids["api-01"]]


def test_serve_seeds_the_redeploy_vm_scenario() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "armsim", "serve", "--port", "0", "--latency-scale", "0.001",
                             "--scenario", "redeploy-vm"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "no output"
        info = json.loads(line)
        compute = ComputeManagementClient(StaticTokenCredential(), info["subscription_id"], base_url=info["endpoint"],
                                          connection_verify=info["ca_bundle"], polling_interval=0, retry_total=0,
                                          credential_scopes=["https://management.azure.com/.default"])
        vm = compute.virtual_machines.get("rg-redeploy", "web-01", expand="instanceView")
        assert vm.provisioning_state == "Failed"
        assert vm.instance_view.statuses[0].code == "ProvisioningState/failed/OSProvisioningTimedOut"
        assert sorted(v.name for v in compute.virtual_machines.list("rg-redeploy")) == [
            "web-01", "web-02", "web-03", "web-04"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
