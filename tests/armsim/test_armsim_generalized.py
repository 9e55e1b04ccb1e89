"""Generalized VMs and managed images: Azure's refusals with Azure's exact messages."""

from __future__ import annotations

import pytest
from armsim_env import Env
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from armsim import ArmSim


def _generalized(env: Env, rg: str = "rg", name: str = "vm1", **kw: object) -> None:
    env.rg(rg)
    env.vm(rg, name, **kw)
    env.compute.virtual_machines.begin_deallocate(rg, name).result()
    env.compute.virtual_machines.generalize(rg, name)


def test_generalize_refused_while_running(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.generalize("rg", "vm1")
    assert e.value.error.code == "OperationNotAllowed"
    assert e.value.error.message == (
        "Operation 'generalize' is not allowed on VM 'vm1' since the VM is running. Please power off explicitly in "
        "case you shut down the VM from inside the guest operating system.")
    assert "OSState/generalized" not in env.statuses("rg", "vm1")


@pytest.mark.parametrize("stop", ["begin_deallocate", "begin_power_off"])
def test_generalize_when_stopped_sets_os_state_and_keeps_power_state(env: Env, stop: str) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    getattr(env.compute.virtual_machines, stop)("rg", "vm1").result()
    before = [c for c in env.statuses("rg", "vm1") if c.startswith("PowerState/")]
    env.compute.virtual_machines.generalize("rg", "vm1")
    codes = env.statuses("rg", "vm1")
    assert "OSState/generalized" in codes
    assert [c for c in codes if c.startswith("PowerState/")] == before


def test_start_on_generalized_vm_is_409_with_exact_message(env: Env) -> None:
    _generalized(env)
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_start("rg", "vm1")
    assert e.value.status_code == 409
    assert e.value.error.code == "OperationNotAllowed"
    assert e.value.error.message == "Operation 'start' is not allowed on VM 'vm1' since the VM is generalized."


def test_patch_and_put_on_generalized_vm_are_refused(env: Env) -> None:
    _generalized(env)
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_update("rg", "vm1", {"tags": {"x": "y"}})
    assert e.value.error.code == "OperationNotAllowed"
    assert "since the VM is generalized." in e.value.error.message
    vm = env.compute.virtual_machines.get("rg", "vm1")
    with pytest.raises(ResourceExistsError) as e2:
        env.compute.virtual_machines.begin_create_or_update("rg", "vm1", vm)
    assert e2.value.error.code == "OperationNotAllowed"
    assert env.compute.virtual_machines.get("rg", "vm1").tags in (None, {})


def test_generalized_vm_can_be_deleted(env: Env) -> None:
    _generalized(env)
    env.compute.virtual_machines.begin_delete("rg", "vm1").result()
    assert [v.name for v in env.compute.virtual_machines.list("rg")] == []


def test_image_from_vm_requires_generalized(env: Env) -> None:
    env.rg("rg")
    env.vm("rg", "vm1")
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    body = {"location": "eastus", "properties": {"sourceVirtualMachine": {"id": env.vm_id("rg", "vm1")}}}
    with pytest.raises(ResourceExistsError) as e:
        env.compute.images.begin_create_or_update("rg", "img", body)
    assert e.value.error.code == "OperationNotAllowed"
    assert e.value.error.message == "The operation 'Create Image' requires the Virtual Machine 'vm1' to be Generalized."
    env.compute.virtual_machines.generalize("rg", "vm1")
    image = env.compute.images.begin_create_or_update("rg", "img", body).result()
    assert image.provisioning_state == "Succeeded"
    assert image.storage_profile.os_disk.os_state == "Generalized"
    assert image.source_virtual_machine.id.lower() == env.vm_id("rg", "vm1").lower()


def test_image_from_trusted_launch_vm_is_refused(env: Env) -> None:
    _generalized(env, security_type="TrustedLaunch")
    with pytest.raises(ResourceExistsError) as e:
        env.compute.images.begin_create_or_update("rg", "img", {
            "location": "eastus", "properties": {"sourceVirtualMachine": {"id": env.vm_id("rg", "vm1")}}})
    assert e.value.error.code == "OperationNotAllowed"
    assert e.value.error.message == (
        "Creation of managed images are not supported for virtual machine with TrustedLaunch security type.")


def test_images_are_regional(env: Env) -> None:
    _generalized(env)
    env.compute.images.begin_create_or_update("rg", "img", {
        "location": "eastus", "properties": {"sourceVirtualMachine": {"id": env.vm_id("rg", "vm1")}}}).result()
    image_id = f"{env.rg_id('rg')}/providers/Microsoft.Compute/images/img"
    body = env.vm_body("rg", "west", image_id=image_id, location="westus")
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_create_or_update("rg", "west", body)
    assert e.value.status_code == 400 and e.value.error.code == "InvalidParameter"
    assert "cannot be found in 'westus' region" in e.value.error.message
    # and an image cannot be captured into another region either
    with pytest.raises(HttpResponseError) as e2:
        env.compute.images.begin_create_or_update("rg", "img-west", {
            "location": "westus", "properties": {"sourceVirtualMachine": {"id": env.vm_id("rg", "vm1")}}})
    assert e2.value.status_code == 400


def test_vm_from_image_requires_os_profile(env: Env) -> None:
    _generalized(env)
    env.compute.images.begin_create_or_update("rg", "img", {
        "location": "eastus", "properties": {"sourceVirtualMachine": {"id": env.vm_id("rg", "vm1")}}}).result()
    body = env.vm_body("rg", "vm2", image_id=f"{env.rg_id('rg')}/providers/Microsoft.Compute/images/img")
    del body["properties"]["osProfile"]
    with pytest.raises(HttpResponseError) as e:
        env.compute.virtual_machines.begin_create_or_update("rg", "vm2", body)
    assert e.value.status_code == 400 and e.value.error.code == "InvalidParameter"
    assert "osProfile" in e.value.error.message


def test_capture_on_managed_vm_is_refused(env: Env) -> None:
    _generalized(env)
    with pytest.raises(ResourceExistsError) as e:
        env.compute.virtual_machines.begin_capture("rg", "vm1", {
            "vhdPrefix": "x", "destinationContainerName": "c", "overwriteVhds": True})
    assert e.value.error.message.startswith("The Capture action is only supported on a Virtual Machine with blob")


def test_seeded_generalized_after_capture(arm: ArmSim, env: Env) -> None:
    seeded = arm.seed("generalized-after-capture")
    codes = env.statuses("rg-demo", "app-01")
    assert "OSState/generalized" in codes and "PowerState/deallocated" in codes
    image = env.compute.images.get("rg-demo", "app-01-image")
    assert image.id == seeded["image"]
    assert image.source_virtual_machine.id.lower() == env.vm_id("rg-demo", "app-01").lower()
