"""The step library's catalogue: every step name a playbook may use, with its typed parameters.

This is the contract between playbooks (YAML data) and the remediation engine: the playbook
linter checks ``run:`` names and ``with:`` parameters against it, and the engine binds each name
to its implementation. A step is *destructive* when it deletes or replaces something in Azure;
confirm mode asks before each destructive step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field


class StepParams(BaseModel):
    """Base of every step's parameters: unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(StepParams):
    pass


class SnapshotDisksParams(StepParams):
    incremental: bool = Field(False, description="take incremental snapshots (cheaper; same content)")


class DeleteVmParams(StepParams):
    force_deletion: bool = Field(False, description="ask Azure for a force delete (skips graceful shutdown)")


class CreateFromImageParams(StepParams):
    admin_secret: str = Field(
        "env:RUNBOOKS_ADMIN_PASSWORD",
        description="where the admin secret comes from: 'env:NAME' or a Key Vault secret URL; never the value",
    )


class VerifyParams(StepParams):
    agent_ready_timeout_s: float = Field(900.0, gt=0, description="how long to wait for the VM agent to be Ready")


@dataclass(frozen=True)
class StepSpec:
    """What a playbook may say about a step: its name, what it does, its parameters, if it destroys."""

    name: str
    summary: str
    params: type[StepParams] = NoParams
    destructive: bool = False
    writes: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)


CATALOG: dict[str, StepSpec] = {
    s.name: s
    for s in (
        StepSpec("export-vm-definition",
                 "save the full VM model (with userData and extensions) to the journal"),
        StepSpec("record-network",
                 "save each NIC's and public IP's configuration to the journal"),
        StepSpec("snapshot-disks",
                 "snapshot the OS and data disks and wait until the copies exist",
                 SnapshotDisksParams, writes=True),
        StepSpec("delete-vm",
                 "delete the VM; disks and NICs whose deleteOption is Delete go with it",
                 DeleteVmParams, destructive=True, writes=True),
        StepSpec("rebuild-deleted-disks",
                 "recreate, from their snapshots, the disks Azure deleted with the VM",
                 writes=True),
        StepSpec("rebuild-deleted-nics",
                 "recreate the NICs Azure deleted with the VM, same IP configuration",
                 writes=True),
        StepSpec("create-vm-from-image", "create the VM again from its captured managed image",
                 CreateFromImageParams, writes=True),
        StepSpec("create-vm-from-os-disk", "create the VM again by attaching its own (specialized) OS disk",
                 writes=True),
        StepSpec("restore-extensions", "re-create the VM extensions with their public settings", writes=True),
        StepSpec("verify-vm", "check the new VM: provisioned, running, not generalized, agent Ready, "
                 "NICs and disks as before", VerifyParams),
        StepSpec("report-fallout", "list what could not carry over: new identity principal, protected "
                 "settings, public IP changes"),
    )
}
