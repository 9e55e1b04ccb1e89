"""LRO wire shapes (azure-compute-api.md §6) and provisioningState transitions, over HTTPS."""

from __future__ import annotations

import time

import pytest
from armsim_env import Env

from armsim import ArmSim


def _poll(env: Env, url: str, *, until: float = 10.0) -> list[dict[str, object]]:
    """Poll an Azure-AsyncOperation URL until terminal; return every body seen."""
    seen = []
    deadline = time.time() + until
    while time.time() < deadline:
        resp = env.raw("GET", url.replace(env.arm.endpoint, ""), api=None)
        assert resp.status_code == 200, resp.text
        seen.append(resp.json())
        if seen[-1]["status"] in ("Succeeded", "Failed", "Canceled"):
            return seen
        time.sleep(0.005)
    raise AssertionError(f"operation never finished: {seen[-1:]}")


def test_vm_put_is_201_with_async_operation_and_no_location(env: Env) -> None:
    env.rg("rg")
    body = env.vm_body("rg", "vm1")
    resp = env.raw("PUT", env.vm_id("rg", "vm1"), json=body)
    assert resp.status_code == 201, resp.text
    assert "Location" not in resp.headers
    aao = resp.headers["Azure-AsyncOperation"]
    assert aao.startswith(f"{env.arm.endpoint}/subscriptions/{env.sub}/providers/Microsoft.Compute/locations/eastus/"
                          "operations/")
    assert "api-version=2026-04-01" in aao
    assert int(resp.headers["retry-after-ms"]) >= 1
    assert resp.json()["properties"]["provisioningState"] == "Creating"
    final = _poll(env, aao)[-1]
    assert final["status"] == "Succeeded" and "endTime" in final and "startTime" in final
    # the same PUT again is an update: 200, not 201
    again = env.raw("PUT", env.vm_id("rg", "vm1"), json={**body, "tags": {"a": "b"}})
    assert again.status_code == 200, again.text
    assert again.json()["properties"]["provisioningState"] == "Updating"


@pytest.mark.parametrize("action", ["start", "deallocate", "powerOff", "restart"])
def test_power_actions_are_202_with_both_headers(env: Env, action: str) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    if action == "start":
        env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    resp = env.raw("POST", f"{env.vm_id('rg', 'vm1')}/{action}")
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    aao, loc = resp.headers["Azure-AsyncOperation"], resp.headers["Location"]
    assert "monitor=true" in loc and "monitor=true" not in aao
    assert loc.split("?")[0] == aao.split("?")[0]
    assert "retry-after-ms" in resp.headers
    _poll(env, aao)
    done = env.raw("GET", loc.replace(env.arm.endpoint, ""), api=None)
    assert done.status_code == 200 and done.content == b""


def test_delete_is_202_with_both_headers(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    resp = env.raw("DELETE", env.vm_id("rg", "vm1") + "?forceDeletion=true")
    assert resp.status_code == 202, resp.text
    assert "monitor=true" in resp.headers["Location"]
    assert _poll(env, resp.headers["Azure-AsyncOperation"])[-1]["status"] == "Succeeded"
    assert env.raw("GET", env.vm_id("rg", "vm1")).status_code == 404
    assert env.raw("DELETE", env.vm_id("rg", "vm1")).status_code == 204


def test_location_url_answers_202_while_running(env: Env, arm: ArmSim) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    arm.world.config.latency_scale = 1.0  # deallocate takes 60 s: observably in progress
    resp = env.raw("POST", f"{env.vm_id('rg', 'vm1')}/deallocate")
    loc = env.raw("GET", resp.headers["Location"].replace(arm.endpoint, ""), api=None)
    assert loc.status_code == 202 and "retry-after-ms" in loc.headers
    status = env.raw("GET", resp.headers["Azure-AsyncOperation"].replace(arm.endpoint, ""), api=None).json()
    assert status["status"] == "InProgress" and "endTime" not in status
    assert 50_000 <= int(resp.headers["retry-after-ms"]) <= 60_000
    assert "PowerState/deallocating" in env.statuses("rg", "vm1")
    arm.settle()
    assert "PowerState/deallocated" in env.statuses("rg", "vm1")


def test_patch_is_200_with_body_and_no_async_header(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    resp = env.raw("PATCH", env.vm_id("rg", "vm1"), json={"tags": {"team": "sre"}})
    assert resp.status_code == 200, resp.text
    assert "Azure-AsyncOperation" not in resp.headers and "Location" not in resp.headers
    assert resp.json()["properties"]["provisioningState"] == "Updating"
    assert resp.json()["tags"] == {"team": "sre"}
    env.settle()  # a second update while the first runs is refused (operation in progress)
    vm = env.compute.virtual_machines.begin_update("rg", "vm1", {"tags": {"team": "ops"}}).result()
    assert vm.tags == {"team": "ops"} and vm.provisioning_state == "Succeeded"


def test_generalize_is_200_empty_without_lro_headers(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    resp = env.raw("POST", f"{env.vm_id('rg', 'vm1')}/generalize")
    assert resp.status_code == 200 and resp.content == b""
    assert not {"Azure-AsyncOperation", "Location"} & set(resp.headers)


def test_disk_put_is_202_with_disk_operations_and_output(env: Env) -> None:
    env.rg("rg")
    resp = env.raw("PUT", env.disk_id("rg", "d1"), api="2026-03-02", json={
        "location": "eastus", "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 16}})
    assert resp.status_code == 202, resp.text
    aao = resp.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.Compute/locations/eastus/DiskOperations/" in aao
    assert "/DiskOperations/" in resp.headers["Location"]
    assert resp.json()["properties"]["provisioningState"] == "Updating"
    final = _poll(env, aao)[-1]
    assert final["status"] == "Succeeded"
    output = final["properties"]["output"]  # type: ignore[index]
    assert output["id"].lower() == env.disk_id("rg", "d1").lower()
    assert output["properties"]["provisioningState"] == "Succeeded"
    disk = env.compute.disks.begin_create_or_update("rg", "d2", {
        "location": "eastus", "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 8}}).result()
    assert disk.disk_size_gb == 8 and disk.provisioning_state == "Succeeded"


def test_provisioning_state_transitions_are_observable(env: Env, arm: ArmSim) -> None:
    env.rg("rg")
    body = env.vm_body("rg", "vm1")
    arm.world.config.latency_scale = 0.005  # create 450 ms, power off 150 ms: long enough to look inside
    poller = env.compute.virtual_machines.begin_create_or_update("rg", "vm1", body)
    during = env.compute.virtual_machines.get("rg", "vm1", expand="instanceView")
    assert during.provisioning_state == "Creating"
    assert "ProvisioningState/creating" in [s.code for s in during.instance_view.statuses]
    vm = poller.result()
    assert vm.provisioning_state == "Succeeded"
    assert "PowerState/running" in env.statuses("rg", "vm1")
    poller2 = env.compute.virtual_machines.begin_power_off("rg", "vm1")
    assert "PowerState/stopping" in env.statuses("rg", "vm1")
    poller2.result()
    assert "PowerState/stopped" in env.statuses("rg", "vm1")


def test_retry_hint_styles(env: Env, arm: ArmSim) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    arm.world.config.retry_after = "seconds"
    resp = env.raw("POST", f"{env.vm_id('rg', 'vm1')}/powerOff")
    assert resp.headers["Retry-After"] == "1" and "retry-after-ms" not in resp.headers
    arm.settle()
    arm.world.config.retry_after = "none"
    resp = env.raw("POST", f"{env.vm_id('rg', 'vm1')}/start")
    assert "Retry-After" not in resp.headers and "retry-after-ms" not in resp.headers


def test_azure_like_poll_hints_are_the_providers_fixed_ones_not_the_time_left(env: Env) -> None:
    """config.retry_after = "azure": every poll of a VM operation hints Compute's 10 s, a disk's 2 s (scaled by the
    latency scale), whatever the time left, as ARM does; "ms" hints the exact time left (an oracle)."""
    env.rg("rg")
    env.vm("rg", "vm1")
    env.arm.world.config.latency_scale = 0.01
    env.arm.world.config.latencies = {**env.arm.world.config.latencies, "vm.deallocate": 60.0}
    env.arm.world.config.retry_after = "azure"
    resp = env.raw("POST", f"{env.vm_id('rg', 'vm1')}/deallocate")
    assert resp.headers.get("retry-after-ms") == "100", dict(resp.headers)  # 10 s x 0.01, not the 600 ms left
    poll = env.raw("GET", resp.headers["Azure-AsyncOperation"].replace(env.arm.endpoint, ""), api=None)
    assert poll.headers.get("retry-after-ms") == "100"
    _poll(env, resp.headers["Azure-AsyncOperation"])
    env.arm.world.config.retry_after = "ms"
    again = env.raw("POST", f"{env.vm_id('rg', 'vm1')}/start")
    assert again.status_code == 202 and int(again.headers["retry-after-ms"]) in (400, 401)  # vm.start: 40 s x 0.01
