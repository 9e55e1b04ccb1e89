"""Steps that delete the VM and build it again: what Azure destroys with the VM is rebuilt from the
snapshots and the recorded configuration, then the VM is created under the same name."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import Field

from runbooks.addresses import PRIVATE_IP_TAKEN, ipconfig_label, subnet_holders, subnet_unreadable
from runbooks.azure import Call, resource_parts
from runbooks.changes import Action, Change, Expect, NoChange, Outcome, StepContext, restored_disk_id
from runbooks.errors import StepRefused
from runbooks.observe import Observation, dotted
from runbooks.steps.power import vm_call
from runbooks.steps.registry import NoParams, StepParams, step

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
    return resource_parts(resource_id).resource_group


def _made(resource_id: str) -> tuple[Expect, ...]:
    """The goal of a create: the resource exists and its provisioning succeeded."""
    return (Expect(resource_id, "exists", True), Expect(resource_id, "properties.provisioningState", "Succeeded"))


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


class DeleteVmParams(StepParams):
    force_deletion: bool = Field(False, description="ask Azure for a force delete (skips graceful shutdown)")


@step("delete-vm", "delete the VM; disks, NICs and public IPs whose deleteOption is Delete go with it",
      params=DeleteVmParams, destructive=True, reads=("disks", "nics", "locks"),
      undo_note="a deleted VM cannot come back as it was (its vmId, system-assigned identity principal and "
      "dynamic addresses are gone); the run's snapshots and saved definition are the way back")
def delete_vm(state: Observation, params: DeleteVmParams, ctx: StepContext) -> Outcome:
    """Delete the VM. Refused under a management lock. What Azure deletes with it is named in ``deletes``,
    so the planner refuses the plan unless every such disk has a snapshot planned earlier."""
    if state.vm is None:
        return NoChange(f"VM {state.ref.name} is already deleted", goal=(Expect(state.vm_id, "exists", False),))
    if state.locks:
        names = ", ".join(f"{lk.get('name')} ({lk.get('properties', {}).get('level')})" for lk in state.locks)
        raise StepRefused(f"{state.ref} is under management lock(s) {names}: remove them (and re-add afterwards) "
                          "before remediating")
    disks, nics, pips = doomed(state)
    args: dict[str, Any] = {"resource_group_name": state.ref.resource_group, "vm_name": state.ref.name}
    if params.force_deletion:
        args["force_deletion"] = True
    notes = [f"Azure also deletes disk {d['name']} (deleteOption Delete; snapshot planned)" for d in disks]
    notes += [f"Azure also deletes NIC {n['name']} (deleteOption Delete; rebuilt later)" for n in nics]
    notes += [f"Azure also deletes public IP {p['name']} (its address will change)" for p in pips]
    call = Call("compute", "virtual_machines.begin_delete", args, state.vm_id, "delete",
                f"delete VM {state.ref.name}")
    return Change(f"delete VM {state.ref.name}", waves=((Action(call, (Expect(state.vm_id, "exists", False),)),),),
                  notes=tuple(notes), deletes=(state.vm_id, *(r["id"] for r in (*disks, *nics, *pips))))


class RebuildDisksParams(StepParams):
    os_disk: bool = Field(True, description="rebuild the OS disk too (false when the new VM gets a new OS disk, "
                          "from an image; the old one's content stays in its snapshot)")


def _absent(state: Observation, resource_id: str) -> bool:
    return not state.view(resource_id).get("exists")


_KEPT = "what it rebuilt stays (removing it would lose whatever was written since)"


def _undo_rebuilt_vm(before: Observation, now: Observation, step: Any, run: StepContext) -> Outcome | str:
    """Put the rebuilt VM's disks back to their content before the run: each disk it has now that the run
    snapshotted is replaced by a new disk made from that snapshot, the VM deallocated meanwhile (Azure swaps an
    OS disk only then) and started again if it was running. The disks taken off are detached and kept, with
    whatever was written to them since; an OS disk the image made new has no earlier content and stays."""
    if now.vm is None:
        return "the VM no longer exists"
    view = now.view(now.vm_id)
    sp = now.props.get("storageProfile", {})
    os_entry, data = sp.get("osDisk", {}), sp.get("dataDisks", [])
    restores: list[tuple[dict[str, Any], dict[str, Any], str]] = []  # (entry, disk now, snapshot id)
    for entry in [os_entry, *data]:
        disk_id = str((entry.get("managedDisk") or {}).get("id", "")).lower()
        snapshot = run.backups.get(disk_id)
        if snapshot and disk_id in now.disks:
            restores.append((entry, now.disks[disk_id], snapshot))
    if not restores:
        return NoChange("no disk of the VM has a snapshot from the run: nothing to restore")
    waves: list[tuple[Action, ...]] = []
    vm_id, name = now.vm_id, now.ref.name
    was_running = view.get("powerState") == "running"
    if view.get("powerState") != "deallocated":
        waves.append((Action(vm_call(now, "begin_deallocate", "deallocate"),
                             (Expect(vm_id, "powerState", "deallocated"),)),))
    made, notes, creates = [], [], {}
    new_data: list[dict[str, Any]] = []
    swap_os: dict[str, Any] | None = None
    for entry, disk, snapshot in restores:
        new_id = restored_disk_id(disk["id"], snapshot)
        new_name = new_id.rsplit("/", 1)[-1]
        body = _disk_from_snapshot(disk, snapshot)
        made.append(Action(Call("compute", "disks.begin_create_or_update", {
            "resource_group_name": _rg(disk["id"]), "disk_name": new_name, "disk": body}, new_id, "create",
            f"make disk {new_name} from snapshot {snapshot.rsplit('/', 1)[-1]}"), _made(new_id)))
        creates[new_id] = _predicted({"id": new_id, "name": new_name}, body)
        notes.append(f"disk {disk['name']} is detached and kept as it is now; {new_name} takes its place")
        if entry is os_entry:
            swap_os = {"name": new_name, "managedDisk": {"id": new_id}}
        else:
            same: dict[str, Any] = {k: entry[k] for k in ("lun", "caching", "writeAcceleratorEnabled", "deleteOption")
                                    if k in entry}
            new_data.append({**same, "name": new_name, "createOption": "Attach", "managedDisk": {"id": new_id}})
    waves.append(tuple(made))
    restored = {str(d.get("lun")) for d in new_data}
    kept = [{k: d[k] for k in ("lun", "name", "caching", "writeAcceleratorEnabled", "deleteOption", "createOption",
                               "managedDisk") if k in d} for d in data if str(d.get("lun")) not in restored]
    off: dict[str, Any] = {"dataDisks": kept}
    goal = [Expect(disk["id"], "managedBy", None) for entry, disk, _ in restores if entry is not os_entry]
    if swap_os is not None:
        off["osDisk"] = swap_os
        goal.append(Expect(vm_id, "properties.storageProfile.osDisk.managedDisk.id", swap_os["managedDisk"]["id"]))
    waves.append((Action(vm_call(now, "begin_update", "detach the disks to replace from" + (
        ", and swap the OS disk of," if swap_os else ""), parameters={"properties": {"storageProfile": off}}),
        tuple(goal)),))
    if new_data:
        attach = {"properties": {"storageProfile": {"dataDisks": kept + new_data}}}
        waves.append((Action(vm_call(now, "begin_update", "attach the restored data disks to", parameters=attach),
                             tuple(Expect(d["managedDisk"]["id"], "managedBy", vm_id) for d in new_data)),))
    if was_running:
        waves.append((Action(vm_call(now, "begin_start", "start"), (Expect(vm_id, "powerState", "running"),)),))
    notes.append(f"{name} is down while its disks are replaced" + ("" if was_running else " (it stays deallocated)"))
    if os_entry and not any(e is os_entry for e, _, _ in restores):
        notes.append(f"the OS disk {os_entry.get('name')} has no snapshot from the run (it is new): it stays")
    final = (*(Expect(d["managedDisk"]["id"], "managedBy", vm_id) for d in new_data),
             *(goal[-1:] if swap_os is not None else ()),
             Expect(vm_id, "powerState", "running" if was_running else "deallocated"))
    return Change(f"restore {len(restores)} disk(s) of VM {name} from the run's snapshots",
                  waves=tuple(waves), notes=tuple(notes), creates=creates, ends_with=final)


def _disk_from_snapshot(disk: dict[str, Any], snapshot: str) -> dict[str, Any]:
    """A PUT body for a disk like ``disk`` (SKU, zone, tags, properties), its content copied from ``snapshot``."""
    props = {k: copy.deepcopy(v) for k, v in disk.get("properties", {}).items() if k in DISK_PROPERTIES}
    props["creationData"] = {"createOption": "Copy", "sourceResourceId": snapshot}
    props["diskSizeGB"] = disk.get("properties", {}).get("diskSizeGB")
    body: dict[str, Any] = {"location": disk["location"], "sku": {"name": disk.get("sku", {}).get("name")},
                            "properties": props}
    for key in ("zones", "tags"):
        if disk.get(key):
            body[key] = copy.deepcopy(disk[key])
    return body


@step("rebuild-deleted-disks", "recreate, from their snapshots, the disks Azure deleted with the VM",
      params=RebuildDisksParams, reads=("disks",), undo_note=_KEPT)
def rebuild_deleted_disks(state: Observation, params: RebuildDisksParams, ctx: StepContext) -> Outcome:
    """Recreate each disk the VM had that is now gone, from its snapshot: same name, SKU, zone, tags."""
    obs = ctx.observed
    os_id = str((obs.props.get("storageProfile", {}).get("osDisk", {}).get("managedDisk") or {}).get("id", ""))
    actions, notes, creates = [], [], {}
    for disk in doomed(obs)[0]:
        if not _absent(state, disk["id"]):
            continue
        snapshot = ctx.backups.get(disk["id"].lower())
        if disk["id"].lower() == os_id.lower() and not params.os_disk:
            notes.append(f"old OS disk {disk['name']} is not rebuilt (the new VM gets its own); its content "
                         f"stays in snapshot {str(snapshot).rsplit('/', 1)[-1]}")
            continue
        if snapshot is None:
            raise StepRefused(f"{obs.ref}: disk {disk['name']} is gone and no snapshot of it is planned")
        body = _disk_from_snapshot(disk, snapshot)
        actions.append(Action(Call("compute", "disks.begin_create_or_update",
                                   {"resource_group_name": _rg(disk["id"]), "disk_name": disk["name"], "disk": body},
                                   disk["id"], "create", f"rebuild disk {disk['name']} from its snapshot"),
                              _made(disk["id"])))
        creates[disk["id"]] = _predicted(disk, body)
    if not actions:
        return NoChange("no disk needs rebuilding: none the VM had is gone", notes=tuple(notes))
    return Change(f"rebuild {len(actions)} disk(s) from snapshots", waves=(tuple(actions),), notes=tuple(notes),
                  creates=creates)


def _predicted(old: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The JSON a created resource will have: the body, its id and name, provisioning succeeded."""
    return {"id": old["id"], "name": old["name"], **copy.deepcopy(body),
            "properties": {**copy.deepcopy(body.get("properties", {})), "provisioningState": "Succeeded"}}


@step("rebuild-deleted-nics", "recreate the NICs and public IPs Azure deleted with the VM, same IP configuration "
      "and, where still free, the same private addresses", reads=("nics", "subnets"), undo_note=_KEPT)
def rebuild_deleted_nics(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Recreate the NICs (and their public IPs) the VM had that are now gone, with the same IP configuration; each
    private address is kept (as Static: Azure keeps a requested address only so) when no other NIC holds it."""
    _, nics, pips = doomed(ctx.observed)
    pip_actions, creates = [], {}
    for pip in pips:
        if not _absent(state, pip["id"]):
            continue
        props = {k: v for k, v in pip.get("properties", {}).items()
                 if k in ("publicIPAllocationMethod", "idleTimeoutInMinutes", "dnsSettings", "publicIPAddressVersion")}
        body: dict[str, Any] = {"location": pip["location"], "sku": pip.get("sku"), "properties": props}
        for key in ("zones", "tags"):
            if pip.get(key):
                body[key] = pip[key]
        pip_actions.append(Action(Call("network", "public_ip_addresses.begin_create_or_update", {
            "resource_group_name": _rg(pip["id"]), "public_ip_address_name": pip["name"], "parameters": body},
            pip["id"], "create", f"recreate public IP {pip['name']} (new address)"), _made(pip["id"])))
        creates[pip["id"]] = _predicted(pip, body)
    nic_actions, notes = [], []
    for nic in nics:
        if not _absent(state, nic["id"]):
            continue
        body = nic_body(nic)
        notes += _keep_addresses(ctx.observed, nic, body)
        configs = body["properties"]["ipConfigurations"]
        args = {"resource_group_name": _rg(nic["id"]), "network_interface_name": nic["name"], "parameters": body}
        call = Call("network", "network_interfaces.begin_create_or_update", args, nic["id"], "create",
                    f"rebuild NIC {nic['name']} ({', '.join(_addr(c) for c in configs)})")
        nic_actions.append(Action(call, _made(nic["id"]), **_next_free_instead(nic, args)))
        creates[nic["id"]] = _predicted(nic, body)
    waves = tuple(tuple(w) for w in (pip_actions, nic_actions) if w)
    if not waves:
        return NoChange("no NIC or public IP needs rebuilding: none the VM had is gone")
    return Change(f"rebuild {len(nic_actions)} NIC(s) and {len(pip_actions)} public IP(s)", waves=waves,
                  creates=creates, notes=tuple(notes))


def _keep_addresses(obs: Observation, nic: dict[str, Any], body: dict[str, Any]) -> list[str]:
    """Pin, in ``body`` (the NIC's PUT), each ipconfig's old private IPv4 address as Static unless another NIC holds
    it (the subnets were read once each, at plan time; unknown: asked for all the same). One note per ipconfig says
    what it keeps and what apply does if another NIC takes the address first: a formerly Dynamic one gets the next
    free address (the action's fallback); a formerly Static one is never moved: the rebuild is refused and the run
    stops, naming the holder, as before."""
    notes = []
    old_configs = nic.get("properties", {}).get("ipConfigurations", [])
    for cfg, new in zip(old_configs, body["properties"]["ipConfigurations"], strict=True):
        cp, np = cfg.get("properties", {}), new["properties"]
        address, was = cp.get("privateIPAddress"), cp.get("privateIPAllocationMethod") or "Dynamic"
        label = f"NIC {nic['name']} ({cfg.get('name')})"
        if not address:
            continue
        if str(cp.get("privateIPAddressVersion", "IPv4")).lower() == "ipv6":
            if was != "Static":
                notes.append(f"{label}: its IPv6 address {address} is not kept (only IPv4 addresses are pinned); "
                             "it gets the next free one")
            continue
        subnet_id = str((cp.get("subnet") or {}).get("id", ""))
        holders = subnet_holders(obs, subnet_id)
        holder = (holders or {}).get(address, "")
        taken = bool(holder) and not holder.lower().startswith(nic["id"].lower() + "/")
        if was == "Static":  # pinned as before, whatever happens: never moved silently
            if taken:  # Azure would refuse the rebuild after the VM is deleted: stop before anything changes
                raise StepRefused(f"{label} had the Static address {address}, and {ipconfig_label(holder)} holds it "
                                  "now: the rebuilt NIC could not have it. Free the address (or give this NIC "
                                  "another one) and plan again")
            if holders is None:
                notes.append(f"{label}: keeps {address} (Static, as before){_unknown(obs, subnet_id)}; if another "
                             "NIC holds it, Azure refuses the rebuild and the run stops there until it is freed")
            else:
                notes.append(f"{label}: keeps {address} (Static, as before; if another NIC takes it first: Azure "
                             "refuses the rebuild and the run stops there)")
            continue
        if taken:
            np["privateIPAllocationMethod"] = "Dynamic"
            np.pop("privateIPAddress", None)
            notes.append(f"{label}: {address} is held by {ipconfig_label(holder)} now, so the rebuilt NIC gets the "
                         "next free address (Dynamic)")
            continue
        np.update(privateIPAllocationMethod="Static", privateIPAddress=address)
        if holders is None:
            notes.append(f"{label}: asks for {address} again (Static; it was Dynamic){_unknown(obs, subnet_id)}; if "
                         "another NIC holds it, the rebuild takes the next free one (Dynamic)")
        else:
            notes.append(f"{label}: keeps {address} (Static; it was Dynamic; if another NIC takes it first: the next "
                         "free one)")
    return notes


def _unknown(obs: Observation, subnet_id: str) -> str:
    """Why who holds which address in the subnet is not known, for a plan note."""
    why = subnet_unreadable(obs, subnet_id)
    return "; who holds which address in its subnet is not known " + (
        f"(reading the subnet was refused: {why})" if why else "(the subnet's read showed no addresses)"
        if subnet_id.lower() in obs.resources else "(the subnet was not read)")


def _next_free_instead(nic: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """The fallback of a NIC rebuild that pins formerly Dynamic addresses: the same PUT with each of them left to
    Azure again (Dynamic, the next free one), for when another NIC took one between the plan and now. Apply un-pins
    only the ipconfig ARM's refusal names (``Action.instead``); an address that was Static before stays pinned."""
    body = copy.deepcopy(args["parameters"])
    was = {str(c.get("name")): c.get("properties", {}).get("privateIPAllocationMethod") or "Dynamic"
           for c in nic.get("properties", {}).get("ipConfigurations", [])}
    asked = [c["properties"] for c in body["properties"]["ipConfigurations"]
             if c["properties"].get("privateIPAddress") and was.get(str(c.get("name"))) == "Dynamic" and
             str(c["properties"].get("privateIPAddressVersion", "IPv4")).lower() != "ipv6"]
    if not asked:
        return {}
    for props in asked:
        props["privateIPAllocationMethod"] = "Dynamic"
        props.pop("privateIPAddress", None)
    call = Call("network", "network_interfaces.begin_create_or_update", {**args, "parameters": body}, nic["id"],
                "create", f"rebuild NIC {nic['name']} with the next free address (Dynamic) where another NIC took "
                "its old one since the plan")
    return {"fallback": call, "fallback_on": PRIVATE_IP_TAKEN}


def nic_body(nic: dict[str, Any], *, keep_address: bool = False) -> dict[str, Any]:
    """A PUT body that makes this NIC again as it was observed (``keep_address``: pin each ipconfig's current
    private address, as an in-place update must not move it)."""
    configs = []
    for cfg in nic.get("properties", {}).get("ipConfigurations", []):
        cp = cfg.get("properties", {})
        keep = {k: copy.deepcopy(cp[k]) for k in ("subnet", "privateIPAllocationMethod", "primary",
                                                  "privateIPAddressVersion", "publicIPAddress",
                                                  "applicationSecurityGroups",
                                                  "loadBalancerBackendAddressPools", "loadBalancerInboundNatRules",
                                                  "applicationGatewayBackendAddressPools") if k in cp}
        if cp.get("privateIPAllocationMethod") == "Static" or (keep_address and cp.get("privateIPAddress")):
            keep["privateIPAddress"] = cp.get("privateIPAddress")
        if isinstance(keep.get("publicIPAddress"), dict):
            keep["publicIPAddress"] = {k: v for k, v in keep["publicIPAddress"].items() if k in ("id", "properties")}
        configs.append({"name": cfg["name"], "properties": keep})
    props = {k: copy.deepcopy(v) for k, v in nic.get("properties", {}).items()
             if k in ("enableAcceleratedNetworking", "enableIPForwarding", "networkSecurityGroup", "dnsSettings")}
    props["ipConfigurations"] = configs
    body: dict[str, Any] = {"location": nic["location"], "properties": props}
    if nic.get("tags"):
        body["tags"] = copy.deepcopy(nic["tags"])
    return body


def _undo_keep_public_ips(before: Observation, now: Observation, step: Any, run: StepContext) -> Outcome | str:
    """Put each NIC's public IP reference back to deleteOption Delete, where it still says Detach."""
    actions, sets = [], []
    for e in step.goal:
        nic = now.nics.get(e.subject.lower())
        if nic is None or dotted(nic, e.path) != "Detach":
            continue
        body = nic_body(nic, keep_address=True)
        _set_path(body, e.path, "Delete")
        sets.append((nic["id"], e.path, "Delete"))
        actions.append(Action(Call("network", "network_interfaces.begin_create_or_update", {
            "resource_group_name": _rg(nic["id"]), "network_interface_name": nic["name"], "parameters": body},
            nic["id"], "update", f"set the public IP of NIC {nic['name']} back to be deleted with the VM"),
            (Expect(nic["id"], e.path, "Delete"),)))
    if not actions:
        return NoChange("every public IP reference is as it was before the run")
    return Change(f"set {len(actions)} public IP reference(s) back to deleteOption Delete", waves=(tuple(actions),),
                  sets=tuple(sets))


@step("keep-public-ips", "set each public IP Azure would delete with the VM to be kept (deleteOption Detach)",
      reads=("nics",), undo=_undo_keep_public_ips)
def keep_public_ips(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Before a delete that would destroy a public IP (its NIC reference says deleteOption Delete), update the
    NIC so the reference says Detach: the resource, and a static address, survive. A generalized VM refuses
    changes, but its NICs are resources of their own. The rebuilt NIC gets the original setting back."""
    actions, sets, notes = [], [], []
    for nic in state.nics.values():
        changed = False
        for i, cfg in enumerate(nic.get("properties", {}).get("ipConfigurations", [])):
            ref = cfg.get("properties", {}).get("publicIPAddress") or {}
            if (ref.get("properties") or {}).get("deleteOption") != "Delete":
                continue
            path = f"properties.ipConfigurations.{i}.properties.publicIPAddress.properties.deleteOption"
            sets.append((nic["id"], path, "Detach"))
            changed = True
            pip = state.public_ips.get(str(ref.get("id", "")).lower(), {})
            if str(pip.get("properties", {}).get("publicIPAllocationMethod", "")).lower() == "dynamic":
                notes.append(f"public IP {pip.get('name')} is Dynamic: the resource is kept but Azure releases its "
                             "address when the VM is deleted; it gets a new one")
        if changed:
            body = nic_body(nic, keep_address=True)
            for nic_id, path, value in sets:
                if nic_id == nic["id"]:
                    _set_path(body, path, value)
            goal = tuple(Expect(nic_id, path, value) for nic_id, path, value in sets if nic_id == nic["id"])
            actions.append(Action(Call("network", "network_interfaces.begin_create_or_update", {
                "resource_group_name": _rg(nic["id"]), "network_interface_name": nic["name"], "parameters": body},
                nic["id"], "update", f"keep the public IP(s) of NIC {nic['name']} when the VM is deleted"), goal))
    if not actions:
        return NoChange("no public IP would be deleted with the VM")
    return Change(f"keep {len(sets)} public IP(s) that Azure would delete with the VM", waves=(tuple(actions),),
                  sets=tuple(sets), notes=tuple(notes))


def _set_path(body: dict[str, Any], path: str, value: Any) -> None:
    """Set ``properties.ipConfigurations.N.…`` of a NIC body (paths as the NIC's JSON has them)."""
    *head, leaf = path.split(".")
    parent = dotted(body, ".".join(head))
    if isinstance(parent, dict):
        parent[leaf] = value


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


def _create(state: Observation, body: dict[str, Any], how: str, notes: tuple[str, ...] = ()) -> Change:
    if state.vm is not None:
        raise StepRefused(f"{state.ref}: the VM still exists; a step that deletes it must come before the create")
    call = Call("compute", "virtual_machines.begin_create_or_update", {
        "resource_group_name": state.ref.resource_group, "vm_name": state.ref.name, "parameters": body},
        state.vm_id, "create", f"create VM {state.ref.name} {how}")
    goal = (*_made(state.vm_id), Expect(state.vm_id, "osState", None))
    predicted = {"id": state.vm_id, "name": state.ref.name, **copy.deepcopy(body)}
    predicted["properties"] = {**predicted.get("properties", {}), "provisioningState": "Succeeded"}
    return Change(call.summary, waves=((Action(call, goal),),), notes=notes, creates={state.vm_id: predicted})


def _check_image_fits(obs: Observation, image: dict[str, Any]) -> None:
    """Preflight: the image must be of the VM's OS type and Hyper-V generation, or the VM comes back as another
    OS (or not at all) — refused before anything is changed."""
    old_os = obs.props.get("storageProfile", {}).get("osDisk", {})
    disk = obs.disks.get(str((old_os.get("managedDisk") or {}).get("id", "")).lower(), {})
    img = image.get("properties") or {}
    vm_os = old_os.get("osType") or disk.get("properties", {}).get("osType")
    img_os = (img.get("storageProfile") or {}).get("osDisk", {}).get("osType")
    if vm_os and img_os and str(vm_os).lower() != str(img_os).lower():
        raise StepRefused(f"{obs.ref}: image {image.get('name')} holds a {img_os} OS but the VM runs {vm_os}; "
                          "refusing to rebuild it as another OS")
    vm_gen = disk.get("properties", {}).get("hyperVGeneration")
    img_gen = img.get("hyperVGeneration")
    if vm_gen and img_gen and str(vm_gen).upper() != str(img_gen).upper():
        raise StepRefused(f"{obs.ref}: image {image.get('name')} is Hyper-V generation {img_gen} but the VM's OS "
                          f"disk is {vm_gen}; refusing a VM that would not boot as it did")


class CreateFromImageParams(StepParams):
    admin_secret: str = Field(
        "env:RUNBOOKS_ADMIN_PASSWORD",
        description="where the admin secret comes from: 'env:NAME' or a Key Vault secret URL; never the value",
    )


@step("create-vm-from-image", "create the VM again from its captured managed image", params=CreateFromImageParams,
      reads=("images", "disks"), undo=_undo_rebuilt_vm)
def create_vm_from_image(state: Observation, params: CreateFromImageParams, ctx: StepContext) -> Outcome:
    """Create the VM again from the managed image captured from it, with a new admin secret."""
    obs = ctx.observed
    images = [i for i in obs.images if str(i.get("location", "")).lower() == obs.location.lower()]
    if not images:
        where = f" (found only in {', '.join(str(i.get('location')) for i in obs.images)})" if obs.images else ""
        raise StepRefused(f"{obs.ref}: no managed image captured from this VM in {obs.location}{where}; use "
                          "--scenario from-os-disk if the guest was never sysprepped")
    image = sorted(images, key=lambda i: str(i.get("name")))[0]
    if str(obs.props.get("securityProfile", {}).get("securityType", "")).lower() == "trustedlaunch":
        raise StepRefused(f"{obs.ref} is a Trusted Launch VM: managed images of it cannot exist; use from-os-disk")
    _check_image_fits(obs, image)
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
    notes = (f"admin password for {profile['adminUsername']} from {params.admin_secret} (never shown or stored)",) \
        if "adminPassword" in profile else ()
    return _create(state, body, f"from image {image['name']}", notes)


@step("create-vm-from-os-disk", "create the VM again by attaching its own (specialized) OS disk", reads=("disks",),
      undo=_undo_rebuilt_vm)
def create_vm_from_os_disk(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Create the VM again by attaching its own OS disk (createOption Attach, no osProfile)."""
    obs = ctx.observed
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
    return _create(state, body, f"attaching OS disk {os_disk.get('name')}")


@step("restore-extensions", "re-create the VM extensions with their public settings", reads=("extensions",),
      undo_note=_KEPT)
def restore_extensions(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Re-create each extension the VM had that it no longer has, with its public settings (Azure never
    returns protected settings)."""
    obs = ctx.observed
    actions, notes, creates = [], [], {}
    for ext in obs.extensions:
        ext_id = f"{state.vm_id}/extensions/{ext['name']}"
        if not _absent(state, ext_id):
            continue
        props = {k: copy.deepcopy(v) for k, v in (ext.get("properties") or {}).items()
                 if k in ("publisher", "type", "typeHandlerVersion", "autoUpgradeMinorVersion",
                          "enableAutomaticUpgrade", "settings", "suppressFailures", "forceUpdateTag")}
        body: dict[str, Any] = {"location": ext.get("location") or obs.location, "properties": props}
        if ext.get("tags"):
            body["tags"] = ext["tags"]
        actions.append(Action(Call("compute", "virtual_machine_extensions.begin_create_or_update", {
            "resource_group_name": state.ref.resource_group, "vm_name": state.ref.name,
            "vm_extension_name": ext["name"], "extension_parameters": body},
            ext_id, "create", f"restore extension {ext['name']}"), _made(ext_id)))
        creates[ext_id] = _predicted({"id": ext_id, "name": ext["name"]}, body)
        notes.append(f"{ext['name']}: protected settings, if it had any, cannot be read back from Azure")
    if not actions:
        return NoChange("no extension to restore: the VM had none, or has them all")
    return Change(f"restore {len(actions)} extension(s)", waves=(tuple(actions),), notes=tuple(notes),
                  creates=creates)
