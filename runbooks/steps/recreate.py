"""Steps that delete the VM and build it again: what Azure destroys with the VM is rebuilt from the
snapshots and the recorded configuration, then the VM is created under the same name."""

from __future__ import annotations

import copy
from typing import Any

from runbooks.azure import Call
from runbooks.errors import StepRefused
from runbooks.observe import Observation
from runbooks.plan import PlanContext, PlannedStep
from runbooks.steps.catalog import CreateFromImageParams, DeleteVmParams, NoParams
from runbooks.steps.registry import planner

# VM properties copied as they are onto the recreated VM (creation-only ones included: availability set,
# proximity placement group, dedicated host, capacity reservation cannot be added later).
PRESERVED_PROPERTIES = (
    "hardwareProfile", "additionalCapabilities", "securityProfile", "diagnosticsProfile", "availabilitySet",
    "virtualMachineScaleSet", "proximityPlacementGroup", "host", "hostGroup", "capacityReservation", "priority",
    "evictionPolicy", "billingProfile", "licenseType", "userData", "extensionsTimeBudget", "platformFaultDomain",
    "scheduledEventsProfile", "scheduledEventsPolicy", "applicationProfile",
)
PRESERVED_TOP = ("location", "tags", "zones", "plan", "extendedLocation")
DISK_PROPERTIES = ("osType", "hyperVGeneration", "purchasePlan", "securityProfile", "supportsHibernation",
                   "networkAccessPolicy", "publicNetworkAccess", "encryption", "burstingEnabled", "tier")


def _rg(resource_id: str) -> str:
    return resource_id.split("/")[4]


def doomed(obs: Observation) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Disks, NICs and public IPs Azure deletes together with the VM (deleteOption: Delete)."""
    disks = [obs.disks[e["managedDisk"]["id"].lower()] for e in obs.disk_entries()
             if e.get("deleteOption") == "Delete" and (e.get("managedDisk") or {}).get("id", "").lower() in obs.disks]
    nics, pips = [], []
    for ref in obs.props.get("networkProfile", {}).get("networkInterfaces", []):
        nic = obs.nics.get(str(ref.get("id", "")).lower())
        if nic is None or (ref.get("properties") or {}).get("deleteOption") != "Delete":
            continue
        nics.append(nic)
        for cfg in nic.get("properties", {}).get("ipConfigurations", []):
            pip_ref = cfg.get("properties", {}).get("publicIPAddress") or {}
            pip = obs.public_ips.get(str(pip_ref.get("id", "")).lower())
            if pip is not None and (pip_ref.get("properties") or {}).get("deleteOption") == "Delete":
                pips.append(pip)
    return disks, nics, pips


@planner("delete-vm")
def delete_vm(ctx: PlanContext, params: DeleteVmParams) -> PlannedStep:
    """Delete the VM. Refused unless every disk Azure will delete with it has a snapshot planned first."""
    obs = ctx.obs
    if obs.locks:
        names = ", ".join(f"{lk.get('name')} ({lk.get('properties', {}).get('level')})" for lk in obs.locks)
        raise StepRefused(f"{obs.ref} is under management lock(s) {names}: remove them (and re-add afterwards) "
                          "before remediating")
    disks, nics, pips = doomed(obs)
    unsaved = [d["name"] for d in disks if d["id"].lower() not in ctx.snapshots]
    if unsaved:
        raise StepRefused(f"{obs.ref}: {', '.join(unsaved)} would be deleted with the VM and no snapshot is "
                          "planned before delete-vm; add snapshot-disks before it in the playbook")
    args: dict[str, Any] = {"resource_group_name": obs.ref.resource_group, "vm_name": obs.ref.name}
    if params.force_deletion:
        args["force_deletion"] = True
    notes = [f"Azure also deletes disk {d['name']} (deleteOption Delete; snapshot planned)" for d in disks]
    notes += [f"Azure also deletes NIC {n['name']} (deleteOption Delete; rebuilt later)" for n in nics]
    notes += [f"Azure also deletes public IP {p['name']} (its address will change)" for p in pips]
    return PlannedStep("delete-vm", f"delete VM {obs.ref.name}", waves=[[Call(
        "compute", "virtual_machines.begin_delete", args, obs.vm_id, "delete", f"delete VM {obs.ref.name}")]],
        notes=notes)


def _os_disk_needed(ctx: PlanContext) -> bool:
    return "create-vm-from-os-disk" in ctx.step_names


@planner("rebuild-deleted-disks")
def rebuild_deleted_disks(ctx: PlanContext, params: NoParams) -> PlannedStep:
    """Recreate each disk Azure deleted with the VM from its snapshot: same name, SKU, zone, tags."""
    obs = ctx.obs
    os_id = str((obs.props.get("storageProfile", {}).get("osDisk", {}).get("managedDisk") or {}).get("id", ""))
    calls, notes = [], []
    for disk in doomed(obs)[0]:
        if disk["id"].lower() == os_id.lower() and not _os_disk_needed(ctx):
            notes.append(f"old OS disk {disk['name']} is not rebuilt (the new VM gets its own); its content "
                         f"stays in snapshot {ctx.snapshots[disk['id'].lower()].rsplit('/', 1)[-1]}")
            continue
        props = {k: copy.deepcopy(v) for k, v in disk.get("properties", {}).items() if k in DISK_PROPERTIES}
        props["creationData"] = {"createOption": "Copy", "sourceResourceId": ctx.snapshots[disk["id"].lower()]}
        props["diskSizeGB"] = disk.get("properties", {}).get("diskSizeGB")
        body: dict[str, Any] = {"location": disk["location"], "sku": {"name": disk.get("sku", {}).get("name")},
                                "properties": props}
        for key in ("zones", "tags"):
            if disk.get(key):
                body[key] = copy.deepcopy(disk[key])
        calls.append(Call("compute", "disks.begin_create_or_update",
                          {"resource_group_name": _rg(disk["id"]), "disk_name": disk["name"], "disk": body},
                          disk["id"], "create", f"rebuild disk {disk['name']} from its snapshot"))
    summary = f"rebuild {len(calls)} disk(s) from snapshots" if calls else "no change: no disk needs rebuilding"
    return PlannedStep("rebuild-deleted-disks", summary, waves=[calls] if calls else [], notes=notes)


@planner("rebuild-deleted-nics")
def rebuild_deleted_nics(ctx: PlanContext, params: NoParams) -> PlannedStep:
    """Recreate the NICs (and their public IPs) Azure deleted with the VM, with the same IP configuration."""
    _, nics, pips = doomed(ctx.obs)
    pip_calls = []
    for pip in pips:
        props = {k: v for k, v in pip.get("properties", {}).items()
                 if k in ("publicIPAllocationMethod", "idleTimeoutInMinutes", "dnsSettings", "publicIPAddressVersion")}
        body: dict[str, Any] = {"location": pip["location"], "sku": pip.get("sku"), "properties": props}
        for key in ("zones", "tags"):
            if pip.get(key):
                body[key] = pip[key]
        pip_calls.append(Call("network", "public_ip_addresses.begin_create_or_update", {
            "resource_group_name": _rg(pip["id"]), "public_ip_address_name": pip["name"], "parameters": body},
            pip["id"], "create", f"recreate public IP {pip['name']} (new address)"))
    nic_calls = []
    for nic in nics:
        configs = []
        for cfg in nic.get("properties", {}).get("ipConfigurations", []):
            cp = cfg.get("properties", {})
            keep = {k: copy.deepcopy(cp[k]) for k in ("subnet", "privateIPAllocationMethod", "primary",
                                                      "privateIPAddressVersion", "publicIPAddress",
                                                      "applicationSecurityGroups",
                                                      "loadBalancerBackendAddressPools") if k in cp}
            if cp.get("privateIPAllocationMethod") == "Static":
                keep["privateIPAddress"] = cp.get("privateIPAddress")
            if isinstance(keep.get("publicIPAddress"), dict):
                keep["publicIPAddress"] = {k: v for k, v in keep["publicIPAddress"].items()
                                           if k in ("id", "properties")}
            configs.append({"name": cfg["name"], "properties": keep})
        props = {k: copy.deepcopy(v) for k, v in nic.get("properties", {}).items()
                 if k in ("enableAcceleratedNetworking", "enableIPForwarding", "networkSecurityGroup", "dnsSettings")}
        props["ipConfigurations"] = configs
        body = {"location": nic["location"], "properties": props}
        if nic.get("tags"):
            body["tags"] = nic["tags"]
        nic_calls.append(Call("network", "network_interfaces.begin_create_or_update", {
            "resource_group_name": _rg(nic["id"]), "network_interface_name": nic["name"], "parameters": body},
            nic["id"], "create", f"rebuild NIC {nic['name']} ({', '.join(_addr(c) for c in configs)})"))
    waves = [w for w in (pip_calls, nic_calls) if w]
    summary = (f"rebuild {len(nic_calls)} NIC(s) and {len(pip_calls)} public IP(s)" if waves
               else "no change: no NIC is deleted with the VM")
    return PlannedStep("rebuild-deleted-nics", summary, waves=waves)


def _addr(cfg: dict[str, Any]) -> str:
    p = cfg["properties"]
    return f"{p.get('privateIPAllocationMethod', 'Dynamic')} {p.get('privateIPAddress', 'next free')}"


def _base_body(obs: Observation) -> dict[str, Any]:
    vm = obs.vm or {}
    body: dict[str, Any] = {k: copy.deepcopy(vm[k]) for k in PRESERVED_TOP if vm.get(k)}
    identity = vm.get("identity")
    if identity and identity.get("type") and identity["type"] != "None":
        body["identity"] = {"type": identity["type"]}
        if identity.get("userAssignedIdentities"):
            body["identity"]["userAssignedIdentities"] = {k: {} for k in identity["userAssignedIdentities"]}
    props = {k: copy.deepcopy(obs.props[k]) for k in PRESERVED_PROPERTIES if k in obs.props}
    sp = obs.props.get("storageProfile", {})
    props["storageProfile"] = {"dataDisks": [
        {k: d[k] for k in ("lun", "name", "caching", "writeAcceleratorEnabled", "deleteOption") if k in d}
        | {"createOption": "Attach", "managedDisk": {"id": d["managedDisk"]["id"]}}
        for d in sp.get("dataDisks", []) if (d.get("managedDisk") or {}).get("id")]}
    if sp.get("diskControllerType"):
        props["storageProfile"]["diskControllerType"] = sp["diskControllerType"]
    props["networkProfile"] = {"networkInterfaces": [
        {"id": n["id"], "properties": {k: v for k, v in (n.get("properties") or {}).items()
                                       if k in ("primary", "deleteOption")}}
        for n in obs.props.get("networkProfile", {}).get("networkInterfaces", [])]}
    body["properties"] = props
    return body


def _create_call(ctx: PlanContext, body: dict[str, Any], how: str) -> PlannedStep:
    obs = ctx.obs
    ctx.new_vm = body
    call = Call("compute", "virtual_machines.begin_create_or_update", {
        "resource_group_name": obs.ref.resource_group, "vm_name": obs.ref.name, "parameters": body},
        obs.vm_id, "create", f"create VM {obs.ref.name} {how}")
    return PlannedStep(f"create-vm-{'from-image' if 'image' in how else 'from-os-disk'}", call.summary,
                       waves=[[call]])


@planner("create-vm-from-image")
def create_vm_from_image(ctx: PlanContext, params: CreateFromImageParams) -> PlannedStep:
    """Create the VM again from the managed image captured from it, with a new admin secret."""
    obs = ctx.obs
    images = [i for i in obs.images if str(i.get("location", "")).lower() == obs.location.lower()]
    if not images:
        where = f" (found only in {', '.join(str(i.get('location')) for i in obs.images)})" if obs.images else ""
        raise StepRefused(f"{obs.ref}: no managed image captured from this VM in {obs.location}{where}; use "
                          "--scenario from-os-disk if the guest was never sysprepped")
    image = sorted(images, key=lambda i: str(i.get("name")))[0]
    if str(obs.props.get("securityProfile", {}).get("securityType", "")).lower() == "trustedlaunch":
        raise StepRefused(f"{obs.ref} is a Trusted Launch VM: managed images of it cannot exist; use from-os-disk")
    body = _base_body(obs)
    old_os = obs.props.get("storageProfile", {}).get("osDisk", {})
    os_disk: dict[str, Any] = {"name": f"{obs.ref.name[:60]}-os-rb{ctx.short}", "createOption": "FromImage",
                               "caching": old_os.get("caching", "ReadWrite"),
                               "deleteOption": old_os.get("deleteOption", "Detach"),
                               "managedDisk": {"storageAccountType": (old_os.get("managedDisk") or {}).get(
                                   "storageAccountType", "Premium_LRS")}}
    if old_os.get("writeAcceleratorEnabled"):
        os_disk["writeAcceleratorEnabled"] = True
    body["properties"]["storageProfile"].update(imageReference={"id": image["id"]}, osDisk=os_disk)
    old_profile = obs.props.get("osProfile") or {}
    profile: dict[str, Any] = {"computerName": old_profile.get("computerName") or obs.ref.name[:15],
                               "adminUsername": old_profile.get("adminUsername") or "azureuser"}
    linux = old_profile.get("linuxConfiguration")
    if linux is not None:
        profile["linuxConfiguration"] = copy.deepcopy(linux)
        keys = (linux.get("ssh") or {}).get("publicKeys")
        if not (linux.get("disablePasswordAuthentication") and keys):
            profile["adminPassword"] = {"$secret": params.admin_secret}
    else:
        profile["adminPassword"] = {"$secret": params.admin_secret}
        if old_profile.get("windowsConfiguration"):
            profile["windowsConfiguration"] = copy.deepcopy(old_profile["windowsConfiguration"])
    body["properties"]["osProfile"] = profile
    step = _create_call(ctx, body, f"from image {image['name']}")
    if "adminPassword" in profile:
        step.notes.append(f"admin password for {profile['adminUsername']} from {params.admin_secret} "
                          "(never shown or stored)")
    return step


@planner("create-vm-from-os-disk")
def create_vm_from_os_disk(ctx: PlanContext, params: NoParams) -> PlannedStep:
    """Create the VM again by attaching its own OS disk (createOption Attach, no osProfile)."""
    obs = ctx.obs
    old_os = obs.props.get("storageProfile", {}).get("osDisk", {})
    disk_id = (old_os.get("managedDisk") or {}).get("id")
    if not disk_id:
        raise StepRefused(f"{obs.ref}: the OS disk is not a managed disk and cannot be attached")
    body = _base_body(obs)
    os_disk = {k: old_os[k] for k in ("osType", "name", "caching", "deleteOption", "writeAcceleratorEnabled")
               if k in old_os}
    os_disk.update(createOption="Attach", managedDisk={"id": disk_id})
    if not os_disk.get("osType"):
        disk = obs.disks.get(disk_id.lower(), {})
        os_disk["osType"] = disk.get("properties", {}).get("osType") or "Windows"
    body["properties"]["storageProfile"]["osDisk"] = os_disk
    if not body.get("plan"):
        purchase = obs.disks.get(disk_id.lower(), {}).get("properties", {}).get("purchasePlan")
        if purchase:
            body["plan"] = {k: purchase[k] for k in ("name", "publisher", "product") if k in purchase}
    return _create_call(ctx, body, f"attaching OS disk {os_disk.get('name')}")


@planner("restore-extensions")
def restore_extensions(ctx: PlanContext, params: NoParams) -> PlannedStep:
    """Re-create each extension with its public settings (Azure never returns protected settings)."""
    obs = ctx.obs
    calls, notes = [], []
    for ext in obs.extensions:
        props = {k: copy.deepcopy(v) for k, v in (ext.get("properties") or {}).items()
                 if k in ("publisher", "type", "typeHandlerVersion", "autoUpgradeMinorVersion",
                          "enableAutomaticUpgrade", "settings", "suppressFailures", "forceUpdateTag")}
        body: dict[str, Any] = {"location": ext.get("location") or obs.location, "properties": props}
        if ext.get("tags"):
            body["tags"] = ext["tags"]
        calls.append(Call("compute", "virtual_machine_extensions.begin_create_or_update", {
            "resource_group_name": obs.ref.resource_group, "vm_name": obs.ref.name,
            "vm_extension_name": ext["name"], "extension_parameters": body},
            f"{obs.vm_id}/extensions/{ext['name']}", "create", f"restore extension {ext['name']}"))
        notes.append(f"{ext['name']}: protected settings, if it had any, cannot be read back from Azure")
    summary = f"restore {len(calls)} extension(s)" if calls else "no change: the VM had no extensions"
    return PlannedStep("restore-extensions", summary, waves=[calls] if calls else [], notes=notes)
