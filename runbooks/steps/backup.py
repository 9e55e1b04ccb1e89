"""Steps that keep what a later step destroys: the VM's definition (in the run's plan) and a snapshot of
every disk, complete before anything is deleted."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field

from runbooks.azure import Call, resource_parts
from runbooks.changes import Action, Change, Expect, NoChange, Outcome, StepContext
from runbooks.errors import StepRefused
from runbooks.observe import Observation
from runbooks.steps.registry import NoParams, StepParams, step

SNAPSHOT_NAME_MAX = 80  # Azure's limit for a snapshot name


@step("export-vm-definition", "keep the full VM model (with userData and extensions) in the run's plan",
      reads=("extensions",))
def export_vm_definition(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """The plan, written to the run store before the first write, holds the whole observation: this step
    names what it keeps so the operator sees it. It calls nothing."""
    if state.vm is None:
        return NoChange("the VM does not exist: its definition is whatever the run's plan already holds")
    user_data = " with userData" if "userData" in state.props else ""
    return NoChange(f"the VM model{user_data} and {len(state.extensions)} extension(s): kept in the run's "
                    "plan, which is written before the first change")


@step("record-network", "keep each NIC's and public IP's configuration (and who holds which address in their "
      "subnets) in the run's plan", reads=("nics", "subnets"))
def record_network(state: Observation, params: NoParams, ctx: StepContext) -> Outcome:
    """Like export-vm-definition, for the network: the NICs and public IPs are in the plan's observation, with the
    subnets they are in (each read once, its ipconfigs' addresses expanded) for a NIC rebuild to keep its addresses."""
    nics = ", ".join(f"{n['name']} ({_ips(n)})" for n in state.nics.values()) or "none"
    return NoChange(f"NIC configuration kept in the run's plan: {nics}; {len(state.public_ips)} public IP(s)")


def _ips(nic: dict[str, Any]) -> str:
    """Each ipconfig's private address and how Azure allocated it: ``ipconfig1 10.0.0.4 Dynamic``."""
    return ", ".join(f"{c.get('name')} {c.get('properties', {}).get('privateIPAddress')} "
                     f"{c.get('properties', {}).get('privateIPAllocationMethod') or 'Dynamic'}"
                     for c in nic.get("properties", {}).get("ipConfigurations", []))


def snapshot_name(disk_id: str, disk_name: str, short: str) -> str:
    """Deterministic, unique per source disk and run, and within Azure's 80 characters: the disk name (cut),
    a hash of the disk's full id (two disks whose names share a prefix still get two snapshots) and the run."""
    digest = hashlib.sha256(disk_id.lower().encode()).hexdigest()[:8]
    suffix = f"-{digest}-rb{short}"
    return f"{disk_name[:SNAPSHOT_NAME_MAX - len(suffix)]}{suffix}"


class SnapshotDisksParams(StepParams):
    incremental: bool = Field(False, description="take incremental snapshots (cheaper; same content)")


def _keep_snapshots(before: Observation, now: Observation, step: Any, run: StepContext) -> Outcome | str:
    return NoChange("the snapshots are kept: they are the way back (delete them once you are satisfied)")


@step("snapshot-disks", "snapshot the OS and data disks and wait until the copies are complete",
      params=SnapshotDisksParams, reads=("disks",), undo=_keep_snapshots)
def snapshot_disks(state: Observation, params: SnapshotDisksParams, ctx: StepContext) -> Outcome:
    """Snapshot the OS disk and every data disk (in parallel). Refused for an ephemeral OS disk (its content
    cannot be kept) and for unmanaged disks."""
    if state.vm is None:
        raise StepRefused(f"{state.ref}: the VM does not exist; there are no disks to snapshot")
    actions, backs_up, creates = [], {}, {}
    for entry in state.disk_entries():
        disk_id = (entry.get("managedDisk") or {}).get("id")
        if entry.get("diffDiskSettings"):
            raise StepRefused(f"{state.ref}: the OS disk is ephemeral; its content cannot be preserved by a "
                              "snapshot and is lost when the VM is deleted")
        if not disk_id:
            raise StepRefused(f"{state.ref}: disk '{entry.get('name')}' is not a managed disk; unmanaged disks "
                              "are not supported")
        disk = state.disks.get(disk_id.lower())
        if disk is None:
            raise StepRefused(f"{state.ref}: disk {disk_id} could not be read; refusing to plan around it")
        p = resource_parts(disk["id"])
        snap = snapshot_name(disk["id"], p.name, ctx.short)
        snap_id = f"{disk['id'].rsplit('/providers/', 1)[0]}/providers/Microsoft.Compute/snapshots/{snap}"
        body = {"location": disk["location"], "sku": {"name": "Standard_LRS"},
                "tags": {"runbooks-run": ctx.run_id, "runbooks-source": disk["id"]},
                "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk["id"]},
                               "incremental": params.incremental}}
        goal = (Expect(snap_id, "properties.provisioningState", "Succeeded"),
                Expect(snap_id, "properties.creationData.sourceResourceId", disk["id"]))
        actions.append(Action(Call("compute", "snapshots.begin_create_or_update", {
            "resource_group_name": p.resource_group, "snapshot_name": snap, "snapshot": body},
            snap_id, "create", f"snapshot {p.name} as {snap}"), goal))
        backs_up[disk_id.lower()] = snap_id
        creates[snap_id] = {"id": snap_id, "name": snap, **body,
                            "properties": {**body["properties"], "provisioningState": "Succeeded"}}
    return Change(f"snapshot {len(actions)} disk(s) in parallel and wait for them", waves=(tuple(actions),),
                  creates=creates, backs_up=backs_up)
