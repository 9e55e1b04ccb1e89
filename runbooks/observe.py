"""Observation: read what the diagnosis and the plan need about one VM, into plain JSON data.

Read-only. What is read is chosen by *facts* (``FACTS``: instance view, extensions, disks, NICs, images,
locks, activity log, the availability set and its members, the available sizes, the region's SKUs and quota),
each named by the signals, steps and checks that need it, so a diagnosis of a VM no playbook covers lists no
images. The result is what a plan is computed from, what the journal keeps (the VM cannot be read back after
it is deleted), and what ``fingerprint`` hashes to detect drift.

The same type is the *state* the planner folds steps over: ``evolve`` applies a step's predicted effects,
and ``view`` shows one resource (the VM with its power and OS state) the way a step's goal reads it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from runbooks.azure import (
    AZURE_ERRORS,
    arm_error,
    arm_time,
    call_failed,
    get_instance_view,
    get_vm,
    resource_parts,
    scope_of_lock,
)
from runbooks.errors import TargetNotFound, UsageError

if TYPE_CHECKING:
    from runbooks.azure import Azure

ACTIVITY_DAYS = 14
_RG = r"[-\w._()]{1,90}"
_NAME = r"[-\w.]{1,64}"
_ID = re.compile(rf"^/subscriptions/([0-9a-fA-F-]{{36}})/resourceGroups/({_RG})/providers/Microsoft\.Compute/"
                 rf"virtualMachines/({_NAME})/?$", re.IGNORECASE)
_SHORT = re.compile(rf"^({_RG})/({_NAME})$")


def dotted(data: Any, path: str) -> Any:
    """``a.b.c`` lookup in nested dicts (a number indexes a list: ``ipConfigurations.0.name``); None when any
    part is missing."""
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit():
            data = data[int(part)] if int(part) < len(data) else None
        elif isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return data


def _set_dotted(data: Any, path: str, value: Any) -> None:
    parts = path.split(".")
    for i, part in enumerate(parts[:-1]):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
            continue
        nxt = data.get(part) if isinstance(data, dict) else None
        if not isinstance(nxt, (dict, list)):
            nxt = data[part] = [] if parts[i + 1].isdigit() else {}
        data = nxt
    leaf = parts[-1]
    if isinstance(data, list) and leaf.isdigit() and int(leaf) < len(data):
        data[int(leaf)] = copy.deepcopy(value)
    elif isinstance(data, dict):
        data[leaf] = copy.deepcopy(value)


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


def vm_view(vm: dict[str, Any] | None, instance_view: Mapping[str, Any] | None) -> dict[str, Any]:
    """A VM as a goal reads it: its REST JSON plus ``exists``, ``powerState`` (``running``, ``deallocated``…),
    ``osState`` (``generalized`` or None) and ``agent`` (the VM agent's display status, or None)."""
    if vm is None:
        return {"exists": False}
    codes = [str(s.get("code", "")) for s in (instance_view or {}).get("statuses", [])]
    agent = ((instance_view or {}).get("vmAgent") or {}).get("statuses") or []
    return {**vm, "exists": True,
            "powerState": next((c.split("/", 1)[1] for c in codes if c.lower().startswith("powerstate/")), None),
            "osState": next((c.split("/", 1)[1] for c in codes if c.lower().startswith("osstate/")), None),
            "agent": agent[0].get("displayStatus") if agent else None}


@dataclass
class Observation:
    """What was read about a VM, as REST JSON. ``vm`` is None when the VM does not exist. ``gathered`` names
    the facts read (``FACTS``); ``resources`` holds other resources a plan predicts or reads (snapshots)."""

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
    availability_set: dict[str, Any] | None = None  # the VM's availability set, when it has one
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower id → the set's other VMs (vm_view)
    sizes: list[dict[str, Any]] = field(default_factory=list)  # what the VM may be resized to where it is now
    skus: list[dict[str, Any]] = field(default_factory=list)  # the region's VM sizes (compact resourceSkus)
    usages: list[dict[str, Any]] = field(default_factory=list)  # vCPU quota in the VM's region
    health: list[dict[str, Any]] = field(default_factory=list)  # Resource Health: current status, then past events
    storage_accounts: list[dict[str, Any]] = field(default_factory=list)  # the subscription's (compact), by name
    observed_at: str = ""
    gathered: set[str] = field(default_factory=set)
    resources: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # lower id → JSON (None: gone)

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
        """The OS disk entry, then the data disks, as in the VM's storageProfile (none when there is no VM)."""
        sp = self.props.get("storageProfile", {})
        return [d for d in (sp.get("osDisk"), *sp.get("dataDisks", [])) if d]

    # --- the state a plan folds over -------------------------------------------------------------
    def _tables(self) -> list[dict[str, Any]]:
        return [self.disks, self.nics, self.public_ips, self.members,
                {str(e.get("id", "")).lower(): e for e in self.extensions}]

    def view(self, resource_id: str) -> dict[str, Any]:
        """One resource as a goal reads it (``vm_view`` for the VM); ``{"exists": False}`` when gone."""
        key = resource_id.lower()
        if key == self.vm_id.lower():
            return vm_view(self.vm, self.instance_view)
        if key in self.resources:
            found = self.resources[key]
            return {**found, "exists": True} if found is not None else {"exists": False}
        for table in self._tables():
            if key in table:
                return {**table[key], "exists": True}
        return {"exists": False}

    def evolve(self, *, deletes: Iterable[str] = (), creates: Mapping[str, dict[str, Any]] | None = None,
               sets: Iterable[tuple[str, str, Any]] = ()) -> Observation:
        """A copy with a step's predicted effects: resources deleted, created (id → JSON) and values set
        (``(resource id, path, value)``; paths as ``vm_view`` shows them). Pure."""
        new = copy.deepcopy(self)
        vm_key = new.vm_id.lower()
        for rid in deletes:
            key = rid.lower()
            if key == vm_key:
                new.vm, new.instance_view, new.extensions = None, {}, []
            for table in (new.disks, new.nics, new.public_ips):
                table.pop(key, None)
            new.resources[key] = None
        for rid, body in (creates or {}).items():
            key = rid.lower()
            if key == vm_key:
                new.vm = copy.deepcopy(body)
                new.instance_view = {"statuses": [{"code": "ProvisioningState/succeeded"},
                                                  {"code": "PowerState/running"}]}
            else:
                new.resources[key] = copy.deepcopy(body)
        for rid, path, value in sets:
            new._set(rid, path, value)
        return new

    def _set(self, resource_id: str, path: str, value: Any) -> None:
        key = resource_id.lower()
        if key == self.vm_id.lower() and self.vm is not None:
            if path in ("powerState", "osState"):
                prefix = "PowerState/" if path == "powerState" else "OSState/"
                kept = [s for s in self.instance_view.get("statuses", [])
                        if not str(s.get("code", "")).lower().startswith(prefix.lower())]
                self.instance_view["statuses"] = kept + ([{"code": f"{prefix}{value}"}] if value else [])
            elif path == "agent":
                self.instance_view["vmAgent"] = {"statuses": [{"displayStatus": value}]} if value else {}
            elif path != "exists":
                _set_dotted(self.vm, path, value)
            return
        target = self.resources.get(key)
        if target is None:
            target = next((t[key] for t in self._tables() if key in t), None)
        if target is not None and path != "exists":
            _set_dotted(target, path, value)

    def fingerprint(self) -> str:
        """A hash of what a plan depends on: the VM's model, state and every fact that was read about it."""
        basis = {
            "vm": self.vm, "statuses": sorted(self.statuses()), "gathered": sorted(self.gathered),
            "disks": self.disks, "nics": self.nics, "public_ips": self.public_ips,
            "extensions": sorted(json.dumps(e, sort_keys=True, default=str) for e in self.extensions),
            "images": sorted(str(i.get("id", "")).lower() for i in self.images),
            # a lock's whole definition: a plan that lifts and puts back a lock must put back the lock as it is now
            "locks": sorted(json.dumps({"id": str(lk.get("id", "")).lower(), "properties": lk.get("properties")},
                                       sort_keys=True, default=str) for lk in self.locks),
            "availability_set": self.availability_set,
            "members": {k: [v.get("properties", {}).get("vmId"), v.get("powerState"),
                            dotted(v, "properties.hardwareProfile.vmSize")] for k, v in self.members.items()},
            "sizes": sorted(str(x.get("name", "")).lower() for x in self.sizes),
            "skus": self.skus, "usages": self.usages, "storage_accounts": self.storage_accounts,
        }
        return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"ref": str(self.ref), "subscription": self.subscription, "vm": self.vm,
                "instance_view": self.instance_view, "extensions": self.extensions, "disks": self.disks,
                "nics": self.nics, "public_ips": self.public_ips, "images": self.images, "locks": self.locks,
                "failed_operations": self.failed_operations, "availability_set": self.availability_set,
                "members": self.members, "sizes": self.sizes, "skus": self.skus, "usages": self.usages,
                "health": self.health, "observed_at": self.observed_at,
                "gathered": sorted(self.gathered), "resources": self.resources,
                "storage_accounts": self.storage_accounts}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Observation:
        ref = VmRef.parse(d["ref"])
        return cls(ref=ref, subscription=d["subscription"], vm=d.get("vm"),
                   instance_view=d.get("instance_view", {}), extensions=d.get("extensions", []),
                   disks=d.get("disks", {}), nics=d.get("nics", {}), public_ips=d.get("public_ips", {}),
                   images=d.get("images", []), locks=d.get("locks", []),
                   failed_operations=d.get("failed_operations", []), availability_set=d.get("availability_set"),
                   members=dict(d.get("members", {})), sizes=list(d.get("sizes", [])), skus=list(d.get("skus", [])),
                   usages=list(d.get("usages", [])), health=list(d.get("health", [])),
                   observed_at=d.get("observed_at", ""),
                   gathered=set(d.get("gathered", ALL_FACTS)), resources=dict(d.get("resources", {})),
                   storage_accounts=list(d.get("storage_accounts", [])))


def _d(model: Any) -> dict[str, Any]:
    """A model as ARM's JSON. The compute/network SDKs have hybrid models (``as_dict()`` is the wire shape);
    monitor and locks still have msrest models, whose wire shape is ``serialize(keep_readonly=True)``."""
    if hasattr(model, "serialize"):
        return dict(model.serialize(keep_readonly=True))
    return model.as_dict() if hasattr(model, "as_dict") else dict(model)


# --- facts: what can be read about a VM, each by one reader --------------------------------------------
# A fact reader fills its part of an Observation whose ``vm`` is already read. Signals (runbooks.signals),
# steps (runbooks.steps) and checks (runbooks.checks) name the facts they need; ``observe`` reads only those.


def _read_instance_view(az: Azure, obs: Observation) -> None:
    ref = obs.ref
    obs.instance_view = get_instance_view(az, ref.resource_group, ref.name)  # raw JSON: no compute SDK import


def _read_extensions(az: Azure, obs: Observation) -> None:
    ref = obs.ref
    obs.extensions = [_d(e) for e in (az.compute.virtual_machine_extensions.list(ref.resource_group, ref.name).value
                                      or [])]


def _read_disks(az: Azure, obs: Observation) -> None:
    for entry in obs.disk_entries():
        disk_id = (entry.get("managedDisk") or {}).get("id")
        if disk_id:
            p = resource_parts(disk_id)
            with contextlib.suppress(ResourceNotFoundError):
                obs.disks[disk_id.lower()] = _d(az.compute.disks.get(p.resource_group, p.name))


def _read_nics(az: Azure, obs: Observation) -> None:
    """The VM's NICs and the public IPs on them."""
    for ref_nic in obs.props.get("networkProfile", {}).get("networkInterfaces", []):
        nic_id = ref_nic.get("id")
        if not nic_id:
            continue
        p = resource_parts(nic_id)
        try:
            nic = _d(az.network.network_interfaces.get(p.resource_group, p.name))
        except ResourceNotFoundError:
            continue
        obs.nics[nic_id.lower()] = nic
        for cfg in nic.get("properties", {}).get("ipConfigurations", []):
            pip_id = (cfg.get("properties", {}).get("publicIPAddress") or {}).get("id")
            if pip_id:
                pp = resource_parts(pip_id)
                with contextlib.suppress(ResourceNotFoundError):
                    obs.public_ips[pip_id.lower()] = _d(az.network.public_ip_addresses.get(pp.resource_group,
                                                                                         pp.name))


def _read_images(az: Azure, obs: Observation) -> None:
    """The images captured from this VM (one subscription-wide list)."""
    vm_id = obs.vm_id.lower()
    obs.images = [d for d in (_d(i) for i in az.compute.images.list())
                  if str(((d.get("properties") or {}).get("sourceVirtualMachine") or {}).get("id", "")).lower()
                  == vm_id]


def _read_locks(az: Azure, obs: Observation) -> None:
    vm_id = obs.vm_id.lower()
    obs.locks = [_d(lk) for lk in az.locks.management_locks.list_at_resource_group_level(obs.ref.resource_group)
                 if _covers(str(_d(lk).get("id", "")), vm_id)]


_VM_IN_ID = re.compile(r"^(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/virtualmachines/"
                       r"[^/]+)(?:/|$)", re.IGNORECASE)


def vm_of(resource_id: str) -> str | None:
    """The VM (lower-case id) a resource id is, or belongs to (an extension); None for anything else."""
    m = _VM_IN_ID.match(resource_id)
    return m.group(1).lower() if m else None


def activity_since(days: int = ACTIVITY_DAYS) -> str:
    """The ``eventTimestamp ge`` bound of the activity-log reads: ``days`` ago, UTC."""
    return (datetime.now(timezone.utc) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_activity_log(az: Azure, obs: Observation, days: int = ACTIVITY_DAYS) -> None:
    """The VM's events and its child resources' (an extension that failed to install is about the VM), from one
    read of its resource group's log."""
    events = az.monitor.activity_logs.list(filter=f"eventTimestamp ge '{activity_since(days)}' and "
                                                  f"resourceGroupName eq '{obs.ref.resource_group}'")
    vm_id = obs.vm_id.lower()
    own = (d for d in (_d(ev) for ev in events) if vm_of(str(d.get("resourceId") or "")) == vm_id)
    obs.failed_operations = failed_operations(own, obs.props.get("timeCreated"))


def failed_operations(events: Iterable[dict[str, Any]], created: Any = None) -> list[dict[str, Any]]:
    """A resource's failed operations from its activity-log events (newest first, at most 20 per resource: the VM,
    each of its extensions). A failure that no
    longer stands is kept, marked ``resolved_at`` (and ``resolved_by``): the same operation succeeded later (a
    start that failed for lack of capacity), or the VM was created again since (``created``: its timeCreated; a
    generalized VM rebuilt under its name is another VM). ``succeeded_after``: the operations (lower-case) that
    succeeded after it, for signals that other operations resolve. ``requested_size``: the VM size the failed
    write's request body asked for; the other ``REQUEST_EVIDENCE`` keys: what else of that body is kept."""
    events = list(events)
    evidence: dict[str, dict[str, Any]] = {}  # correlation id → what is kept of its request body (request_evidence)
    for event in events:
        if (event.get("status") or {}).get("value") == "Started" and (kept := request_evidence(event)):
            evidence[str(event.get("correlationId"))] = kept
    sizes = {corr: kept["requested_size"] for corr, kept in evidence.items() if "requested_size" in kept}
    failed: list[dict[str, Any]] = []
    succeeded: dict[str, str] = {}  # operation (lower) → time of its latest success
    sized: dict[tuple[str, str], str] = {}  # (operation, size asked for) → time of its latest success
    per_resource: dict[str, int] = {}  # failures kept per resource: an extension failing again and again must
    for event in events:                # not push the VM's own failures out
        status = (event.get("status") or {}).get("value")
        resource = str(event.get("resourceId") or "").lower()
        if status == "Failed" and per_resource.get(resource, 0) < 20:
            per_resource[resource] = per_resource.get(resource, 0) + 1
            failed.append(_failed_op(event))
        elif status == "Succeeded":
            name = str((event.get("operationName") or {}).get("value") or "").lower()
            stamp = _stamp(event.get("eventTimestamp"))
            succeeded[name] = max(stamp, succeeded.get(name, ""))
            if (asked := sizes.get(str(event.get("correlationId")))) is not None:
                sized[(name, asked.lower())] = max(stamp, sized.get((name, asked.lower()), ""))
    born = _stamp(created) if created else ""
    for op in failed:
        when = _stamp(op.get("time"))
        name = str(op.get("operation") or "").lower()
        op["succeeded_after"] = sorted(n for n, stamp in succeeded.items() if stamp > when)
        op.update(evidence.get(str(op.get("correlation_id")), {}))
        # a refused resize stands until a write asking for the same size succeeded (a tag update is no fix)
        later = sized.get((name, op["requested_size"].lower()), "") if op.get("requested_size") \
            else succeeded.get(name, "")
        if later > when:
            op["resolved_at"], op["resolved_by"] = later, "it succeeded later"
        elif born > when:
            op["resolved_at"], op["resolved_by"] = born, "the VM was created again since"
    return failed


def _asked_size(body: dict[str, Any]) -> str | None:
    """The ``hardwareProfile.vmSize`` a write's request body asked for."""
    size = dotted(body, "properties.hardwareProfile.vmSize")
    return str(size) if isinstance(size, str) and size else None


def _asked_nics(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The NICs a write's request body asked for (``properties.networkProfile.networkInterfaces``): each NIC's id and
    primary flag (None when not given), nothing else; None when the body names no NIC list."""
    refs = dotted(body, "properties.networkProfile.networkInterfaces")
    if not isinstance(refs, list):
        return None
    return [{"id": str(r["id"]), "primary": dotted(r, "properties.primary")}
            for r in refs if isinstance(r, dict) and isinstance(r.get("id"), str)]


def requested_nics(obs: Observation) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The newest standing (unresolved) failed write of the VM that asked for a NIC list: (the failed operation,
    the NICs asked for, each ``{"id", "primary"}``)."""
    for op in obs.failed_operations:
        if not op.get("resolved_at") and isinstance(op.get("requested_nics"), list):
            return op, list(op["requested_nics"])
    return None


def _read_requested_nics(az: Azure, obs: Observation) -> None:
    """The NICs a standing refused write asked for that the VM does not hold (``resources``: id → NIC JSON), so a
    plan sees what it attaches (accelerated networking, the VM it is attached to)."""
    asked = requested_nics(obs)
    for ref in asked[1] if asked else []:
        nic_id = str(ref["id"])
        if nic_id.lower() in obs.nics or nic_id.lower() in obs.resources:
            continue
        p = resource_parts(nic_id)
        try:
            obs.resources[nic_id.lower()] = _d(az.network.network_interfaces.get(p.resource_group, p.name))
        except ResourceNotFoundError:
            obs.resources[nic_id.lower()] = None
# What a failed write's request body may tell a diagnosis, kept under these keys of the failed operation (dotted
# paths of the body). Only these are kept: a body may hold secrets (armsim and Azure strip passwords, not all of them).
# What is kept of a failed write's request body (never the body itself: it may hold secrets): key → reader.
REQUEST_EVIDENCE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "requested_size": _asked_size,
    "requested_nics": _asked_nics,
    "requested_location": lambda body: body.get("location"),
    "requested_image": lambda body: copy.deepcopy(dotted(body, "properties.storageProfile.imageReference")),
    "requested_plan": lambda body: copy.deepcopy(body.get("plan")),
}


def request_evidence(event: dict[str, Any]) -> dict[str, Any]:
    """The ``REQUEST_EVIDENCE`` of a Started event's request body (only what is set)."""
    raw = (event.get("properties") or {}).get("requestbody")
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, TypeError):
        return {}
    if not isinstance(body, dict):
        return {}
    return {key: value for key, read in REQUEST_EVIDENCE.items() if (value := read(body)) not in (None, "", {})}


_VM_WRITE, _VM_DELETE = "microsoft.compute/virtualmachines/write", "microsoft.compute/virtualmachines/delete"


def refused_create(obs: Observation) -> dict[str, Any] | None:
    """The standing failed write of a VM that does not exist (newest first): its create was refused. A VM deleted
    since a failed write is not one."""
    if obs.vm is not None:
        return None
    return next((op for op in obs.failed_operations if not op.get("resolved_at")
                 and str(op.get("operation", "")).lower() == _VM_WRITE
                 and _VM_DELETE not in (op.get("succeeded_after") or ())), None)


def _stamp(value: Any) -> str:
    """An event time as a sortable UTC ISO string (the SDK gives datetimes, a saved observation strings)."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        return arm_time(value).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return str(value or "")


def _read_placement(az: Azure, obs: Observation) -> None:
    """The VM's availability set and its other members (each with its power state), which share one cluster."""
    set_id = (obs.props.get("availabilitySet") or {}).get("id")
    if not set_id:
        return
    p = resource_parts(set_id)
    try:
        avset = _d(az.compute.availability_sets.get(p.resource_group, p.name))
    except ResourceNotFoundError:
        return
    obs.availability_set = avset
    own = obs.vm_id.lower()
    for ref in (avset.get("properties") or {}).get("virtualMachines") or []:
        member_id = str(ref.get("id") or "")
        if not member_id or member_id.lower() == own:
            continue
        mp = resource_parts(member_id)
        with contextlib.suppress(ResourceNotFoundError):
            vm = _d(az.compute.virtual_machines.get(mp.resource_group, mp.name, expand="instanceView"))
            view = (vm.get("properties") or {}).pop("instanceView", None) or {}
            obs.members[member_id.lower()] = vm_view(vm, view)


def _read_sizes(az: Azure, obs: Observation) -> None:
    """The sizes the VM may be resized to without leaving its cluster (all of the region once deallocated)."""
    ref = obs.ref
    obs.sizes = [_d(s) for s in az.compute.virtual_machines.list_available_sizes(ref.resource_group, ref.name)]


def _read_skus(az: Azure, obs: Observation) -> None:
    """The region's VM sizes from resourceSkus: capabilities, zones and restrictions (compact)."""
    location = obs.location
    out = []
    for sku in az.compute.resource_skus.list(filter=f"location eq '{location}'"):
        d = _d(sku)
        if str(d.get("resourceType", "")).lower() != "virtualmachines":
            continue
        info: dict[str, Any] = next((i for i in d.get("locationInfo") or []
                                     if str(i.get("location", "")).lower() == location), {})
        out.append({"name": d.get("name"), "family": d.get("family"),
                    "capabilities": {str(c.get("name")): str(c.get("value")) for c in d.get("capabilities") or []},
                    "zones": sorted(str(z) for z in info.get("zones") or []),
                    "restrictions": [{"type": r.get("type"), "reason": r.get("reasonCode"),
                                      "values": list(r.get("values") or []),
                                      "zones": sorted(str(z) for i in (r.get("restrictionInfo") or {},)
                                                      for z in i.get("zones") or [])}
                                     for r in d.get("restrictions") or []]})
    obs.skus = sorted(out, key=lambda x: str(x["name"]).lower())


def _read_usages(az: Azure, obs: Observation) -> None:
    """vCPU usage against the limits of the VM's region: in total and per size family."""
    obs.usages = [{"name": (d.get("name") or {}).get("value"), "label": (d.get("name") or {}).get("localizedValue"),
                   "current": d.get("currentValue"), "limit": d.get("limit")}
                  for d in (_d(u) for u in az.compute.usage.list(obs.location))]


_HEALTH_FIELDS = ("availabilityState", "title", "summary", "reasonType", "context", "category", "articleId",
                  "occuredTime", "resolutionETA", "detailedStatus")


def _read_health(az: Azure, obs: Observation) -> None:
    """Resource Health of the VM: its current availability status, then its past events (newest first), each
    with the id of the RCA article that explains it when the platform gives one."""
    statuses = az.health().availability_statuses.list(obs.vm_id.lstrip("/"))
    obs.health = [{"name": d.get("name"), **{k: v for k, v in (d.get("properties") or {}).items()
                                             if k in _HEALTH_FIELDS and v not in (None, "")}}
                  for d in (_d(s) for s in statuses)]
STORAGE_ACCOUNTS = "Microsoft.Storage/storageAccounts"


def storage_account_name(uri: Any) -> str | None:
    """The storage account a blob URI names (``https://NAME.blob.core.windows.net/…``), lower-case; None if none."""
    from urllib.parse import urlsplit

    if not isinstance(uri, str) or not uri:
        return None
    host = (urlsplit(uri).hostname or "").lower()
    return host.split(".", 1)[0] or None


def _read_storage_accounts(az: Azure, obs: Observation) -> None:
    """The subscription's storage accounts, compact (id, name, location, sku, tier, kind), through the generic
    resource list: boot diagnostics writes to one of them, named by its blob endpoint."""
    out = []
    for r in az.resources().resources.list(filter=f"resourceType eq '{STORAGE_ACCOUNTS}'"):
        d = _d(r)
        sku = d.get("sku") or {}
        out.append({"id": d.get("id"), "name": str(d.get("name") or "").lower(),
                    "location": str(d.get("location") or "").replace(" ", "").lower(),
                    "sku": sku.get("name"), "tier": sku.get("tier"), "kind": d.get("kind")})
    obs.storage_accounts = sorted(out, key=lambda a: str(a["name"]))


def _read_marketplace(az: Azure, obs: Observation) -> None:
    """The image a refused create named and the legal terms of its plan (runbooks.marketplace)."""
    from runbooks.marketplace import read_marketplace

    read_marketplace(az, obs)


def _read_subnets(az: Azure, obs: Observation) -> None:
    """The subnets of the VM's NICs, each read once with its ipconfigs expanded (who holds which private address),
    into ``resources`` (lower subnet id → subnet JSON; None: gone): a rebuilt NIC keeps its address only if free."""
    seen: set[str] = set()
    for nic in obs.nics.values():
        for cfg in nic.get("properties", {}).get("ipConfigurations", []):
            subnet_id = str((cfg.get("properties", {}).get("subnet") or {}).get("id", ""))
            if "/subnets/" not in subnet_id.lower() or subnet_id.lower() in seen:
                continue
            seen.add(subnet_id.lower())
            vnet_id, _, name = subnet_id.rpartition("/subnets/")
            p = resource_parts(vnet_id)
            try:
                obs.resources[subnet_id.lower()] = _d(az.network.subnets.get(p.resource_group, p.name, name,
                                                                            expand="ipConfigurations"))
            except ResourceNotFoundError:
                obs.resources[subnet_id.lower()] = None
            except HttpResponseError as e:  # e.g. 403: a VNet outside the role's scope; holders unknown, said so
                code = arm_error(e)[0] or "error"
                obs.resources[subnet_id.lower()] = {"id": subnet_id, "unreadable": f"{code} (HTTP {e.status_code})"}


FactReader = Callable[["Azure", Observation], None]
# Every fact but "vm" (always read first). Order matters only for readability of the request log.
FACTS: dict[str, FactReader] = {
    "instance-view": _read_instance_view,
    "extensions": _read_extensions,
    "disks": _read_disks,
    "nics": _read_nics,
    "images": _read_images,
    "locks": _read_locks,
    "activity-log": _read_activity_log,
    "placement": _read_placement,
    "sizes": _read_sizes,
    "skus": _read_skus,
    "usages": _read_usages,
    "resource-health": _read_health,
    "boot-diagnostics": _read_storage_accounts,
    "requested-nics": _read_requested_nics,  # after "activity-log" and "nics", which it reads
    "marketplace": _read_marketplace,
    "subnets": _read_subnets,  # after "nics", which it reads
}
ALL_FACTS = frozenset({"vm", *FACTS})
# Facts whose readers read nothing another fact reads and write only their own part of the observation: ``gather``
# reads them side by side (one round trip instead of one each); every other fact after them, one at a time in
# FACTS order (requested-nics reads the activity log and the NICs, marketplace the activity log).
SIDE_BY_SIDE = frozenset({"instance-view", "extensions", "disks", "nics", "images", "locks", "activity-log",
                          "placement", "sizes", "skus", "usages", "resource-health", "boot-diagnostics"})
# The facts that can be read of a VM that does not exist (its create was refused): evidence about the request.
WITHOUT_VM: set[str] = {"activity-log", "marketplace"}


def observe(az: Azure, ref: VmRef, facts: Iterable[str] | None = None, *, missing_ok: bool = False,
            user_data: bool = True) -> Observation:
    """Read the VM and the ``facts`` asked for (default: all). Raises TargetNotFound when the VM does not
    exist, unless ``missing_ok`` (then ``vm`` is None and nothing else is read) or its create was refused (a
    standing failed write in its activity log: then ``vm`` is None and only the ``WITHOUT_VM`` facts are read).
    ``user_data=False`` (a verification poll) reads the model and the instance view in one request."""
    wanted = set(ALL_FACTS if facts is None else facts)
    one_read = not user_data and "instance-view" in wanted
    if ref.subscription and ref.subscription.lower() != az.conn.subscription_id.lower():
        raise UsageError(f"the VM id names subscription {ref.subscription} but the connection uses "
                         f"{az.conn.subscription_id}: pass --subscription {ref.subscription}")
    obs = Observation(ref=ref, subscription=az.conn.subscription_id, vm=None,
                      observed_at=datetime.now(timezone.utc).isoformat())
    try:
        try:
            obs.vm = get_vm(az, ref.resource_group, ref.name,  # raw JSON: a job's first read imports no SDK
                            expand="instanceView" if one_read else "userData")
        except ResourceNotFoundError as e:
            code = getattr(getattr(e, "error", None), "code", None)
            if missing_ok and code != "ResourceGroupNotFound":
                obs.gathered = set(ALL_FACTS)
                return obs
            if code != "ResourceGroupNotFound":  # a VM whose create was refused: its activity log is the evidence
                try:
                    _read_activity_log(az, obs)
                except AZURE_ERRORS:
                    obs.failed_operations = []  # unreadable: the VM is simply not found
                obs.gathered.add("activity-log")
                if refused_create(obs) is not None:
                    return gather(az, obs, wanted)
            where = f"resource group '{ref.resource_group}'" if code == "ResourceGroupNotFound" else f"VM {ref}"
            raise TargetNotFound(f"{where} not found in subscription {az.conn.subscription_id}") from None
        obs.gathered.add("vm")
        if one_read:
            obs.instance_view = obs.props.pop("instanceView", None) or {}
            obs.gathered.add("instance-view")
        gather(az, obs, wanted)
    except AZURE_ERRORS as e:
        raise call_failed(e, f"reading {ref}") from e
    return obs


def gather(az: Azure, obs: Observation, facts: Iterable[str]) -> Observation:
    """Read the facts of ``facts`` that ``obs`` does not hold yet (in place; returns ``obs``)."""
    wanted = set(facts)
    unknown = wanted - ALL_FACTS
    if unknown:
        raise ValueError(f"unknown facts {sorted(unknown)}; known: {sorted(ALL_FACTS)}")
    if obs.vm is None and refused_create(obs) is None:
        return obs
    # nothing of a VM that does not exist can be read but its activity log
    todo = [name for name in FACTS if name in wanted and name not in obs.gathered
            and (obs.vm is not None or name in WITHOUT_VM)]
    together = [name for name in todo if name in SIDE_BY_SIDE]
    try:
        if len(together) > 1:
            with ThreadPoolExecutor(min(8, len(together))) as pool:
                for name, read in [(name, pool.submit(FACTS[name], az, obs)) for name in together]:
                    read.result()
                    obs.gathered.add(name)
        for name in todo:
            if name not in obs.gathered:
                FACTS[name](az, obs)
                obs.gathered.add(name)
    except AZURE_ERRORS as e:
        raise call_failed(e, f"reading {obs.ref}") from e
    return obs


def _covers(lock_id: str, vm_id: str) -> bool:
    return (vm_id + "/").startswith(scope_of_lock(lock_id).lower().rstrip("/") + "/")


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
