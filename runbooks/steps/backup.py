"""Steps that preserve before anything is destroyed: export the definition, record the network,
snapshot every disk."""

from __future__ import annotations

from typing import Any

from runbooks.azure import Call
from runbooks.errors import StepRefused
from runbooks.plan import PlanContext, PlannedStep
from runbooks.steps.catalog import NoParams, SnapshotDisksParams
from runbooks.steps.registry import planner


def _rg_name(resource_id: str) -> tuple[str, str]:
    parts = resource_id.split("/")
    return parts[4], parts[-1]


@planner("export-vm-definition")
def export_vm_definition(ctx: PlanContext, params: NoParams) -> PlannedStep:
    """Save the VM model (with userData) and its extensions in the run journal."""
    obs = ctx.obs
    has_user_data = "userData" in obs.props
    return PlannedStep("export-vm-definition",
                       f"save the VM model{' with userData' if has_user_data else ''} and "
                       f"{len(obs.extensions)} extension(s) to the journal", kind="journal")


@planner("record-network")
def record_network(ctx: PlanContext, params: NoParams) -> PlannedStep:
    """Save each NIC's and public IP's configuration in the run journal."""
    nics = ", ".join(f"{n['name']} ({_ips(n)})" for n in ctx.obs.nics.values()) or "none"
    return PlannedStep("record-network", f"save NIC configuration: {nics}; "
                       f"{len(ctx.obs.public_ips)} public IP(s)", kind="journal")


def _ips(nic: dict[str, Any]) -> str:
    return ", ".join(str(c.get("properties", {}).get("privateIPAddress"))
                     for c in nic.get("properties", {}).get("ipConfigurations", []))


def snapshot_name(disk_name: str, short: str) -> str:
    return f"{disk_name[:70]}-rb{short}"


@planner("snapshot-disks")
def snapshot_disks(ctx: PlanContext, params: SnapshotDisksParams) -> PlannedStep:
    """Snapshot the OS disk and every data disk (in parallel) and wait until each copy exists."""
    obs = ctx.obs
    calls = []
    for entry in obs.disk_entries():
        disk_id = (entry.get("managedDisk") or {}).get("id")
        if entry.get("diffDiskSettings"):
            raise StepRefused(f"{obs.ref}: the OS disk is ephemeral; its content cannot be preserved by a "
                              "snapshot and is lost when the VM is deleted")
        if not disk_id:
            raise StepRefused(f"{obs.ref}: disk '{entry.get('name')}' is not a managed disk; unmanaged disks "
                              "are not supported")
        disk = obs.disks.get(disk_id.lower())
        if disk is None:
            raise StepRefused(f"{obs.ref}: disk {disk_id} could not be read; refusing to plan around it")
        rg, name = _rg_name(disk["id"])
        snap = snapshot_name(name, ctx.short)
        snap_id = f"{disk['id'].rsplit('/providers/', 1)[0]}/providers/Microsoft.Compute/snapshots/{snap}"
        ctx.snapshots[disk_id.lower()] = snap_id
        calls.append(Call("compute", "snapshots.begin_create_or_update", {
            "resource_group_name": rg, "snapshot_name": snap,
            "snapshot": {"location": disk["location"], "sku": {"name": "Standard_LRS"},
                         "tags": {"runbooks-run": ctx.run_id, "runbooks-source": disk["id"]},
                         "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk["id"]},
                                        "incremental": params.incremental}}},
            snap_id, "create", f"snapshot {name} as {snap}"))
    return PlannedStep("snapshot-disks", f"snapshot {len(calls)} disk(s) in parallel and wait for them",
                       waves=[calls])
