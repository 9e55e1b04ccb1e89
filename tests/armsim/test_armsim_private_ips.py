"""Private IP allocation in a subnet, through the real SDK: Dynamic takes the next free address, Static the one asked
for when it is free; Azure refuses an address another NIC holds, one outside the subnet's prefix and the subnet's
reserved ones (the first four and the last)."""

from __future__ import annotations

from typing import Any

import pytest
from armsim_env import Env
from azure.core.exceptions import HttpResponseError

from armsim import ArmSim


def _put(env: Env, name: str, *configs: dict[str, Any]) -> Any:
    return env.network.network_interfaces.begin_create_or_update("rg", name, {
        "location": "eastus", "properties": {"ipConfigurations": list(configs)}}).result()


def _cfg(env: Env, name: str = "ipconfig1", address: str | None = None, **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"subnet": {"id": env.subnet("rg")}, **extra}
    if address:
        props.update(privateIPAllocationMethod="Static", privateIPAddress=address)
    return {"name": name, "properties": props}


def _refused(env: Env, name: str, *configs: dict[str, Any]) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as e:
        _put(env, name, *configs)
    assert e.value.status_code == 400
    return e.value


@pytest.fixture
def rg(arm: ArmSim, env: Env) -> str:
    env.rg("rg")
    return "rg"


def test_dynamic_next_free_static_requested_when_free(rg: str, env: Env) -> None:
    first = _put(env, "a-nic", _cfg(env))
    assert first.ip_configurations[0].private_ip_address == "10.0.0.4"  # .0-.3 are Azure's
    assert first.ip_configurations[0].private_ip_allocation_method == "Dynamic"
    static = _put(env, "b-nic", _cfg(env, address="10.0.0.200"))
    assert static.ip_configurations[0].private_ip_address == "10.0.0.200"
    assert static.ip_configurations[0].private_ip_allocation_method == "Static"
    # the NIC's own address asked for again (an update pinning it) is not "in use"
    again = _put(env, "a-nic", _cfg(env, address="10.0.0.4"))
    assert again.ip_configurations[0].private_ip_allocation_method == "Static"


def test_address_another_nic_holds_is_refused(rg: str, env: Env) -> None:
    _put(env, "a-nic", _cfg(env))
    e = _refused(env, "b-nic", _cfg(env, address="10.0.0.4"))
    assert e.error.code == "PrivateIPAddressIsAllocated"
    assert "is using the private IP address 10.0.0.4 which is already allocated to resource" in e.error.message
    assert e.error.message.rstrip(".").endswith("/networkInterfaces/a-nic/ipConfigurations/ipconfig1")
    with pytest.raises(HttpResponseError):
        env.network.network_interfaces.get("rg", "b-nic")  # nothing was made


def test_one_address_twice_in_one_request_is_refused(rg: str, env: Env) -> None:
    e = _refused(env, "a-nic", _cfg(env, "one", address="10.0.0.9", primary=True),
                 _cfg(env, "two", address="10.0.0.9", primary=False))
    assert e.error.code == "PrivateIPAddressInUse"
    assert "same private IP address 10.0.0.9" in e.error.message


def test_address_outside_the_subnet_is_refused(rg: str, env: Env) -> None:
    e = _refused(env, "a-nic", _cfg(env, address="10.0.1.10"))
    assert e.error.code == "PrivateIPAddressNotInSubnet"
    assert e.error.message == ("Private static IP address 10.0.1.10 does not belong to the range of subnet prefix "
                               "10.0.0.0/24.")


@pytest.mark.parametrize("address", ["10.0.0.0", "10.0.0.1", "10.0.0.3", "10.0.0.255"])
def test_reserved_addresses_are_refused(rg: str, env: Env, address: str) -> None:
    e = _refused(env, "a-nic", _cfg(env, address=address))
    assert e.error.code == "PrivateIPAddressInReservedRange"
    assert e.error.message == (f"Private static IP address {address} falls within reserved IP range of subnet "
                               "prefix 10.0.0.0/24.")


def test_the_first_and_last_usable_addresses_are_allowed(rg: str, env: Env) -> None:
    assert _put(env, "a-nic", _cfg(env, address="10.0.0.4")).ip_configurations[0].private_ip_address == "10.0.0.4"
    assert _put(env, "b-nic", _cfg(env, address="10.0.0.254")).ip_configurations[0].private_ip_address == \
        "10.0.0.254"


def test_deleted_nic_frees_its_address_for_a_static_request(rg: str, env: Env) -> None:
    _put(env, "a-nic", _cfg(env))
    env.network.network_interfaces.begin_delete("rg", "a-nic").result()
    nic = _put(env, "b-nic", _cfg(env, address="10.0.0.4"))
    assert nic.ip_configurations[0].private_ip_address == "10.0.0.4"


def test_subnet_expanded_shows_each_ipconfig_address(rg: str, env: Env) -> None:
    _put(env, "a-nic", _cfg(env))
    _put(env, "b-nic", _cfg(env, address="10.0.0.77"))
    vnet = env.subnet("rg").split("/subnets/")[0].rsplit("/", 1)[-1]
    plain = env.network.subnets.get("rg", vnet, "default")
    assert {c.id.rsplit("/", 3)[-3] for c in plain.ip_configurations} == {"a-nic", "b-nic"}
    assert all(c.private_ip_address is None for c in plain.ip_configurations)  # references only
    expanded = env.network.subnets.get("rg", vnet, "default", expand="ipConfigurations")
    held = {c.private_ip_address: (c.id.rsplit("/", 3)[-3], c.private_ip_allocation_method)
            for c in expanded.ip_configurations}
    assert held == {"10.0.0.4": ("a-nic", "Dynamic"), "10.0.0.77": ("b-nic", "Static")}


def test_dynamic_takes_the_lowest_free_address_of_a_subnet_with_holes(rg: str, env: Env) -> None:
    """Azure gives a Dynamic ipconfig the next available unassigned address of the subnet's range (Microsoft Learn,
    "Allocate or assign private IP addresses"): a hole a deleted NIC left is handed out before any higher address."""
    got = [_put(env, f"{n}-nic", _cfg(env)).ip_configurations[0].private_ip_address for n in "abcd"]
    assert got == ["10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7"]
    env.network.network_interfaces.begin_delete("rg", "b-nic").result()
    env.network.network_interfaces.begin_delete("rg", "a-nic").result()
    assert _put(env, "e-nic", _cfg(env)).ip_configurations[0].private_ip_address == "10.0.0.4"
    assert _put(env, "f-nic", _cfg(env)).ip_configurations[0].private_ip_address == "10.0.0.5"
    assert _put(env, "g-nic", _cfg(env)).ip_configurations[0].private_ip_address == "10.0.0.8"
    # two ipconfigs of one request take the two lowest free addresses, in order
    env.network.network_interfaces.begin_delete("rg", "c-nic").result()
    two = _put(env, "h-nic", _cfg(env, "one", primary=True), _cfg(env, "two", primary=False))
    assert [c.private_ip_address for c in two.ip_configurations] == ["10.0.0.6", "10.0.0.9"]


def test_a_refused_request_leaves_its_hole_for_the_next_one(rg: str, env: Env) -> None:
    _put(env, "a-nic", _cfg(env))
    # the first ipconfig would take .5, the second asks for an address outside the subnet: nothing is made
    _refused(env, "b-nic", _cfg(env, "one", primary=True), _cfg(env, "two", address="10.0.1.9", primary=False))
    assert _put(env, "c-nic", _cfg(env)).ip_configurations[0].private_ip_address == "10.0.0.5"


def test_each_subnet_of_a_vnet_starts_at_its_own_first_address(rg: str, env: Env) -> None:
    vnet = env.network.virtual_networks.begin_create_or_update("rg", "two-subnets", {
        "location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}, "subnets": [
            {"name": "front", "properties": {"addressPrefix": "10.1.0.0/24"}},
            {"name": "back", "properties": {"addressPrefix": "10.1.1.0/24"}}]}}).result()
    front, back = (s.id for s in vnet.subnets)
    for n in range(3):
        _put(env, f"front-{n}", {"name": "ipconfig1", "properties": {"subnet": {"id": front}}})
    nic = _put(env, "back-0", {"name": "ipconfig1", "properties": {"subnet": {"id": back}}})
    assert nic.ip_configurations[0].private_ip_address == "10.1.1.4"  # not .7: the front subnet's NICs don't count
