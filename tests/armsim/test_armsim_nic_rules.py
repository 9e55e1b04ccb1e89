"""Azure's NIC rules for VMs, through the real SDK: the NIC set of an allocated VM, at least one NIC, the size's NIC
limit and accelerated networking, the availability set's cluster, and a Basic load balancer's availability set."""

from __future__ import annotations

import json
from typing import Any

import pytest
from armsim_env import Env
from azure.core.exceptions import HttpResponseError

from armsim import ArmSim


def _nic(env: Env, rg: str, name: str, *, accelerated: bool = False, pool: str | None = None) -> str:
    ipconfig: dict[str, Any] = {"subnet": {"id": env.subnet(rg)}}
    if pool:
        ipconfig["loadBalancerBackendAddressPools"] = [{"id": pool}]
    env.network.network_interfaces.begin_create_or_update(rg, name, {
        "location": "eastus", "properties": {"enableAcceleratedNetworking": accelerated,
                                             "ipConfigurations": [{"name": "ipconfig1", "properties": ipconfig}]},
    }).result()
    return env.nic_id(rg, name)


def _refs(*nics: str) -> list[dict[str, Any]]:
    return [{"id": n, "properties": {"primary": i == 0}} for i, n in enumerate(nics)]


def _create(env: Env, rg: str, name: str, nics: list[str], size: str = "Standard_D2s_v5",
            avset: str | None = None) -> Any:
    body = env.vm_body(rg, name)
    body["properties"]["hardwareProfile"]["vmSize"] = size
    body["properties"]["networkProfile"] = {"networkInterfaces": _refs(*nics)}
    if avset:
        body["properties"]["availabilitySet"] = {"id": avset}
    return env.compute.virtual_machines.begin_create_or_update(rg, name, body).result()


def _set_nics(env: Env, rg: str, name: str, nics: list[str]) -> Any:
    return env.compute.virtual_machines.begin_update(
        rg, name, {"properties": {"networkProfile": {"networkInterfaces": _refs(*nics)}}}).result()


def _avset(env: Env, rg: str, name: str) -> str:
    return str(env.compute.availability_sets.create_or_update(rg, name, {
        "location": "eastus", "sku": {"name": "Aligned"},
        "properties": {"platformFaultDomainCount": 2, "platformUpdateDomainCount": 5}}).id)


def _vm_nics(env: Env, rg: str, name: str) -> list[str]:
    vm = env.compute.virtual_machines.get(rg, name)
    return [n.id.lower() for n in vm.network_profile.network_interfaces]


def test_running_vm_keeps_its_nic_set_deallocated_vm_changes_it(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    first, second = _nic(env, "rg", "a-nic"), _nic(env, "rg", "b-nic")
    _create(env, "rg", "vm1", [first])
    with pytest.raises(HttpResponseError) as e:
        _set_nics(env, "rg", "vm1", [first, second])
    assert e.value.status_code == 400
    assert e.value.error.code == "AddingOrDeletingNetworkInterfacesOnARunningVirtualMachineNotSupported"
    assert env.vm_id("rg", "vm1") in e.value.error.message and "stop-deallocated" in e.value.error.message
    assert _vm_nics(env, "rg", "vm1") == [first.lower()]
    assert env.network.network_interfaces.get("rg", "b-nic").virtual_machine is None
    # the refused write is in the activity log with its request body (the NICs asked for)
    started = [ev for ev in arm.world.default.activity if ev["status"]["value"] == "Started"
               and ev["resourceId"].lower() == env.vm_id("rg", "vm1").lower() and ev["properties"].get("requestbody")]
    asked = json.loads(started[-1]["properties"]["requestbody"])
    assert [r["id"] for r in asked["properties"]["networkProfile"]["networkInterfaces"]] == [first, second]

    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    _set_nics(env, "rg", "vm1", [first, second])
    assert _vm_nics(env, "rg", "vm1") == [first.lower(), second.lower()]
    assert env.network.network_interfaces.get("rg", "b-nic").virtual_machine.id.lower() == \
        env.vm_id("rg", "vm1").lower()
    env.compute.virtual_machines.begin_start("rg", "vm1").result()
    assert "PowerState/running" in env.statuses("rg", "vm1")
    # removing one while running is refused too; a tag update of the running VM is not a NIC change
    with pytest.raises(HttpResponseError) as e:
        _set_nics(env, "rg", "vm1", [first])
    assert e.value.error.code == "AddingOrDeletingNetworkInterfacesOnARunningVirtualMachineNotSupported"
    env.compute.virtual_machines.begin_update("rg", "vm1", {"tags": {"k": "v"}}).result()


def test_a_vm_keeps_at_least_one_nic_and_one_primary(env: Env) -> None:
    env.rg("rg")
    first, second = _nic(env, "rg", "a-nic"), _nic(env, "rg", "b-nic")
    _create(env, "rg", "vm1", [first, second])
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    with pytest.raises(HttpResponseError) as e:
        _set_nics(env, "rg", "vm1", [])
    assert e.value.status_code == 400 and e.value.error.code == "VirtualMachineMustHaveAtLeastOneNetworkInterface"
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_update("rg", "vm1", {"properties": {"networkProfile": {
            "networkInterfaces": [{"id": first, "properties": {"primary": True}},
                                  {"id": second, "properties": {"primary": True}}]}}}).result()
    assert e.value.status_code == 400 and "primary" in e.value.error.message
    assert _vm_nics(env, "rg", "vm1") == [first.lower(), second.lower()]
    _set_nics(env, "rg", "vm1", [second])
    assert _vm_nics(env, "rg", "vm1") == [second.lower()]
    assert env.network.network_interfaces.get("rg", "a-nic").virtual_machine is None


def test_nic_count_per_size_on_create_change_and_resize(env: Env) -> None:
    env.rg("rg")
    nics = [_nic(env, "rg", f"n{i}") for i in range(4)]
    with pytest.raises(HttpResponseError) as e:
        _create(env, "rg", "vm1", nics[:3], size="Standard_D2s_v5")
    assert e.value.status_code == 400 and e.value.error.code == "NetworkInterfaceCountExceeded"
    assert e.value.error.message == (
        "The number of network interfaces for virtual machine vm1 exceeds the maximum allowed for the virtual machine "
        "size Standard_D2s_v5. The number of network interfaces is 3 and the maximum allowed is 2. ")
    assert env.network.network_interfaces.get("rg", "n0").virtual_machine is None
    _create(env, "rg", "vm1", nics[:2], size="Standard_D2s_v5")
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    with pytest.raises(HttpResponseError) as e:
        _set_nics(env, "rg", "vm1", nics[:3])
    assert e.value.error.code == "NetworkInterfaceCountExceeded"
    env.compute.virtual_machines.begin_update("rg", "vm1", {"properties": {
        "hardwareProfile": {"vmSize": "Standard_D8s_v5"}}}).result()
    _set_nics(env, "rg", "vm1", nics)
    assert len(_vm_nics(env, "rg", "vm1")) == 4
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_update("rg", "vm1", {"properties": {
            "hardwareProfile": {"vmSize": "Standard_D4s_v5"}}}).result()
    assert e.value.error.code == "NetworkInterfaceCountExceeded" and "maximum allowed is 2" in e.value.error.message
    assert env.compute.virtual_machines.get("rg", "vm1").hardware_profile.vm_size == "Standard_D8s_v5"


def test_accelerated_networking_needs_a_size_that_supports_it(env: Env) -> None:
    env.rg("rg")
    fast = _nic(env, "rg", "fast", accelerated=True)
    with pytest.raises(HttpResponseError) as e:
        _create(env, "rg", "vm1", [fast], size="Standard_A2_v2")
    assert e.value.status_code == 400 and e.value.error.code == "VMSizeIsNotPermittedToEnableAcceleratedNetworking"
    assert "has size Standard_A2_v2" in e.value.error.message and "Standard_D2s_v5" in e.value.error.message
    assert "Standard_A2_v2," not in e.value.error.message.split("Compatible VM sizes:")[1]
    _create(env, "rg", "vm2", [fast], size="Standard_D2s_v5")
    # resizing to a size without it is refused; so is enabling it on the NIC of such a VM
    env.compute.virtual_machines.begin_deallocate("rg", "vm2").result()
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_update("rg", "vm2", {"properties": {
            "hardwareProfile": {"vmSize": "Standard_A2_v2"}}}).result()
    assert e.value.error.code == "VMSizeIsNotPermittedToEnableAcceleratedNetworking"
    slow = _nic(env, "rg", "slow")
    _create(env, "rg", "vm3", [slow], size="Standard_A2_v2")
    with pytest.raises(HttpResponseError) as e:
        _nic(env, "rg", "slow", accelerated=True)
    assert e.value.error.code == "VMSizeIsNotPermittedToEnableAcceleratedNetworking"
    assert env.network.network_interfaces.get("rg", "slow").enable_accelerated_networking is False


def test_availability_set_without_accelerated_networking_refuses_such_a_member(env: Env) -> None:
    env.rg("rg")
    avset = _avset(env, "rg", "as1")
    _create(env, "rg", "old", [_nic(env, "rg", "nic-old")], avset=avset)
    with pytest.raises(HttpResponseError) as e:
        _create(env, "rg", "new", [_nic(env, "rg", "nic-new", accelerated=True)], avset=avset)
    assert e.value.status_code == 400
    assert e.value.error.code == "ExistingAvailabilitySetWasNotDeployedOnAcceleratedNetworkingEnabledCluster"
    assert e.value.error.message == (
        f"Cannot add Virtual Machine with accelerated networking-enabled nics ({env.vm_id('rg', 'new')}) on an "
        f"existing non-accelerated networking AvailabilitySet ({avset}).")
    # once every member is deallocated the set holds no cluster: the member is placed on one that has it
    env.compute.virtual_machines.begin_deallocate("rg", "old").result()
    _create(env, "rg", "new", [env.nic_id("rg", "nic-new")], avset=avset)
    assert "PowerState/running" in env.statuses("rg", "new")


def test_basic_load_balancer_serves_one_availability_set(env: Env) -> None:
    env.rg("rg")
    lb = env.network.load_balancers.begin_create_or_update("rg", "lb1", {
        "location": "eastus", "sku": {"name": "Basic"},
        "properties": {"backendAddressPools": [{"name": "pool"}]}}).result()
    assert lb.sku.name == "Basic" and lb.backend_address_pools[0].name == "pool"
    pool = lb.backend_address_pools[0].id
    set_a, set_b = _avset(env, "rg", "as-a"), _avset(env, "rg", "as-b")
    _create(env, "rg", "web1", [_nic(env, "rg", "nic-web1", pool=pool)], avset=set_a)
    with pytest.raises(HttpResponseError) as e:
        _create(env, "rg", "web2", [_nic(env, "rg", "nic-web2", pool=pool)], avset=set_b)
    assert e.value.status_code == 400
    assert e.value.error.code == "NetworkInterfaceAndLoadBalancerAreInDifferentAvailabilitySets"
    assert "lb1" in e.value.error.message and env.vm_id("rg", "web2") in e.value.error.message
    _create(env, "rg", "web3", [_nic(env, "rg", "nic-web3", pool=pool)], avset=set_a)
    # a NIC of a VM of another set joining the pool is refused on the NIC write too
    _create(env, "rg", "other", [_nic(env, "rg", "nic-other")], avset=set_b)
    with pytest.raises(HttpResponseError) as e:
        _nic(env, "rg", "nic-other", pool=pool)
    assert e.value.error.code == "NetworkInterfaceAndLoadBalancerAreInDifferentAvailabilitySets"
    members = env.network.load_balancers.get("rg", "lb1").backend_address_pools[0].backend_ip_configurations
    assert sorted(m.id.split("/")[-3] for m in members) == ["nic-web1", "nic-web2", "nic-web3"]
    # a Standard load balancer mixes sets
    std = env.network.load_balancers.begin_create_or_update("rg", "lb2", {
        "location": "eastus", "sku": {"name": "Standard"},
        "properties": {"backendAddressPools": [{"name": "pool"}]}}).result()
    _nic(env, "rg", "nic-other", pool=std.backend_address_pools[0].id)
    assert {lb.name for lb in env.network.load_balancers.list("rg")} == {"lb1", "lb2"}


def test_nic_change_scenario_holds_each_refusal_with_its_request_body(arm: ArmSim, env: Env) -> None:
    seeded = arm.seed("nic-change")
    expected = {"nic-01": "AddingOrDeletingNetworkInterfacesOnARunningVirtualMachineNotSupported",
                "nic-02": "VirtualMachineMustHaveAtLeastOneNetworkInterface",
                "nic-03": "NetworkInterfaceCountExceeded",
                "nic-04": "VMSizeIsNotPermittedToEnableAcceleratedNetworking",
                "nic-05": "ExistingAvailabilitySetWasNotDeployedOnAcceleratedNetworkingEnabledCluster",
                "nic-06": "NetworkInterfaceAndLoadBalancerAreInDifferentAvailabilitySets"}
    events = arm.world.default.activity
    for target in seeded["targets"]:
        name = target.rsplit("/", 1)[1]
        failed = [ev for ev in events
                  if ev["status"]["value"] == "Failed" and ev["resourceId"].lower() == target.lower()]
        assert [json.loads(ev["properties"]["statusMessage"])["error"]["code"] for ev in failed] == [expected[name]]
        started = next(ev for ev in events if ev["status"]["value"] == "Started"
                       and ev["correlationId"] == failed[0]["correlationId"])
        asked = json.loads(started["properties"]["requestbody"])["properties"]["networkProfile"]["networkInterfaces"]
        assert [r["id"] for r in asked] == seeded["requested"].get(target, [])
        assert len(_vm_nics(env, "rg-nic", name)) == 1  # the VM kept its NIC
    assert "PowerState/running" in env.statuses("rg-nic", "nic-01")
    assert "PowerState/deallocated" in env.statuses("rg-nic", "nic-03")
    for distractor in seeded["distractors"]:
        assert not [ev for ev in events if ev["status"]["value"] == "Failed"
                    and ev["resourceId"].lower() == distractor.lower()]
    assert len(_vm_nics(env, "rg-nic", "nic-07")) == 2 and len(_vm_nics(env, "rg-nic", "nic-08")) == 2
    assert "PowerState/running" in env.statuses("rg-nic", "nic-08")
