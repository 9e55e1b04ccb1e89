"""deleteOption cascades, refusals for attached disks / NICs in use, and the createOption Attach rules."""

from __future__ import annotations

from typing import Any

import pytest
from armsim_env import Env
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError


def _exists(fn: Any, *args: str) -> bool:
    try:
        fn(*args)
    except ResourceNotFoundError:
        return False
    return True


def test_vm_delete_honours_delete_options(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1", os_delete="Delete", nic_delete="Delete", public_ip=True, pip_delete="Delete",
           data_disks=[{"delete": "Delete"}, {"delete": "Detach"}])
    env.rg("rg2")
    env.vm("rg2", "vm2", os_delete="Detach", nic_delete="Detach", public_ip=True, pip_delete="Delete")
    env.compute.virtual_machines.begin_delete("rg", "vm1").result()
    env.compute.virtual_machines.begin_delete("rg2", "vm2").result()

    # Delete: gone with the VM (the public IP goes with its NIC because of the ipconfig's deleteOption)
    assert not _exists(env.compute.disks.get, "rg", "vm1_OsDisk")
    assert not _exists(env.compute.disks.get, "rg", "vm1_data0")
    assert not _exists(env.network.network_interfaces.get, "rg", "vm1-nic")
    assert not _exists(env.network.public_ip_addresses.get, "rg", "vm1-nic-ip")
    # Detach: kept, released
    kept = env.compute.disks.get("rg", "vm1_data1")
    assert kept.managed_by is None and kept.disk_state == "Unattached"
    os_disk = env.compute.disks.get("rg2", "vm2_OsDisk")
    assert os_disk.managed_by is None and os_disk.disk_state == "Unattached"
    nic = env.network.network_interfaces.get("rg2", "vm2-nic")
    assert nic.virtual_machine is None
    assert _exists(env.network.public_ip_addresses.get, "rg2", "vm2-nic-ip")


def test_attached_disk_tracks_managed_by_and_state(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    disk = env.compute.disks.get("rg", "vm1_OsDisk")
    assert disk.managed_by.lower() == env.vm_id("rg", "vm1").lower() and disk.disk_state == "Attached"
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    assert env.compute.disks.get("rg", "vm1_OsDisk").disk_state == "Reserved"


def test_deleting_an_attached_disk_is_refused(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    with pytest.raises(ResourceExistsError) as e:
        env.compute.disks.begin_delete("rg", "vm1_OsDisk")
    assert e.value.status_code == 409 and e.value.error.code == "OperationNotAllowed"
    assert e.value.error.message == f"Disk vm1_OsDisk is attached to VM {env.vm_id('rg', 'vm1')}."


def test_deleting_a_nic_in_use_is_refused(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    with pytest.raises(HttpResponseError) as e:
        env.network.network_interfaces.begin_delete("rg", "vm1-nic")
    assert e.value.status_code == 400 and e.value.error.code == "NicInUse"
    assert e.value.error.message.startswith(
        f"Network Interface {env.nic_id('rg', 'vm1-nic')} is used by existing resource {env.vm_id('rg', 'vm1')}.")


def test_attaching_a_disk_owned_by_another_vm_is_refused(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    body = env.vm_body("rg", "vm2")
    body["properties"]["storageProfile"]["dataDisks"] = [{
        "lun": 0, "createOption": "Attach", "managedDisk": {"id": env.disk_id("rg", "vm1_OsDisk")}}]
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_create_or_update("rg", "vm2", body)
    assert e.value.error.code == "ConflictingUserInput"
    assert e.value.error.message == (
        f"Disk '{env.disk_id('rg', 'vm1_OsDisk')}' cannot be attached as the disk is already owned by VM "
        f"'{env.vm_id('rg', 'vm1')}'.")
    assert not _exists(env.compute.virtual_machines.get, "rg", "vm2")  # nothing half-created


def _attach_body(env: Env, rg: str, name: str, disk: str, **extra: Any) -> dict[str, Any]:
    nic = env.nic(rg, f"{name}-nic", location=extra.pop("location", "eastus"))
    body: dict[str, Any] = {"location": "eastus", "properties": {
        "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
        "storageProfile": {"osDisk": {"osType": "Windows", "createOption": "Attach",
                                      "managedDisk": {"id": env.disk_id(rg, disk)}}},
        "networkProfile": {"networkInterfaces": [{"id": nic, "properties": {"primary": True}}]}}}
    for key, value in extra.items():
        if key in ("plan", "zones", "location"):
            body[key] = value
        else:
            body["properties"][key] = value
    return body


@pytest.fixture
def free_os_disk(env: Env) -> str:
    """A specialized OS disk left behind by a deleted VM (deleteOption Detach)."""
    env.rg("rg")
    env.vm("rg", "old")
    env.compute.virtual_machines.begin_delete("rg", "old").result()
    return "old_OsDisk"


def test_attach_with_os_profile_is_refused(env: Env, free_os_disk: str) -> None:
    body = _attach_body(env, "rg", "new", free_os_disk, osProfile={"computerName": "x", "adminUsername": "u"})
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_create_or_update("rg", "new", body)
    assert e.value.status_code == 400 and e.value.error.code == "InvalidParameter"
    assert e.value.error.message == "Parameter 'osProfile' is not allowed."


def test_attach_plan_must_match_the_disk(env: Env) -> None:
    env.rg("rg")
    plan = {"name": "p1", "publisher": "pub", "product": "prod"}
    env.empty_disk("rg", "market", osType="Windows", purchasePlan=plan)
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_create_or_update("rg", "new", _attach_body(env, "rg", "new", "market"))
    assert e.value.error.code == "VMMarketplaceInvalidInput"
    assert e.value.error.message.startswith("Creating a virtual machine from Marketplace image")
    with pytest.raises(HttpResponseError) as e2:
        env.compute.virtual_machines.begin_create_or_update(
            "rg", "new2", _attach_body(env, "rg", "new2", "market", plan={**plan, "name": "other"}))
    assert e2.value.error.code == "VMMarketplaceInvalidInput"
    assert e2.value.error.message == "The purchase information does not match. Unable to deploy from the Marketplace " \
                                     "image."
    vm = env.compute.virtual_machines.begin_create_or_update(
        "rg", "new3", _attach_body(env, "rg", "new3", "market", plan=plan)).result()
    assert vm.plan.name == "p1"


def test_attach_security_type_must_match(env: Env) -> None:
    env.rg("rg")
    env.empty_disk("rg", "tl", osType="Windows", securityProfile={"securityType": "TrustedLaunch"})
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_create_or_update("rg", "new", _attach_body(env, "rg", "new", "tl"))
    assert e.value.status_code == 400 and e.value.error.code == "BadRequest"
    assert e.value.error.message == "Security type of VM is not compatible with the security type of attached OS Disk."
    vm = env.compute.virtual_machines.begin_create_or_update("rg", "ok", _attach_body(
        env, "rg", "ok", "tl", securityProfile={"securityType": "TrustedLaunch"})).result()
    assert vm.security_profile.security_type == "TrustedLaunch"


def test_attach_zone_and_location_must_match(env: Env) -> None:
    env.rg("rg")
    env.empty_disk("rg", "zonal", osType="Windows", zones=["1"])
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_create_or_update("rg", "new", _attach_body(env, "rg", "new", "zonal"))
    assert e.value.status_code == 400 and "zone" in e.value.error.message
    vm = env.compute.virtual_machines.begin_create_or_update(
        "rg", "z1", _attach_body(env, "rg", "z1", "zonal", zones=["1"])).result()
    assert vm.zones == ["1"]
    env.empty_disk("rg", "west", osType="Windows", location="westus")
    with pytest.raises(HttpResponseError) as e2:
        env.compute.virtual_machines.begin_create_or_update("rg", "new2", _attach_body(env, "rg", "new2", "west"))
    assert e2.value.status_code == 400 and "location" in e2.value.error.message


def test_snapshot_and_copies_carry_disk_content(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    source = env.disk_id("rg", "vm1_OsDisk")
    env.compute.snapshots.begin_create_or_update("rg", "snap", {
        "location": "eastus", "properties": {"creationData": {"createOption": "Copy",
                                                              "sourceResourceId": source}}}).result()
    snap_id = f"{env.rg_id('rg')}/providers/Microsoft.Compute/snapshots/snap"
    restored = env.compute.disks.begin_create_or_update("rg", "restored", {
        "location": "eastus", "properties": {"creationData": {"createOption": "Copy",
                                                              "sourceResourceId": snap_id}}}).result()
    facts = [env.disk_facts(i) for i in (source, snap_id, restored.id)]
    assert facts[0]["content"] == facts[1]["content"] == facts[2]["content"]
    assert facts[0]["guest"] == facts[2]["guest"] == "specialized"
    other = env.empty_disk("rg", "other")
    assert env.disk_facts(other.id)["content"] != facts[0]["content"]
    assert restored.os_type == "Windows" and restored.disk_state == "Unattached"


def test_os_disk_swap_only_while_deallocated(env: Env) -> None:
    """Swapping the OS disk (a PATCH naming another managed disk) needs a deallocated VM; then the new disk is the
    VM's and the old one is released, kept."""
    env.rg("rg")
    env.vm("rg", "vm1")
    old = env.compute.disks.get("rg", "vm1_OsDisk")
    env.compute.disks.begin_create_or_update("rg", "vm1-os2", {
        "location": old.location, "sku": {"name": "Premium_LRS"},
        "properties": {"osType": old.os_type, "creationData": {"createOption": "Copy", "sourceResourceId": old.id}}}
    ).result()
    new_id = env.compute.disks.get("rg", "vm1-os2").id
    swap = {"properties": {"storageProfile": {"osDisk": {"name": "vm1-os2", "managedDisk": {"id": new_id}}}}}
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_update("rg", "vm1", swap)
    assert e.value.status_code == 409 and e.value.error.code == "OperationNotAllowed"
    assert "can be swapped only while the virtual machine is stopped (deallocated)" in e.value.error.message
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    vm = env.compute.virtual_machines.begin_update("rg", "vm1", swap, polling_interval=0).result()
    assert vm.storage_profile.os_disk.managed_disk.id.lower() == new_id.lower()
    assert vm.storage_profile.os_disk.name == "vm1-os2"
    assert env.compute.disks.get("rg", "vm1-os2").managed_by.lower() == env.vm_id("rg", "vm1").lower()
    released = env.compute.disks.get("rg", "vm1_OsDisk")
    assert released.managed_by is None and released.disk_state == "Unattached"
