"""Throttling, injected faults and paging, each observed through the real SDK."""

from __future__ import annotations

import time

import pytest
import requests
from armsim_env import Env, error_body
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError

from armsim import ArmSim


def _vm(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")


# --- throttling ---------------------------------------------------------------------------------------


def test_throttling_answers_429_with_a_retry_hint(arm: ArmSim, env: Env) -> None:
    _vm(env)
    arm.world.config.latency_scale = 1.0
    arm.world.config.throttling = True
    arm.world.config.buckets = {"read": [3, 20], "write": [2, 10], "delete": [2, 10]}
    statuses = [env.raw("GET", env.vm_id("rg", "vm1")) for _ in range(6)]
    codes = [r.status_code for r in statuses]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
    throttled = next(r for r in statuses if r.status_code == 429)
    assert error_body(throttled)["code"] == "TooManyRequests"
    assert 1 <= int(throttled.headers["retry-after-ms"]) <= 50
    assert "x-ms-ratelimit-remaining-subscription-reads" in statuses[0].headers


def test_sdk_default_retry_recovers_from_throttling(arm: ArmSim, env: Env) -> None:
    _vm(env)
    arm.world.config.latency_scale = 1.0
    arm.world.config.throttling = True
    arm.world.config.buckets = {"read": [2, 50], "write": [200, 10], "delete": [200, 10]}
    compute = arm.compute_client()  # azure-core's default retry policy
    since = arm.last_request
    for _ in range(8):
        assert compute.virtual_machines.get("rg", "vm1").name == "vm1"
    log = arm.requests(since)
    assert any(r["status"] == 429 for r in log)
    assert sum(1 for r in log if r["status"] == 200) == 8


def test_throttling_off_by_config(arm: ArmSim, env: Env) -> None:
    _vm(env)
    arm.world.config.buckets = {"read": [1, 0.001], "write": [1, 0.001], "delete": [1, 0.001]}
    arm.world.config.throttling = False
    assert all(env.raw("GET", env.vm_id("rg", "vm1")).status_code == 200 for _ in range(5))


# --- faults ----------------------------------------------------------------------------------------------


def test_fault_error_500_then_recovery(arm: ArmSim, env: Env) -> None:
    _vm(env)
    arm.add_fault(method="GET", path="/virtualMachines/vm1$", action="error", status=500)
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.get("rg", "vm1")
    assert e.value.status_code == 500 and e.value.error.code == "InternalServerError"
    assert env.compute.virtual_machines.get("rg", "vm1").name == "vm1"  # times=1: fired once


def test_fault_429_with_retry_after_is_honoured_by_the_sdk(arm: ArmSim, env: Env) -> None:
    _vm(env)
    arm.add_fault(method="GET", path="/virtualMachines/vm1$", action="error", status=429,
                  headers={"Retry-After": "1"}, error={"code": "TooManyRequests", "message": "slow down"})
    compute = arm.compute_client()
    t0 = time.monotonic()
    assert compute.virtual_machines.get("rg", "vm1").name == "vm1"
    assert time.monotonic() - t0 >= 0.9
    assert [r["status"] for r in arm.requests() if r["path"].endswith("/vm1") and r["method"] == "GET"][-2:] == [
        429, 200]


def test_fault_nth_occurrence(arm: ArmSim, env: Env) -> None:
    _vm(env)
    arm.add_fault(method="GET", path="/virtualMachines/vm1$", nth=3, action="error", status=503)
    env.compute.virtual_machines.get("rg", "vm1")
    env.compute.virtual_machines.get("rg", "vm1")
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.get("rg", "vm1")
    assert e.value.status_code == 503
    env.compute.virtual_machines.get("rg", "vm1")


def test_fault_async_failed(arm: ArmSim, env: Env) -> None:
    _vm(env)
    arm.add_fault(method="POST", path="/vm1/powerOff$", action="async-failed",
                  error={"code": "OperationPreempted", "message": "Operation execution has been preempted by a more "
                                                                  "recent operation."})
    poller = env.compute.virtual_machines.begin_power_off("rg", "vm1")
    with pytest.raises(HttpResponseError) as e:
        poller.result()
    assert e.value.status_code == 200 and e.value.error.code == "OperationPreempted"
    assert "PowerState/running" in env.statuses("rg", "vm1")  # nothing happened


def test_fault_delay(arm: ArmSim, env: Env) -> None:
    _vm(env)
    arm.add_fault(method="GET", path="/virtualMachines/vm1$", action="delay", seconds=0.3)
    t0 = time.monotonic()
    env.compute.virtual_machines.get("rg", "vm1")
    assert time.monotonic() - t0 >= 0.3
    t1 = time.monotonic()
    env.compute.virtual_machines.get("rg", "vm1")
    assert time.monotonic() - t1 < 0.3


@pytest.mark.parametrize("when,took_effect", [("before", False), ("after", True)])
def test_fault_drop(arm: ArmSim, env: Env, when: str, took_effect: bool) -> None:
    _vm(env)
    arm.add_fault(method="POST", path="/vm1/powerOff$", action="drop", when=when)
    with pytest.raises(AzureError) as e:
        env.compute.virtual_machines.begin_power_off("rg", "vm1")
    assert not isinstance(e.value, HttpResponseError)  # no response at all
    arm.settle()
    assert ("PowerState/stopped" in env.statuses("rg", "vm1")) is took_effect
    assert arm.requests()[-2]["dropped"] is True or any(r["dropped"] for r in arm.requests())


def test_fault_rules_are_validated(arm: ArmSim) -> None:
    url = f"{arm.endpoint}/_armsim/faults"
    for rule in ({"action": "explode"}, {"action": "error"}, {"action": "drop", "path": "("},
                 {"action": "drop", "nth": 0}):
        resp = requests.post(url, json=rule, verify=arm.ca_bundle, timeout=10)
        assert resp.status_code == 400, rule
    ok = requests.post(url, json={"action": "delay", "seconds": 0}, verify=arm.ca_bundle, timeout=10)
    assert ok.status_code == 201 and ok.json()["nth"] == 1


# --- paging ------------------------------------------------------------------------------------------------


def test_fleet_of_10000_lists_in_ten_pages_with_statuses(arm: ArmSim, env: Env) -> None:
    seeded = arm.seed("fleet", vms=10_000, resource_groups=10, generalized_fraction=0.1)
    since = arm.last_request
    items = list(env.compute.virtual_machines.list_all(status_only="true"))
    assert len(items) == 10_000
    pages = [r for r in arm.requests(since) if r["path"].endswith("/providers/Microsoft.Compute/virtualMachines")]
    assert len(pages) == 10 and all(r["status"] == 200 for r in pages)
    assert len({i.id for i in items}) == 10_000
    assert all(any(s.code.startswith("PowerState/") for s in i.instance_view.statuses) for i in items)
    generalized = [i for i in items if any(s.code == "OSState/generalized" for s in i.instance_view.statuses)]
    assert len(generalized) == seeded["generalized"] > 0


def test_list_without_status_only_has_no_instance_view(arm: ArmSim, env: Env) -> None:
    arm.seed("fleet", vms=25, resource_groups=2)
    arm.world.config.page_size = 10
    since = arm.last_request
    items = list(env.compute.virtual_machines.list_all())
    assert len(items) == 25 and all(i.instance_view is None for i in items)
    assert len(arm.requests(since)) == 3
    assert len(list(env.compute.virtual_machines.list("rg-fleet-001"))) == 12


def test_list_all_expand_requires_filter(env: Env) -> None:
    with pytest.raises(HttpResponseError) as e:
        list(env.compute.virtual_machines.list_all(expand="instanceView"))
    assert e.value.status_code == 400


def test_bad_skiptoken_is_400(env: Env) -> None:
    resp = env.raw("GET", f"/subscriptions/{env.sub}/providers/Microsoft.Compute/virtualMachines?$skiptoken=abc")
    assert resp.status_code == 400 and error_body(resp)["code"] == "InvalidParameter"


def test_conflicting_operations_are_refused(arm: ArmSim, env: Env) -> None:
    _vm(env)
    arm.world.config.latency_scale = 1.0
    env.compute.virtual_machines.begin_power_off("rg", "vm1", polling=False)
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_deallocate("rg", "vm1")
    assert e.value.error.message == "Operation 'deallocate' is not allowed on VM 'vm1' since another operation is " \
                                    "in progress."
