"""Observation: read everything the diagnosis and the plan need about one VM, into plain JSON data.

Read-only. The result is what a plan is computed from, what the journal keeps (the VM cannot be read
back after it is deleted), and what ``fingerprint`` hashes to detect drift before a saved plan is applied.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from runbooks.azure import Azure, call_failed, id_parts
from runbooks.errors import TargetNotFound, UsageError

_RG = r"[-\w._()]{1,90}"
_NAME = r"[-\w.]{1,64}"
_ID = re.compile(rf"^/subscriptions/([0-9a-fA-F-]{{36}})/resourceGroups/({_RG})/providers/Microsoft\.Compute/"
                 rf"virtualMachines/({_NAME})/?$", re.IGNORECASE)
_SHORT = re.compile(rf"^({_RG})/({_NAME})$")


@dataclass(frozen=True)
class VmRef:
    """A VM by resource group and name (subscription from the connection unless the id names one)."""

    resource_group: str
    name: str
    subscription: str | None = None

    @classmethod
    def parse(cls, text: str) -> VmRef:
        """Accept ``RG/NAME`` or a full VM resource id; anything else is a UsageError."""
        text = (text or "").strip()
        if m := _ID.match(text):
            return cls(m.group(2), m.group(3), m.group(1))
        if m := _SHORT.match(text):
            if m.group(1).endswith("."):
                raise UsageError(f"malformed VM reference '{text}': a resource group name cannot end with '.'")
            return cls(m.group(1), m.group(2))
        raise UsageError(f"malformed VM reference '{text}': use RESOURCE_GROUP/VM_NAME or a full VM resource id")

    def vm_id(self, subscription: str) -> str:
        return (f"/subscriptions/{self.subscription or subscription}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Compute/virtualMachines/{self.name}")

    def __str__(self) -> str:
        return f"{self.resource_group}/{self.name}"


@dataclass
class Observation:
    """What was read about a VM, as REST JSON. ``vm`` is None when the VM does not exist."""

    ref: VmRef
    subscription: str
    vm: dict[str, Any] | None
    instance_view: dict[str, Any] = field(default_factory=dict)
    extensions: list[dict[str, Any]] = field(default_factory=list)
    disks: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower id → disk
    nics: dict[str, dict[str, Any]] = field(default_factory=dict)
    public_ips: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: list[dict[str, Any]] = field(default_factory=list)  # images captured from this VM
    locks: list[dict[str, Any]] = field(default_factory=list)
    failed_operations: list[dict[str, Any]] = field(default_factory=list)
    observed_at: str = ""

    @property
    def vm_id(self) -> str:
        return str(self.vm["id"]) if self.vm else self.ref.vm_id(self.subscription)

    @property
    def props(self) -> dict[str, Any]:
        return (self.vm or {}).get("properties", {})

    @property
    def location(self) -> str:
        return str((self.vm or {}).get("location", ""))

    def statuses(self) -> list[str]:
        return [str(s.get("code", "")) for s in self.instance_view.get("statuses", [])]

    @property
    def generalized(self) -> bool:
        return any(c.lower() == "osstate/generalized" for c in self.statuses())

    @property
    def power_state(self) -> str:
        return next((c.split("/", 1)[1] for c in self.statuses() if c.lower().startswith("powerstate/")), "unknown")

    def disk_entries(self) -> list[dict[str, Any]]:
        """The OS disk entry, then the data disks, as in the VM's storageProfile."""
        sp = self.props.get("storageProfile", {})
        return [sp.get("osDisk", {}), *sp.get("dataDisks", [])]

    def fingerprint(self) -> str:
        """A hash of what a plan depends on: the VM's etag and model, its disks, NICs and images."""
        basis = {
            "vm": self.vm, "generalized": self.generalized,
            "disks": {k: (d.get("managedBy"), d.get("properties", {}).get("diskState")) for k, d in
                      sorted(self.disks.items())},
            "nics": sorted(self.nics), "images": sorted(str(i.get("id", "")).lower() for i in self.images),
        }
        return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"ref": str(self.ref), "subscription": self.subscription, "vm": self.vm,
                "instance_view": self.instance_view, "extensions": self.extensions, "disks": self.disks,
                "nics": self.nics, "public_ips": self.public_ips, "images": self.images, "locks": self.locks,
                "failed_operations": self.failed_operations, "observed_at": self.observed_at}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Observation:
        ref = VmRef.parse(d["ref"])
        return cls(ref=ref, subscription=d["subscription"], vm=d.get("vm"),
                   instance_view=d.get("instance_view", {}), extensions=d.get("extensions", []),
                   disks=d.get("disks", {}), nics=d.get("nics", {}), public_ips=d.get("public_ips", {}),
                   images=d.get("images", []), locks=d.get("locks", []),
                   failed_operations=d.get("failed_operations", []), observed_at=d.get("observed_at", ""))


def _d(model: Any) -> dict[str, Any]:
    """A model as ARM's JSON. The compute/network SDKs have hybrid models (``as_dict()`` is the wire shape);
    monitor and locks still have msrest models, whose wire shape is ``serialize(keep_readonly=True)``."""
    if hasattr(model, "serialize"):
        return dict(model.serialize(keep_readonly=True))
    return model.as_dict() if hasattr(model, "as_dict") else dict(model)


def observe(az: Azure, ref: VmRef, *, activity_days: int = 14) -> Observation:
    """Read the VM and everything around it. Raises TargetNotFound when the VM does not exist."""
    if ref.subscription and ref.subscription.lower() != az.conn.subscription_id.lower():
        raise UsageError(f"the VM id names subscription {ref.subscription} but the connection uses "
                         f"{az.conn.subscription_id}: pass --subscription {ref.subscription}")
    obs = Observation(ref=ref, subscription=az.conn.subscription_id, vm=None,
                      observed_at=datetime.now(timezone.utc).isoformat())
    c, n = az.compute, az.network
    try:
        try:
            obs.vm = _d(c.virtual_machines.get(ref.resource_group, ref.name, expand="userData"))
        except ResourceNotFoundError as e:
            code = getattr(getattr(e, "error", None), "code", None)
            where = f"resource group '{ref.resource_group}'" if code == "ResourceGroupNotFound" else f"VM {ref}"
            raise TargetNotFound(f"{where} not found in subscription {az.conn.subscription_id}") from None
        obs.instance_view = _d(c.virtual_machines.instance_view(ref.resource_group, ref.name))
        obs.extensions = [_d(e) for e in (c.virtual_machine_extensions.list(ref.resource_group, ref.name).value
                                          or [])]
        for entry in obs.disk_entries():
            disk_id = (entry.get("managedDisk") or {}).get("id")
            if disk_id:
                rg, _, name, _ = id_parts(disk_id)
                with contextlib.suppress(ResourceNotFoundError):
                    obs.disks[disk_id.lower()] = _d(c.disks.get(rg, name))
        for ref_nic in obs.props.get("networkProfile", {}).get("networkInterfaces", []):
            nic_id = ref_nic.get("id")
            if not nic_id:
                continue
            rg, _, name, _ = id_parts(nic_id)
            try:
                nic = _d(n.network_interfaces.get(rg, name))
            except ResourceNotFoundError:
                continue
            obs.nics[nic_id.lower()] = nic
            for cfg in nic.get("properties", {}).get("ipConfigurations", []):
                pip_id = (cfg.get("properties", {}).get("publicIPAddress") or {}).get("id")
                if pip_id:
                    prg, _, pname, _ = id_parts(pip_id)
                    with contextlib.suppress(ResourceNotFoundError):
                        obs.public_ips[pip_id.lower()] = _d(n.public_ip_addresses.get(prg, pname))
        vm_id = obs.vm_id.lower()
        obs.images = [_d(i) for i in c.images.list()
                      if str(((_d(i).get("properties") or {}).get("sourceVirtualMachine") or {}).get("id", "")).lower()
                      == vm_id]
        obs.locks = [_d(lk) for lk in az.locks.management_locks.list_at_resource_group_level(ref.resource_group)
                     if _covers(str(_d(lk).get("id", "")), vm_id)]
        since = (datetime.now(timezone.utc) - timedelta(days=activity_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        events = az.monitor.activity_logs.list(filter=f"eventTimestamp ge '{since}' and resourceUri eq '{obs.vm_id}'")
        for ev in events:
            event = _d(ev)
            if (event.get("status") or {}).get("value") == "Failed":
                obs.failed_operations.append(_failed_op(event))
                if len(obs.failed_operations) >= 20:
                    break
    except (HttpResponseError, ServiceRequestError) as e:
        raise call_failed(e, f"reading {ref}") from e
    return obs


def _covers(lock_id: str, vm_id: str) -> bool:
    scope = lock_id.lower().split("/providers/microsoft.authorization/locks/")[0].rstrip("/") + "/"
    return (vm_id + "/").startswith(scope)


def _failed_op(event: dict[str, Any]) -> dict[str, Any]:
    props = event.get("properties") or {}
    code = message = None
    try:
        parsed = json.loads(props.get("statusMessage") or "{}")
        err = parsed.get("error") or {}
        code, message = err.get("code"), err.get("message")
    except (ValueError, AttributeError):
        message = props.get("statusMessage")
    return {"operation": (event.get("operationName") or {}).get("value"),
            "operation_display": (event.get("operationName") or {}).get("localizedValue"),
            "time": event.get("eventTimestamp"), "caller": event.get("caller"),
            "status_code": props.get("statusCode"), "error_code": code, "message": message,
            "correlation_id": event.get("correlationId")}
