"""Replay every request of ../shared/azure-rest-examples/ that armsim serves against a seeded world: the
status must be one the example documents, the body must have the example's shape and deserialize into
the SDK's model (``Model(body).as_dict()`` round trip)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from armsim_env import SHARED, Env
from azure.mgmt.compute import models as cm
from azure.mgmt.network import models as nm

EXAMPLES = SHARED / "azure-rest-examples"
RG = "myResourceGroup"
LOC = "westus"

# Operation served by armsim → (method, path template under the resource group (or subscription), body key,
# SDK model of the response body or None for an empty one)
OPERATIONS: dict[str, tuple[str, str, str | None, Any]] = {
    "VirtualMachines_Get.json": ("GET", "{rg}/providers/Microsoft.Compute/virtualMachines/{vmName}", None,
                                 cm.VirtualMachine),
    "VirtualMachines_InstanceView.json": (
        "GET", "{rg}/providers/Microsoft.Compute/virtualMachines/{vmName}/instanceView", None,
        cm.VirtualMachineInstanceView),
    "VirtualMachines_ListAll.json": ("GET", "/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines", None,
                                     None),
    "VirtualMachines_Start.json": ("POST", "{rg}/providers/Microsoft.Compute/virtualMachines/{vmName}/start", None,
                                   None),
    "VirtualMachines_Deallocate.json": (
        "POST", "{rg}/providers/Microsoft.Compute/virtualMachines/{vmName}/deallocate", None, None),
    "VirtualMachines_Generalize.json": (
        "POST", "{rg}/providers/Microsoft.Compute/virtualMachines/{vmName}/generalize", None, None),
    "VirtualMachines_Delete_Force.json": ("DELETE", "{rg}/providers/Microsoft.Compute/virtualMachines/{vmName}",
                                          None, None),
    "VirtualMachines_CreateOrUpdate_FromManagedImage.json": (
        "PUT", "{rg}/providers/Microsoft.Compute/virtualMachines/{vmName}", "parameters", cm.VirtualMachine),
    "SYNTHESIZED_VirtualMachines_CreateOrUpdate_AttachSpecializedOsDisk.json": (
        "PUT", "{rg}/providers/Microsoft.Compute/virtualMachines/{vmName}", "parameters", cm.VirtualMachine),
    "Images_CreateOrUpdate_FromVM.json": ("PUT", "{rg}/providers/Microsoft.Compute/images/{imageName}",
                                          "parameters", cm.Image),
    "Images_Get.json": ("GET", "{rg}/providers/Microsoft.Compute/images/{imageName}", None, cm.Image),
    "Disks_Get.json": ("GET", "{rg}/providers/Microsoft.Compute/disks/{diskName}", None, cm.Disk),
    "Disks_CreateOrUpdate_CopyFromDisk.json": ("PUT", "{rg}/providers/Microsoft.Compute/disks/{diskName}", "disk",
                                               cm.Disk),
    "Disks_CreateOrUpdate_CopyFromSnapshot.json": ("PUT", "{rg}/providers/Microsoft.Compute/disks/{diskName}",
                                                   "disk", cm.Disk),
    "Snapshots_CreateOrUpdate_Copy.json": ("PUT", "{rg}/providers/Microsoft.Compute/snapshots/{snapshotName}",
                                           "snapshot", cm.Snapshot),
    "NetworkInterfaces_Get.json": ("GET", "{rg}/providers/Microsoft.Network/networkInterfaces/{networkInterfaceName}",
                                   None, nm.NetworkInterface),
    "PublicIPAddresses_Get.json": ("GET", "{rg}/providers/Microsoft.Network/publicIPAddresses/{publicIpAddressName}",
                                   None, nm.PublicIPAddress),
}
# In the folder, but armsim deliberately does not serve them: the answer must still be a clean ARM error.
NOT_SERVED = {
    "VirtualMachines_Capture.json": (409, "OperationNotAllowed"),  # managed-disk VMs: Azure refuses capture too
    "VirtualMachines_CreateOrUpdate_WithNicConfigDeleteOption.json": (400, "InvalidParameter"),
}
LIST_MODELS: dict[str, Callable[[dict[str, Any]], Any]] = {"VirtualMachines_ListAll.json": cm.VirtualMachine}


def _example_files() -> list[str]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(p.name for p in EXAMPLES.glob("*.json") if p.name[0].isupper())


def _load(name: str, sub: str) -> dict[str, Any]:
    """The example with placeholders turned into names of the seeded world."""
    text = (EXAMPLES / name).read_text()
    for placeholder in ("{subscription-id}", "{subscriptionId}"):
        text = text.replace(placeholder, sub)
    text = text.replace("{existing-custom-image-name}", "myImage").replace("{existing-nic-name}", "myNic2")
    text = text.replace("{uami}", "myIdentity")
    for key in ("{plan-name}", "{plan-publisher}", "{plan-product}"):
        text = text.replace(key, key.strip("{}"))
    return json.loads(text)


def _seed(env: Env) -> None:
    """The world every example refers to: myResourceGroup in westus with VMs, disks, snapshots, an image."""
    c = env.compute
    env.rg(RG, LOC)
    env.nic(RG, "myNic2", location=LOC)
    # a generalized VM captured as myImage (sysprepped: creating from it works)
    env.vm(RG, "myVM", location=LOC)
    env.settle()
    env.guest("sysprep", env.vm_id(RG, "myVM"))
    c.virtual_machines.begin_deallocate(RG, "myVM").result()
    c.virtual_machines.generalize(RG, "myVM")
    c.images.begin_create_or_update(RG, "myImage", {
        "location": LOC, "properties": {"sourceVirtualMachine": {"id": env.vm_id(RG, "myVM")}}}).result()
    # VMs named like the MaximumSet examples, running
    for name in ("aaaaaaaaaa", "myVM2"):
        env.vm(RG, name, location=LOC, public_ip=True)
    disk = {"location": LOC, "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 64}}
    c.disks.begin_create_or_update(RG, "myDisk1", disk).result()
    c.snapshots.begin_create_or_update(RG, "mySnapshot1", {"location": LOC, "properties": {"creationData": {
        "createOption": "Copy", "sourceResourceId": env.disk_id(RG, "myDisk1")}}}).result()
    c.snapshots.begin_create_or_update(RG, "mySnapshot", {"location": LOC, "properties": {"creationData": {
        "createOption": "Copy", "sourceResourceId": env.disk_id(RG, "myDisk1")}}}).result()


def _prepare(env: Env, name: str, example: dict[str, Any]) -> None:
    """Per-example world: the resources its request names, in the state the operation needs."""
    c = env.compute
    params = example["parameters"]
    if name in ("VirtualMachines_Start.json", "VirtualMachines_Deallocate.json", "VirtualMachines_Generalize.json",
                "VirtualMachines_Delete_Force.json", "VirtualMachines_Capture.json", "VirtualMachines_Get.json",
                "VirtualMachines_InstanceView.json"):
        vm = params["vmName"]
        if vm not in ("myVM", "aaaaaaaaaa"):
            env.vm(RG, vm, location=LOC)
        if name == "VirtualMachines_Start.json" or name == "VirtualMachines_Generalize.json":
            c.virtual_machines.begin_deallocate(RG, vm).result()
        if name == "VirtualMachines_Capture.json":
            c.virtual_machines.begin_deallocate(RG, vm).result()
            c.virtual_machines.generalize(RG, vm)
    elif name == "Images_CreateOrUpdate_FromVM.json":
        c.images.begin_delete(RG, "myImage").result()
    elif name == "Images_Get.json" and params["imageName"] != "myImage":
        c.images.begin_create_or_update(RG, params["imageName"], {
            "location": LOC, "properties": {"sourceVirtualMachine": {"id": env.vm_id(RG, "myVM")}}}).result()
    elif name == "Disks_Get.json" and params["diskName"] != "myDisk1":
        env.empty_disk(RG, params["diskName"], location=LOC)
    elif name.startswith("SYNTHESIZED_"):
        body = params["parameters"]
        plan = body["plan"]
        env.compute.virtual_machines.begin_delete(RG, "myVM").result()  # frees myVM's name (disk is Detach)
        env.nic(RG, "myVM-nic", location=LOC)
        for disk_name, extra in (("myVM_OsDisk_1", {"osType": "Linux", "purchasePlan": plan,
                                                    "securityProfile": {"securityType": "TrustedLaunch"},
                                                    "hyperVGeneration": "V2"}), ("myVM_DataDisk_0", {})):
            c.disks.begin_create_or_update(RG, disk_name, {"location": LOC, "zones": ["1"], "properties": {
                "creationData": {"createOption": "Empty"}, "diskSizeGB": 64, **extra}}).result()
    elif name == "NetworkInterfaces_Get.json":
        env.nic(RG, params["networkInterfaceName"], location=LOC)
    elif name == "PublicIPAddresses_Get.json":
        env.network.public_ip_addresses.begin_create_or_update(RG, params["publicIpAddressName"], {
            "location": LOC, "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static"}}).result()
    elif name.startswith("VirtualMachines_CreateOrUpdate_"):
        c.virtual_machines.begin_delete(RG, "myVM").result()  # the name is taken by the image's source VM


def _request(env: Env, name: str, example: dict[str, Any], method: str, template: str,
             body_key: str | None) -> Any:
    params = example["parameters"]
    path = template.format(rg=env.rg_id(RG), sub=env.sub, **{k: v for k, v in params.items() if isinstance(v, str)})
    query = [f"{k}={str(v).lower()}" for k, v in params.items()
             if k in ("$expand", "forceDeletion", "hibernate", "statusOnly")]
    if query:
        path += "?" + "&".join(query)
    body = params.get(body_key) if body_key else None
    if name.endswith("Capture.json"):
        body = params["parameters"]
    return env.raw(method, path, api=params["api-version"], json=body)


def _shape_ok(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Keys of the example's object that are missing from ours (recursively, first array item only)."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        missing = []
        for key, value in theirs.items():
            if key not in ours:
                missing.append(f"{path}.{key}")
            else:
                missing += _shape_ok(ours[key], value, f"{path}.{key}")
        return missing
    if isinstance(theirs, list) and isinstance(ours, list) and theirs and ours:
        return _shape_ok(ours[0], theirs[0], f"{path}[0]")
    return []


# Fields the examples show that armsim does not model (documented in docs/armsim.md), or that depend on the
# example resource's state (an attached Marketplace OS disk, a NIC with a public IP, a running VM…).
NOT_MODELLED = {".managedBy", ".properties.osType", ".properties.hyperVGeneration", ".properties.purchasePlan",
                ".properties.creationData.imageReference", ".properties.LastOwnershipUpdateTime",
                ".properties.storageProfile.osDisk.blobUri", ".properties.storageProfile.osDisk.snapshot",
                ".properties.ipConfigurations[0].properties.publicIPAddress", ".properties.dnsSettings",
                ".properties.macAddress", ".properties.disableTcpStateTracking", ".properties.networkSecurityGroup",
                ".properties.primary", ".properties.virtualMachine", ".properties.dscpConfiguration",
                ".properties.ipConfiguration", ".properties.ddosSettings", ".properties.ipTags",
                ".properties.proximityPlacementGroup", ".properties.applicationProfile",
                ".properties.extensionsTimeBudget", ".vmAgent", ".disks[0].statuses[0].time", ".bootDiagnostics",
                ".extensions", ".patchStatus", ".isVMInStandbyPool", ".platformUpdateDomain", ".platformFaultDomain",
                ".osVersion",".properties.storageProfile.osDisk.vhd", ".properties.storageProfile.osDisk.image",
                ".properties.osProfile.windowsConfiguration", ".properties.osProfile.linuxConfiguration",
                ".properties.diagnosticsProfile", ".properties.availabilitySet", ".properties.instanceView",
                ".properties.networkProfile.networkInterfaces[0].properties.deleteOption",
                ".properties.encryption", ".properties.encryptionSettingsCollection",
                ".properties.supportedCapabilities",
                ".properties.dataAccessAuthMode", ".properties.supportsHibernation", ".properties.networkAccessPolicy",
                ".properties.publicNetworkAccess", ".properties.optimizedForFrequentAttach", ".properties.tier",
                ".properties.burstingEnabled", ".properties.completionPercent", ".properties.lastOwnershipUpdateTime",
                ".properties.diskIOPSReadWrite", ".properties.diskMBpsReadWrite", ".properties.shareInfo",
                ".properties.propertyUpdatesInProgress", ".properties.securityProfile", ".properties.storageProfile."
                "dataDisks[0].diskIOPSReadWrite", ".properties.storageProfile.dataDisks[0].diskMBpsReadWrite",
                ".properties.licenseType", ".properties.userData", ".properties.storageProfile.osDisk.osState",
                ".sku", ".zones", ".tags", ".etag", ".resources", ".systemData", ".extendedLocation", ".plan"}


def _unexpected(missing: list[str]) -> list[str]:
    return [m for m in missing if not any(m == n or m.startswith(n + ".") or m.startswith(n + "[")
                                          for n in NOT_MODELLED)]


@pytest.mark.shared
@pytest.mark.parametrize("name", _example_files() or ["<none>"])
def test_rest_example_replays(env: Env, name: str) -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"../shared not found: {EXAMPLES} (the REST examples live next to the repository)")
    example = _load(name, env.sub)
    if name not in OPERATIONS and name not in NOT_SERVED:
        pytest.fail(f"{name}: new example — add it to OPERATIONS or NOT_SERVED")
    env.arm.world.config.latency_scale = 0.0001  # the world below takes ~25 LROs to build
    _seed(env)
    _prepare(env, name, example)
    if name in NOT_SERVED:
        method, template = ("POST", "{rg}/providers/Microsoft.Compute/virtualMachines/{vmName}/capture") \
            if "Capture" in name else ("PUT", "{rg}/providers/Microsoft.Compute/virtualMachines/{vmName}")
        resp = _request(env, name, example, method, template, "parameters")
        status, code = NOT_SERVED[name]
        assert resp.status_code == status and resp.json()["error"]["code"] == code, resp.text
        return
    method, template, body_key, model = OPERATIONS[name]
    resp = _request(env, name, example, method, template, body_key)
    documented = {int(s) for s in example["responses"]}
    assert resp.status_code in documented, f"{resp.status_code} not in {documented}: {resp.text[:300]}"
    documented_body = (example["responses"].get(str(resp.status_code)) or {}).get("body")
    if model is None:
        if name in LIST_MODELS:
            items = resp.json()["value"]
            assert items, "the seeded world has VMs"
            for item in items:
                assert LIST_MODELS[name](item).as_dict()["id"] == item["id"]
            if documented_body:
                assert not _unexpected(_shape_ok(items[0], documented_body["value"][0]))
        else:
            assert resp.content == b""  # actions answer with an empty body
        return
    body = resp.json()
    obj = model(body)
    assert obj.as_dict() == body  # everything armsim sends is part of the SDK's model
    if hasattr(obj, "id") and "id" in body:
        assert obj.id == body["id"]
    if documented_body:
        missing = _unexpected(_shape_ok(body, documented_body))
        assert not missing, f"armsim's body lacks {missing}"
    if method == "PUT":
        env.settle()
        final = env.raw("GET", template.format(rg=env.rg_id(RG), **{
            k: v for k, v in example["parameters"].items() if isinstance(v, str)}), api=example["parameters"][
            "api-version"]).json()
        assert final["properties"]["provisioningState"] == "Succeeded"
        model(final)


def test_examples_folder_is_fully_classified() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"../shared not found: {EXAMPLES}")
    unknown = set(_example_files()) - set(OPERATIONS) - set(NOT_SERVED)
    assert not unknown

