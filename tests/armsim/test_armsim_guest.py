"""The emulated guest: what the VM agent reports after recreating a VM from a disk or an image."""

from __future__ import annotations

from typing import Any

import pytest
from armsim_env import Env
from azure.core.exceptions import HttpResponseError

from armsim import ArmSim


def _attach_os(env: Env, rg: str, name: str, disk_id: str) -> dict[str, Any]:
    nic = env.nic(rg, f"{name}-nic")
    return {"location": "eastus", "properties": {
        "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
        "storageProfile": {"osDisk": {"osType": "Windows", "createOption": "Attach", "managedDisk": {"id": disk_id}}},
        "networkProfile": {"networkInterfaces": [{"id": nic, "properties": {"primary": True}}]}}}


def _capture(env: Env, *, sysprep: bool) -> str:
    """vm1 deallocated, generalized and captured to image 'img' (guest sysprepped or not); returns the image id."""
    env.rg("rg")
    env.vm("rg", "vm1")
    env.settle()  # booted: agent Ready
    if sysprep:
        assert env.guest("sysprep", env.vm_id("rg", "vm1"))["power_state"] == "stopped"
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    env.compute.virtual_machines.generalize("rg", "vm1")
    return env.compute.images.begin_create_or_update("rg", "img", {
        "location": "eastus", "properties": {"sourceVirtualMachine": {"id": env.vm_id("rg", "vm1")}}}).result().id


def _recreate_from_disk(env: Env) -> None:
    env.compute.virtual_machines.begin_delete("rg", "vm1").result()
    body = _attach_os(env, "rg", "vm2", env.disk_id("rg", "vm1_OsDisk"))
    env.compute.virtual_machines.begin_create_or_update("rg", "vm2", body).result()
    env.settle()  # past boot time


def test_platform_image_vm_reaches_agent_ready_after_boot(env: Env, arm: ArmSim) -> None:
    env.rg("rg")
    arm.world.config.latencies["vm.boot"] = 3600.0  # only the guest's boot is slow
    env.vm("rg", "vm1")
    assert "PowerState/running" in env.statuses("rg", "vm1")
    assert env.agent_status("rg", "vm1") == "Not Ready"  # running, guest still booting
    arm.settle()
    assert env.agent_status("rg", "vm1") == "Ready"
    env.compute.virtual_machines.begin_restart("rg", "vm1").result()
    assert env.agent_status("rg", "vm1") == "Not Ready"  # a restart boots the guest again


def test_attaching_a_sysprepped_disk_never_reaches_agent_ready(env: Env) -> None:
    _capture(env, sysprep=True)
    assert env.disk_facts(env.disk_id("rg", "vm1_OsDisk"))["guest"] == "generalized"
    _recreate_from_disk(env)
    assert "PowerState/running" in env.statuses("rg", "vm2")
    assert env.agent_status("rg", "vm2") == "Not Ready"


def test_attaching_a_specialized_disk_reaches_agent_ready(env: Env) -> None:
    _capture(env, sysprep=False)  # generalized in Azure only: the guest kept its accounts
    assert env.disk_facts(env.disk_id("rg", "vm1_OsDisk"))["guest"] == "specialized"
    _recreate_from_disk(env)
    assert env.agent_status("rg", "vm2") == "Ready"


def test_vm_from_sysprepped_image_with_os_profile_reaches_agent_ready(env: Env) -> None:
    image_id = _capture(env, sysprep=True)
    vm = env.vm("rg", "vm2", image_id=image_id)
    env.settle()
    assert vm.provisioning_state == "Succeeded"
    assert env.agent_status("rg", "vm2") == "Ready"
    os_disk = env.disk_facts(vm.storage_profile.os_disk.managed_disk.id)
    assert os_disk["guest"] == "specialized"  # setup ran with the osProfile


def test_vm_from_unsysprepped_image_fails_os_provisioning_timed_out(env: Env) -> None:
    image_id = _capture(env, sysprep=False)
    poller = env.compute.virtual_machines.begin_create_or_update("rg", "vm2", env.vm_body("rg", "vm2",
                                                                                          image_id=image_id))
    with pytest.raises(HttpResponseError) as e:
        poller.result()
    assert e.value.status_code == 200  # an async failure surfaces with the poll's status
    assert e.value.error.code == "OSProvisioningTimedOut"
    vm = env.compute.virtual_machines.get("rg", "vm2", expand="instanceView")
    assert vm.provisioning_state == "Failed"
    assert vm.instance_view.statuses[0].code == "ProvisioningState/failed/OSProvisioningTimedOut"


def test_image_copies_the_captured_disk_content(env: Env) -> None:
    image_id = _capture(env, sysprep=True)
    source = env.disk_facts(env.disk_id("rg", "vm1_OsDisk"))
    vm = env.vm("rg", "vm2", image_id=image_id)
    copy = env.disk_facts(vm.storage_profile.os_disk.managed_disk.id)
    assert copy["content"] == source["content"]
    assert image_id.endswith("/images/img")


def test_guest_actions_are_validated(env: Env, arm: ArmSim) -> None:
    import requests

    env.rg("rg")
    env.vm("rg", "vm1")
    base = f"{arm.endpoint}/_armsim/guest"
    bad = requests.post(f"{base}/reboot", json={"vm": env.vm_id("rg", "vm1")}, verify=arm.ca_bundle, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"
    missing = requests.post(f"{base}/sysprep", json={"vm": env.vm_id("rg", "nope")}, verify=arm.ca_bundle, timeout=10)
    assert missing.status_code == 404
    assert env.guest("shutdown", env.vm_id("rg", "vm1"))["power_state"] == "stopped"
    assert "PowerState/stopped" in env.statuses("rg", "vm1")
    stopped = requests.post(f"{base}/sysprep", json={"vm": env.vm_id("rg", "vm1")}, verify=arm.ca_bundle, timeout=10)
    assert stopped.status_code == 400  # the guest is not running
