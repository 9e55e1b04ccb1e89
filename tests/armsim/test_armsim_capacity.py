"""Capacity, sizes and quota: the allocator's catalogue, placement, refusals and evidence, through the real SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from armsim_env import Env
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from armsim import ArmSim

SUB_ID = "00000000-0000-0000-0000-00000000a2a1"


def _vm(env: Env, rg: str, name: str, size: str = "Standard_D2s_v5", avset: str | None = None,
        zones: list[str] | None = None) -> Any:
    body = env.vm_body(rg, name)
    body["properties"]["hardwareProfile"]["vmSize"] = size
    if avset:
        body["properties"]["availabilitySet"] = {"id": avset}
    if zones:
        body["zones"] = zones
    return env.compute.virtual_machines.begin_create_or_update(rg, name, body)


def _avset(env: Env, rg: str, name: str) -> str:
    made = env.compute.availability_sets.create_or_update(rg, name, {
        "location": "eastus", "sku": {"name": "Aligned"},
        "properties": {"platformFaultDomainCount": 2, "platformUpdateDomainCount": 5}})
    return str(made.id)


def _resize(env: Env, rg: str, name: str, size: str) -> Any:
    return env.compute.virtual_machines.begin_update(rg, name, {"properties": {"hardwareProfile": {"vmSize": size}}})


def _failed(arm: ArmSim, name: str) -> list[dict[str, Any]]:
    return [json.loads(e["properties"]["statusMessage"]) for e in arm.world.default.activity
            if e["status"]["value"] == "Failed" and e["resourceId"].endswith("/" + name)]


# --- catalogue --------------------------------------------------------------------------------------------


def test_resource_skus_catalogue_and_location_filter(env: Env) -> None:
    skus = list(env.compute.resource_skus.list(filter="location eq 'westeurope'"))
    by_name = {s.name: s for s in skus}
    assert {"Standard_D2s_v5", "Standard_D2_v4", "Standard_E2s_v5", "Standard_F2s_v2", "Standard_B2s",
            "Standard_DS1_v2", "Standard_A2_v2"} <= set(by_name)
    assert all(s.locations == ["westeurope"] and s.resource_type == "virtualMachines" for s in skus)
    d2 = by_name["Standard_D2s_v5"]
    caps = {c.name: c.value for c in d2.capabilities}
    assert (d2.tier, d2.size, d2.family) == ("Standard", "D2s_v5", "standardDSv5Family")
    assert caps["vCPUs"] == "2" and caps["MemoryGB"] == "8" and caps["PremiumIO"] == "True"
    assert caps["UncachedDiskIOPS"] == "3750" and caps["HyperVGenerations"] == "V1,V2"
    assert {c.name: c.value for c in by_name["Standard_D2_v4"].capabilities}["PremiumIO"] == "False"
    assert d2.location_info[0].zones == ["1", "2", "3"] and d2.restrictions == []
    everywhere = {s.locations[0] for s in env.compute.resource_skus.list()}
    assert {"eastus", "westus", "westeurope"} <= everywhere


def test_restriction_shows_in_skus_and_refuses_create(arm: ArmSim, env: Env) -> None:
    arm.restrict_sku("Standard_E4s_v5", "eastus")
    arm.restrict_sku("Standard_D4s_v5", "eastus", zones=["2"])
    skus = {s.name: s for s in env.compute.resource_skus.list(filter="location eq 'eastus'")}
    r = skus["Standard_E4s_v5"].restrictions[0]
    assert (r.type, r.reason_code, r.restriction_info.locations) == ("Location", "NotAvailableForSubscription",
                                                                     ["eastus"])
    assert skus["Standard_D4s_v5"].restrictions[0].type == "Zone"
    assert skus["Standard_D4s_v5"].restrictions[0].restriction_info.zones == ["2"]
    env.rg("rg")
    with pytest.raises(ResourceExistsError) as e:
        _vm(env, "rg", "vm1", "Standard_E4s_v5")
    assert e.value.error.code == "SkuNotAvailable"
    assert e.value.error.message == (
        f"The requested size for resource '{env.vm_id('rg', 'vm1')}' is currently not available in location 'eastus' "
        f"zones '' for subscription '{SUB_ID}'. Please try another size or deploy to a different location or zones. "
        "See https://aka.ms/azureskunotavailable for details.")
    with pytest.raises(ResourceExistsError) as e:
        _vm(env, "rg", "vm2", "Standard_D4s_v5", zones=["2"])
    assert e.value.error.code == "SkuNotAvailable" and "zones '2'" in e.value.error.message
    _vm(env, "rg", "vm3", "Standard_D4s_v5", zones=["1"]).result()
    assert "Standard_E4s_v5" not in {s.name for s in env.compute.virtual_machine_sizes.list("eastus")}
    arm.restrict_sku("Standard_E4s_v5", "eastus", restricted=False)
    _vm(env, "rg", "vm1", "Standard_E4s_v5").result()


# --- availability sets -------------------------------------------------------------------------------------


def test_availability_set_crud_and_membership(env: Env) -> None:
    env.rg("rg")
    avset = _avset(env, "rg", "as1")
    got = env.compute.availability_sets.get("rg", "as1")
    assert (got.platform_fault_domain_count, got.platform_update_domain_count, got.sku.name) == (2, 5, "Aligned")
    assert got.virtual_machines == []
    _vm(env, "rg", "vm1", avset=avset).result()
    _vm(env, "rg", "vm2", avset=avset).result()
    members = {m.id for m in env.compute.availability_sets.get("rg", "as1").virtual_machines}
    assert members == {env.vm_id("rg", "vm1"), env.vm_id("rg", "vm2")}
    assert env.compute.virtual_machines.get("rg", "vm1").availability_set.id == avset
    assert [a.name for a in env.compute.availability_sets.list("rg")] == ["as1"]
    env.compute.virtual_machines.begin_delete("rg", "vm2").result()
    assert [m.id for m in env.compute.availability_sets.get("rg", "as1").virtual_machines] == [env.vm_id("rg", "vm1")]
    ppg = env.compute.proximity_placement_groups.create_or_update("rg", "ppg1", {"location": "eastus"})
    assert env.compute.proximity_placement_groups.get("rg", "ppg1").id == ppg.id
    env.compute.proximity_placement_groups.delete("rg", "ppg1")
    env.compute.availability_sets.delete("rg", "as1")
    with pytest.raises(ResourceNotFoundError):
        env.compute.availability_sets.get("rg", "as1")


def test_vm_in_missing_availability_set_is_refused(env: Env) -> None:
    env.rg("rg")
    missing = f"{env.rg_id('rg')}/providers/Microsoft.Compute/availabilitySets/nope"
    with pytest.raises(ResourceNotFoundError) as e:
        _vm(env, "rg", "vm1", avset=missing)
    assert e.value.error.code == "NotFound"
    assert e.value.error.message == f"The Availability Set '{missing}' cannot be found."


# --- sizes lists and resize --------------------------------------------------------------------------------


def test_vm_sizes_follow_the_cluster_while_allocated(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    _vm(env, "rg", "vm1").result()
    cluster = arm.vm_facts(env.vm_id("rg", "vm1"))["cluster"]
    assert cluster and "-gen5-" in cluster
    running = {s.name for s in env.compute.virtual_machines.list_available_sizes("rg", "vm1")}
    assert "Standard_D4s_v5" in running and "Standard_F2s_v2" not in running and "Standard_B2s" not in running
    d4 = next(s for s in env.compute.virtual_machines.list_available_sizes("rg", "vm1") if s.name == "Standard_D4s_v5")
    assert (d4.number_of_cores, d4.memory_in_mb, d4.max_data_disk_count, d4.resource_disk_size_in_mb) == (
        4, 16384, 8, 0)
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    assert arm.vm_facts(env.vm_id("rg", "vm1"))["cluster"] is None
    deallocated = {s.name for s in env.compute.virtual_machines.list_available_sizes("rg", "vm1")}
    assert deallocated == {s.name for s in env.compute.virtual_machine_sizes.list("eastus")}
    assert "Standard_F2s_v2" in deallocated


def test_availability_set_sizes(env: Env) -> None:
    env.rg("rg")
    avset = _avset(env, "rg", "as1")
    empty = {s.name for s in env.compute.availability_sets.list_available_sizes("rg", "as1")}
    assert "Standard_F2s_v2" in empty
    _vm(env, "rg", "vm1", avset=avset).result()
    pinned = {s.name for s in env.compute.availability_sets.list_available_sizes("rg", "as1")}
    assert "Standard_E2s_v5" in pinned and "Standard_F2s_v2" not in pinned
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    assert {s.name for s in env.compute.availability_sets.list_available_sizes("rg", "as1")} == empty


def test_resize_to_an_unknown_size_is_refused(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    _vm(env, "rg", "vm1").result()
    with pytest.raises(HttpResponseError) as e:
        _resize(env, "rg", "vm1", "Standard_Bogus_v99")
    assert e.value.status_code == 400 and e.value.error.code == "InvalidParameter"
    assert e.value.error.target == "vmSize"
    assert e.value.error.message.startswith("The value Standard_Bogus_v99 provided for the VM size is not valid. "
                                            "The valid sizes in the current region are: Standard_D2s_v5,")
    assert env.compute.virtual_machines.get("rg", "vm1").hardware_profile.vm_size == "Standard_D2s_v5"
    assert _failed(arm, "vm1")[0]["error"]["code"] == "InvalidParameter"


def test_resize_outside_the_cluster_refused_while_allocated_then_accepted(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    avset = _avset(env, "rg", "as1")
    _vm(env, "rg", "vm1", avset=avset).result()
    _vm(env, "rg", "vm2", avset=avset).result()
    with pytest.raises(ResourceExistsError) as e:
        _resize(env, "rg", "vm1", "Standard_F4s_v2")
    assert e.value.error.code == "OperationNotAllowed" and e.value.error.target == "vmSize"
    assert e.value.error.message.startswith("Unable to resize the VM 'vm1' because the requested size Standard_F4s_v2 "
                                            "is not available in the current hardware cluster. The available sizes "
                                            "are: Standard_D2s_v5,")
    assert e.value.error.message.endswith("Read more on VM resizing strategy at https://aka.ms/azure-resizevm.")
    with pytest.raises(HttpResponseError) as e:  # a new member must fit the pinned cluster too
        _vm(env, "rg", "vm3", "Standard_F2s_v2", avset=avset)
    assert e.value.error.code == "InvalidParameter" and "in availability set 'as1'" in e.value.error.message
    _resize(env, "rg", "vm1", "Standard_E2s_v5").result()  # same hardware: fine while running
    for name in ("vm1", "vm2"):
        env.compute.virtual_machines.begin_deallocate("rg", name).result()
    done = _resize(env, "rg", "vm1", "Standard_F4s_v2").result()
    assert done.hardware_profile.vm_size == "Standard_F4s_v2"
    env.compute.virtual_machines.begin_start("rg", "vm1").result()
    assert "-compute-" in arm.vm_facts(env.vm_id("rg", "vm1"))["cluster"]
    with pytest.raises(ResourceExistsError) as e:  # vm2 (D2s_v5) cannot join the set's new cluster
        env.compute.virtual_machines.begin_start("rg", "vm2")
    assert e.value.error.code == "OperationNotAllowed" and e.value.error.message.startswith("Unable to start the VM")


# --- capacity ----------------------------------------------------------------------------------------------


def test_start_fails_allocation_until_capacity_returns(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    _vm(env, "rg", "vm1").result()
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    arm.set_capacity("eastus", 0, size="Standard_D2s_v5")
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_start("rg", "vm1").result()
    assert e.value.error.code == "AllocationFailed"
    assert e.value.error.message == (
        "Allocation failed. We do not have sufficient capacity for the requested VM size in this region. Read more "
        "about improving likelihood of allocation success at http://aka.ms/allocation-guidance")
    assert "PowerState/deallocated" in env.statuses("rg", "vm1")
    failed = _failed(arm, "vm1")
    assert failed[-1]["status"] == "Failed" and failed[-1]["error"]["code"] == "AllocationFailed"
    arm.set_capacity("eastus", None, size="Standard_D2s_v5")
    env.compute.virtual_machines.begin_start("rg", "vm1").result()
    assert "PowerState/running" in env.statuses("rg", "vm1")


def test_create_fails_allocation_and_leaves_the_vm_deallocated(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    arm.set_capacity("eastus", 0)
    with pytest.raises(HttpResponseError) as e:
        _vm(env, "rg", "vm1").result()
    assert e.value.error.code == "AllocationFailed"
    assert arm.vm_facts(env.vm_id("rg", "vm1"))["host"] is None
    assert "PowerState/deallocated" in env.statuses("rg", "vm1")


def test_zonal_allocation_failure(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    arm.set_capacity("eastus", 0, zone="1")
    with pytest.raises(HttpResponseError) as e:
        _vm(env, "rg", "vm1", zones=["1"]).result()
    assert e.value.error.code == "ZonalAllocationFailed"
    assert "in this zone" in e.value.error.message
    _vm(env, "rg", "vm2", zones=["2"]).result()


def test_fail_next_allocation_with_a_chosen_code(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    arm.fail_allocations("eastus", 1, code="OverconstrainedAllocationRequest")
    with pytest.raises(HttpResponseError) as e:
        _vm(env, "rg", "vm1").result()
    assert e.value.error.code == "OverconstrainedAllocationRequest"
    assert e.value.error.message.startswith("Allocation failed. VM(s) with the following constraints cannot be "
                                            "allocated, because the condition is too restrictive.")
    _vm(env, "rg", "vm2").result()  # only the next one


# --- quota -------------------------------------------------------------------------------------------------


def test_spot_vms_count_against_the_low_priority_quota_not_their_family(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    body = env.vm_body("rg", "spot1")
    body["properties"]["hardwareProfile"]["vmSize"] = "Standard_D4s_v5"
    body["properties"] |= {"priority": "Spot", "evictionPolicy": "Deallocate", "billingProfile": {"maxPrice": -1}}
    env.compute.virtual_machines.begin_create_or_update("rg", "spot1", body).result()
    usage = {u.name.value: u for u in env.compute.usage.list("eastus")}
    assert usage["lowPriorityCores"].current_value == 4
    assert usage["lowPriorityCores"].name.localized_value == "Total Regional Low-priority vCPUs"
    assert usage["standardDSv5Family"].current_value == 0 and usage["cores"].current_value == 0
    arm.set_quota("eastus", "standardDSv5Family", 0)  # the family's quota does not apply to Spot VMs
    arm.set_quota("eastus", "lowPriorityCores", 6)
    with pytest.raises(ResourceExistsError) as e:
        _resize(env, "rg", "spot1", "Standard_D8s_v5")
    assert e.value.error.code == "OperationNotAllowed"
    assert e.value.error.message.startswith(
        "Operation could not be completed as it results in exceeding approved LowPriorityCores quota. Additional "
        "details - Deployment Model: Resource Manager, Location: eastus, Current Limit: 6, Current Usage: 4, "
        "Additional Required: 4, (Minimum) New Limit Required: 8.")
    _resize(env, "rg", "spot1", "Standard_D2s_v5").result()  # smaller: gives vCPUs back


def test_usage_counts_every_vm_and_quota_refuses_create_resize_and_start(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    _vm(env, "rg", "vm1", "Standard_D4s_v5").result()
    _vm(env, "rg", "vm2").result()
    env.compute.virtual_machines.begin_deallocate("rg", "vm2").result()
    usage = {u.name.value: u for u in env.compute.usage.list("eastus")}
    assert (usage["cores"].current_value, usage["cores"].limit, usage["cores"].unit) == (6, 500, "Count")
    assert usage["standardDSv5Family"].current_value == 6  # deallocated VMs count, as in Azure
    assert usage["standardDSv5Family"].name.localized_value == "Standard DSv5 Family vCPUs"
    arm.set_quota("eastus", "standardDSv5Family", 8)
    with pytest.raises(ResourceExistsError) as e:
        _vm(env, "rg", "vm3", "Standard_D4s_v5")
    assert e.value.error.code == "OperationNotAllowed"
    assert e.value.error.message.startswith(
        "Operation could not be completed as it results in exceeding approved standardDSv5Family Cores quota. "
        "Additional details - Deployment Model: Resource Manager, Location: eastus, Current Limit: 8, "
        "Current Usage: 6, Additional Required: 4, (Minimum) New Limit Required: 10. Submit a request for Quota "
        "increase at ")
    with pytest.raises(ResourceExistsError) as e:
        _resize(env, "rg", "vm1", "Standard_D8s_v5")
    assert "Additional Required: 4," in e.value.error.message
    arm.set_quota("eastus", "standardDSv5Family", 4)  # lowered below what is in use
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_start("rg", "vm2")
    assert e.value.error.code == "OperationNotAllowed" and "Current Limit: 4" in e.value.error.message
    arm.set_quota("eastus", "cores", 4, legacy=True)
    arm.set_quota("eastus", "standardDSv5Family", 100)
    with pytest.raises(ResourceExistsError) as e:
        _vm(env, "rg", "vm4", "Standard_E2s_v5")
    assert e.value.error.code == "QuotaExceeded"
    assert e.value.error.message == ("Operation results in exceeding quota limits of Core. Maximum allowed: 4, "
                                     "Current in use: 6, Additional requested: 2.")
    assert [f["error"]["code"] for f in _failed(arm, "vm3")] == ["OperationNotAllowed"]


# --- control API and scenarios -----------------------------------------------------------------------------


def test_control_api_round_trip(env: Env) -> None:
    import requests

    base = f"{env.arm.endpoint}/_armsim"
    r = requests.post(f"{base}/capacity", json={"location": "eastus", "size": "Standard_B2s", "limit": 1},
                      verify=env.arm.ca_bundle, timeout=30)
    assert r.status_code == 200, r.text
    got = requests.get(f"{base}/capacity", verify=env.arm.ca_bundle, timeout=30).json()
    assert got["capacity_limits"][0]["limit"] == 1
    bad = requests.post(f"{base}/quota", json={"location": "mars", "name": "cores", "limit": 1},
                        verify=env.arm.ca_bundle, timeout=30)
    assert bad.status_code == 400
    assert requests.delete(f"{base}/capacity", verify=env.arm.ca_bundle, timeout=30).json() == {"cleared": True}


@pytest.mark.parametrize("scenario,rg,vm,code", [
    ("allocation-failure", "rg-alloc", "app-01", "AllocationFailed"),
    ("size-not-in-cluster", "rg-resize", "api-01", "OperationNotAllowed"),
    ("size-not-in-cluster", "rg-resize", "api-05", "OperationNotAllowed"),
    ("quota-exceeded", "rg-quota", "batch-03", "OperationNotAllowed"),
    ("sku-not-available", "rg-sku", "db-01", "SkuNotAvailable"),
])
def test_scenarios_seed_their_refusals(arm: ArmSim, env: Env, scenario: str, rg: str, vm: str, code: str) -> None:
    seeded = arm.seed(scenario)
    assert seeded["targets"] and seeded["distractors"]
    assert _failed(arm, vm)[-1]["error"]["code"] == code
    for distractor in seeded["distractors"]:
        assert not _failed(arm, distractor.rsplit("/", 1)[1])


def test_allocation_failure_scenario_recovers(arm: ArmSim, env: Env) -> None:
    arm.seed("allocation-failure")
    assert "PowerState/deallocated" in env.statuses("rg-alloc", "web-01")
    env.compute.virtual_machines.begin_start("rg-alloc", "web-01").result()  # the one-off failure is gone
    with pytest.raises(HttpResponseError):
        env.compute.virtual_machines.begin_start("rg-alloc", "app-01").result()
    arm.set_capacity("eastus", None, size="Standard_E4s_v5")
    env.compute.virtual_machines.begin_start("rg-alloc", "app-01").result()


def test_serve_seeds_a_capacity_scenario() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "armsim", "serve", "--scenario", "quota-exceeded",
                             "--latency-scale", "0.001"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        import requests

        state = requests.get(f"{info['endpoint']}/_armsim/quota", verify=info["ca_bundle"], timeout=30).json()
        assert state["quota_limits"][0]["limit"] == 8
    finally:
        proc.terminate()
        proc.wait(timeout=30)
