"""Microsoft.Compute state and rules: virtual machines, extensions, disks, snapshots, images.

No HTTP here. Each model renders itself (``to_dict``) in ARM's JSON; the rules Azure enforces live
in ``ComputeState`` methods and raise the wire errors of ``armsim.compute.exceptions``.

The emulated guest: every OS disk carries a hidden ``guest`` state.
  ``specialized`` — a working OS with its accounts: a VM booting it reaches VM agent Ready.
  ``generalized`` — sysprepped / ``waagent -deprovision``ed: it boots into setup (OOBE) and the agent
                    never reports Ready, unless Azure provisions it from an image with an osProfile.
Every disk also carries a hidden ``content`` fingerprint, copied by snapshots, images and disk copies,
so tests can prove that no disk content was lost.

Hosts: a VM that holds an allocation (running or stopped, not deallocated) sits on a hidden host node
(``VirtualMachine.host``; ARM shows no host for VMs outside dedicated hosts) and has a temporary (resource)
disk whose content is the hidden ``temp_disk`` fingerprint. Create, start of a deallocated VM and redeploy
place the VM on a new host with an empty temporary disk; deallocate releases both; restart, powerOff and
start of a stopped VM keep them. A host can be faulty (``HostFault``, set through the control API):
  ``agent-unreachable``     the VM agent cannot report to the host: it never reports Ready there.
  ``provisioning-timeout``  as above, and every create, update (PUT/PATCH), start, restart or redeploy that
                            completes on that host fails with ``OSProvisioningTimedOut``; the guest runs anyway.
Moving the VM to another host (redeploy, or deallocate + start) is the fix.

Disk performance: every managed disk reports ``diskIOPSReadWrite`` and ``diskMBpsReadWrite`` (and Premium SSD its
``tier``), derived from its SKU and size whenever it is created, resized or changes SKU (``catalog.DISK_TIERS``);
values the request gives win. A disk's SKU changes only while it is unattached or its VM is deallocated.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from armsim.compute import capacity, catalog, vmimages
from armsim.compute import exceptions as cx
from armsim.errors import (
    ArmError,
    BadRequest,
    InvalidParameter,
    NotFound,
    ParentResourceNotFound,
    ResourceNotFound,
)
from armsim.lro import Operation, completer
from armsim.network.models import unmodelled_reference
from armsim.state import Collections
from armsim.storage.exceptions import BOOT_DIAGNOSTICS_CODES

if TYPE_CHECKING:
    from armsim.state import Subscription, World

GUEST_SPECIALIZED = "specialized"
GUEST_GENERALIZED = "generalized"

HOST_AGENT_UNREACHABLE = "agent-unreachable"
HOST_PROVISIONING_TIMEOUT = "provisioning-timeout"
HOST_FAULTS = (HOST_AGENT_UNREACHABLE, HOST_PROVISIONING_TIMEOUT)
# operations that wait for the guest on its host, so a provisioning-timeout host makes them fail
WAITS_FOR_GUEST = ("vm.create", "vm.update", "vm.start", "vm.restart", "vm.redeploy")

AGENT_VERSION = "2.7.41491.1102"
WRITE_ONLY_OS_PROFILE = ("adminPassword", "customData")


def norm_location(location: str) -> str:
    return location.replace(" ", "").lower()


def now_iso(world: World) -> str:
    from armsim.responses import iso

    return iso(world.clock())


def norm_id(resource_id: str) -> str:
    """ARM accepts resource ids with or without the leading slash (the spec's own examples omit it)."""
    return "/" + resource_id.strip().strip("/")


def _ref_id(obj: Any) -> str | None:
    ref = obj.get("id") if isinstance(obj, dict) else None
    return norm_id(ref) if isinstance(ref, str) and ref.strip("/ ") else None


def _principal_for(resource_id: str, salt: str) -> str:
    """Stable GUID for a user-assigned identity (the same identity keeps its ids when re-attached)."""
    return str(uuid.UUID(hashlib.sha256(f"{salt}:{resource_id.lower()}".encode()).hexdigest()[:32]))


@dataclass
class Disk:
    id: str
    name: str
    resource_group: str
    location: str
    sku: str = "Premium_LRS"
    size_gb: int = 128
    tags: dict[str, str] = field(default_factory=dict)
    zones: list[str] = field(default_factory=list)
    os_type: str | None = None
    hyper_v_generation: str | None = None
    purchase_plan: dict[str, Any] | None = None
    security_type: str | None = None
    creation_data: dict[str, Any] = field(default_factory=lambda: {"createOption": "Empty"})
    extra: dict[str, Any] = field(default_factory=dict)
    managed_by: str | None = None
    disk_state: str = "Unattached"
    provisioning_state: str = "Succeeded"
    time_created: str = ""
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    incremental: bool = False  # snapshots only
    is_snapshot: bool = False
    guest: str | None = None  # hidden: see module docstring
    content: str = field(default_factory=lambda: uuid.uuid4().hex)  # hidden fingerprint
    # performance (disks only): Premium SSD's tier ("P30"), provisioned IOPS and MB/s (see set_performance)
    tier: str | None = None
    iops_read_write: int | None = None
    mbps_read_write: int | None = None
    requested_tier: str | None = None  # hidden: a Premium tier the caller set (kept while at or above the baseline)

    def set_performance(self, props: dict[str, Any] | None = None) -> None:
        """Derive ``tier``, ``diskIOPSReadWrite`` and ``diskMBpsReadWrite`` from the SKU and size, as Azure does
        for Premium SSD, Standard SSD and Standard HDD (the smallest tier whose size is at least the disk's).
        ``props`` are the request's properties: values given there win (a Premium ``tier`` at or above the
        baseline is kept across later writes). SKUs whose performance is provisioned, not derived (PremiumV2_LRS,
        UltraSSD_LRS, anything unknown), keep what they were given."""
        if self.is_snapshot:
            return
        props = props or {}

        def given_int(key: str) -> int | None:
            v = props.get(key)
            return v if isinstance(v, int) and not isinstance(v, bool) else None

        given_tier = props.get("tier") if isinstance(props.get("tier"), str) else None
        iops, mbps = given_int("diskIOPSReadWrite"), given_int("diskMBpsReadWrite")
        tiers = catalog.disk_tiers(self.sku)
        baseline = catalog.baseline_tier(self.sku, self.size_gb)
        if not tiers or baseline is None:
            self.requested_tier = None
            if given_tier is not None:
                self.tier = given_tier
            self.iops_read_write = iops if iops is not None else self.iops_read_write
            self.mbps_read_write = mbps if mbps is not None else self.mbps_read_write
            return
        chosen = baseline
        if catalog.settable_tier(self.sku):
            if given_tier is not None:
                self.requested_tier = given_tier
            wanted = next((t for t in tiers if t.name.lower() == (self.requested_tier or "").lower()), None)
            if wanted is not None and wanted.size_gb > baseline.size_gb:
                chosen = wanted
            self.tier = chosen.name
        else:
            self.requested_tier = self.tier = None
        self.iops_read_write = iops if iops is not None else chosen.iops
        self.mbps_read_write = mbps if mbps is not None else chosen.mbps

    def to_dict(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            **copy.deepcopy(self.extra),
            "creationData": copy.deepcopy(self.creation_data),
            "diskSizeGB": self.size_gb,
            "diskSizeBytes": self.size_gb * 1024**3,
            "timeCreated": self.time_created,
            "provisioningState": self.provisioning_state,
            "uniqueId": self.unique_id,
        }
        if not self.is_snapshot:
            for key, value in (("diskIOPSReadWrite", self.iops_read_write), ("diskMBpsReadWrite", self.mbps_read_write),
                               ("tier", self.tier)):
                if value is not None:
                    props[key] = value
        if self.os_type:
            props["osType"] = self.os_type
        if self.hyper_v_generation:
            props["hyperVGeneration"] = self.hyper_v_generation
        if self.purchase_plan:
            props["purchasePlan"] = copy.deepcopy(self.purchase_plan)
        if self.security_type:
            props["securityProfile"] = {"securityType": self.security_type}
        out: dict[str, Any] = {
            "id": self.id, "name": self.name,
            "type": "Microsoft.Compute/snapshots" if self.is_snapshot else "Microsoft.Compute/disks",
            "location": self.location, "sku": {"name": self.sku, "tier": self.sku.split("_")[0]},
            "properties": props,
        }
        if self.is_snapshot:
            props["incremental"] = self.incremental
        else:
            props["diskState"] = self.disk_state
            if self.managed_by:
                out["managedBy"] = self.managed_by
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.zones:
            out["zones"] = list(self.zones)
        return out


@dataclass
class Image:
    id: str
    name: str
    resource_group: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)
    source_vm: str | None = None
    os_disk: dict[str, Any] = field(default_factory=dict)
    data_disks: list[dict[str, Any]] = field(default_factory=list)
    hyper_v_generation: str = "V1"
    zone_resilient: bool = False
    provisioning_state: str = "Succeeded"
    # hidden: what was captured
    os_guest: str | None = None
    os_content: str = ""
    os_plan: dict[str, Any] | None = None
    data_contents: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "storageProfile": {"osDisk": copy.deepcopy(self.os_disk), "dataDisks": copy.deepcopy(self.data_disks),
                               "zoneResilient": self.zone_resilient},
            "provisioningState": self.provisioning_state,
            "hyperVGeneration": self.hyper_v_generation,
        }
        if self.source_vm:
            props["sourceVirtualMachine"] = {"id": self.source_vm}
        out: dict[str, Any] = {"id": self.id, "name": self.name, "type": "Microsoft.Compute/images",
                               "location": self.location, "properties": props}
        if self.tags:
            out["tags"] = dict(self.tags)
        return out


@dataclass
class Extension:
    id: str
    name: str
    vm_id: str
    location: str
    properties: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    protected: bool = False  # had protectedSettings (stored nowhere: Azure never returns them)
    provisioning_state: str = "Succeeded"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "name": self.name, "type": "Microsoft.Compute/virtualMachines/extensions",
            "location": self.location,
            "properties": {**copy.deepcopy(self.properties), "provisioningState": self.provisioning_state},
        }
        if self.tags:
            out["tags"] = dict(self.tags)
        return out


@dataclass
class HostFault:
    """A faulty host node (hidden). ``armed_for`` names the VM (lower-cased id) whose next placement lands
    on this host; it is cleared once the VM is placed there."""

    host: str
    kind: str
    armed_for: str | None = None


def new_fingerprint() -> str:
    return uuid.uuid4().hex


@dataclass
class VirtualMachine:
    id: str
    name: str
    resource_group: str
    location: str
    properties: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)
    zones: list[str] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None
    extended_location: dict[str, Any] | None = None
    user_data: str | None = None
    power_state: str = "running"
    generalized: bool = False
    provisioning_state: str = "Succeeded"
    provisioning_error: dict[str, Any] | None = None
    vm_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time_created: str = ""
    etag: int = 1
    agent_ready: bool = False
    deleting: bool = False
    busy: str | None = None  # id of the operation in progress on this VM
    host: str | None = None  # hidden: the host node while the VM holds an allocation
    temp_disk: str | None = None  # hidden: content fingerprint of the temporary (resource) disk on that host

    @property
    def os_disk(self) -> dict[str, Any]:
        return self.properties.setdefault("storageProfile", {}).setdefault("osDisk", {})

    @property
    def data_disks(self) -> list[dict[str, Any]]:
        return self.properties.setdefault("storageProfile", {}).setdefault("dataDisks", [])

    @property
    def nics(self) -> list[dict[str, Any]]:
        return self.properties.setdefault("networkProfile", {}).setdefault("networkInterfaces", [])

    @property
    def os_disk_id(self) -> str | None:
        return _ref_id(self.os_disk.get("managedDisk"))

    def disk_ids(self) -> list[str]:
        ids = [self.os_disk_id] + [_ref_id(d.get("managedDisk")) for d in self.data_disks]
        return [i for i in ids if i]

    def shown_power_state(self, world: World) -> str:
        """The power state the instance view shows. A redeploy shows ``updating`` while the VM leaves its host,
        then ``starting`` once it is on the new one (the second half of the operation), then ``running``."""
        if self.power_state == "updating" and self.busy:
            op = world.operations.get(self.busy)
            if op is not None and op.kind == "vm.redeploy" and not op.done and world.clock() >= (op.start + op.end) / 2:
                return "starting"
        return self.power_state

    def statuses(self, world: World) -> list[dict[str, Any]]:
        t = now_iso(world)
        prov = self.provisioning_state.lower()
        if self.provisioning_state == "Failed" and self.provisioning_error:
            code = f"ProvisioningState/failed/{self.provisioning_error.get('code', 'InternalError')}"
            first: dict[str, Any] = {"code": code, "level": "Error", "displayStatus": "Provisioning failed",
                                     "message": self.provisioning_error.get("message", ""), "time": t}
        else:
            first = {"code": f"ProvisioningState/{prov}", "level": "Info",
                     "displayStatus": f"Provisioning {prov}", "time": t}
        power = self.shown_power_state(world)
        out = [first, {"code": f"PowerState/{power}", "level": "Info", "displayStatus": f"VM {power}"}]
        if self.generalized:
            out.append({"code": "OSState/generalized", "level": "Info", "displayStatus": "VM generalized"})
        return out

    def instance_view(self, world: World, state: ComputeState) -> dict[str, Any]:
        view: dict[str, Any] = {
            "computerName": self.properties.get("osProfile", {}).get("computerName", self.name),
            "osName": "Windows Server 2022 Datacenter" if self.os_disk.get("osType") == "Windows" else "ubuntu",
            "hyperVGeneration": "V2" if self.properties.get("securityProfile") else "V1",
            "disks": [{"name": d.name, "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info",
                                                        "displayStatus": "Provisioning succeeded"}]}
                      for d in (state.disks.get(i.lower()) for i in self.disk_ids()) if d is not None],
            "statuses": self.statuses(world),
        }
        if self.power_state == "running" and self.provisioning_state != "Creating":
            if self.agent_ready:
                view["vmAgent"] = {"vmAgentVersion": AGENT_VERSION, "statuses": [{
                    "code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready",
                    "message": "GuestAgent is running and processing the extensions.", "time": now_iso(world)}]}
            else:  # booting; or on a faulty host, where the agent cannot report (real instance views, 2016)
                message = ("VM Agent is unresponsive." if state.host_fault(self.host)
                           else "VM status blob is found but not yet populated.")
                view["vmAgent"] = {"vmAgentVersion": "Unknown", "statuses": [{
                    "code": "ProvisioningState/Unavailable", "level": "Warning", "displayStatus": "Not Ready",
                    "message": message, "time": now_iso(world)}]}
        exts = state.extensions_of(self.id)
        if exts:
            view["extensions"] = [{"name": e.name, "type": e.properties.get("type"),
                                   "typeHandlerVersion": e.properties.get("typeHandlerVersion"),
                                   "statuses": [{"code": f"ProvisioningState/{e.provisioning_state.lower()}",
                                                 "level": "Info"}]} for e in exts]
        return view

    def to_dict(self, world: World, state: ComputeState, *, expand: str = "") -> dict[str, Any]:
        props = copy.deepcopy(self.properties)
        props.update(vmId=self.vm_id, provisioningState=self.provisioning_state, timeCreated=self.time_created)
        storage = props.get("storageProfile") or {}
        for entry in [storage.get("osDisk") or {}, *(storage.get("dataDisks") or [])]:
            managed = entry.get("managedDisk") if isinstance(entry, dict) else None
            disk = state.disks.get((_ref_id(managed) or "").lower())
            if disk is not None and isinstance(managed, dict):  # the disk's own SKU and size, as they are now
                managed["storageAccountType"] = disk.sku
                entry["diskSizeGB"] = disk.size_gb
        props.setdefault("securityProfile", {}).setdefault("securityType", "Standard")
        expands = {e.strip().lower() for e in expand.split(",")}
        if "userdata" in expands and self.user_data is not None:
            props["userData"] = self.user_data
        if "instanceview" in expands:
            props["instanceView"] = self.instance_view(world, state)
        out: dict[str, Any] = {
            "id": self.id, "name": self.name, "type": "Microsoft.Compute/virtualMachines",
            "location": self.location, "etag": f'"{self.etag}"', "properties": props,
        }
        for key, value in (("tags", self.tags), ("zones", self.zones), ("plan", self.plan),
                           ("identity", self.identity), ("extendedLocation", self.extended_location)):
            if value:
                out[key] = copy.deepcopy(value)
        exts = state.extensions_of(self.id)
        if exts:
            out["resources"] = [e.to_dict() for e in exts]
        return out


class ComputeState(Collections):
    """All Microsoft.Compute resources of one subscription, keyed by lower-cased resource id."""

    MODELS = {"vms": VirtualMachine, "disks": Disk, "snapshots": Disk, "images": Image, "extensions": Extension,
              "host_faults": HostFault, **capacity.MODELS}

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.vms: dict[str, VirtualMachine] = {}
        self.disks: dict[str, Disk] = {}
        self.snapshots: dict[str, Disk] = {}
        self.images: dict[str, Image] = {}
        self.extensions: dict[str, Extension] = {}
        self.host_faults: dict[str, HostFault] = {}  # by lower-cased host id; only faulty hosts are kept
        # placement, capacity and quota (armsim.compute.capacity)
        self.availability_sets: dict[str, capacity.AvailabilitySet] = {}
        self.proximity_groups: dict[str, capacity.ProximityPlacementGroup] = {}
        self.placements: dict[str, capacity.Placement] = {}
        self.capacity_limits: dict[str, capacity.CapacityLimit] = {}
        self.allocation_failures: dict[str, capacity.FailureRule] = {}
        self.sku_restrictions: dict[str, capacity.SkuRestriction] = {}
        self.quota_limits: dict[str, capacity.QuotaLimit] = {}

    @property
    def world(self) -> World:
        return self.sub.world

    # --- ids and lookups --------------------------------------------------------------------------
    def rid(self, rg: str, rtype: str, name: str) -> str:
        return f"{self.sub.rg(rg).id}/providers/Microsoft.Compute/{rtype}/{name}"

    def vm(self, rg: str, name: str) -> VirtualMachine:
        self.sub.rg(rg)
        vm = self.vms.get(self.rid(rg, "virtualMachines", name).lower())
        if vm is None:
            raise ResourceNotFound("Microsoft.Compute/virtualMachines", name, rg)
        return vm

    def _get(self, table: dict[str, Any], rg: str, rtype: str, name: str) -> Any:
        self.sub.rg(rg)
        item = table.get(self.rid(rg, rtype, name).lower())
        if item is None:
            raise ResourceNotFound(f"Microsoft.Compute/{rtype}", name, rg)
        return item

    def disk(self, rg: str, name: str) -> Disk:
        return self._get(self.disks, rg, "disks", name)

    def snapshot(self, rg: str, name: str) -> Disk:
        return self._get(self.snapshots, rg, "snapshots", name)

    def image(self, rg: str, name: str) -> Image:
        return self._get(self.images, rg, "images", name)

    def disk_by_id(self, disk_id: str) -> Disk:
        disk = self.disks.get(disk_id.lower())
        if disk is None:
            parts = disk_id.split("/")
            raise NotFound(f"Disk '{parts[-1]}' not found in resource group '{parts[4] if len(parts) > 4 else ''}'.",
                           code="NotFound")
        return disk

    def extensions_of(self, vm_id: str) -> list[Extension]:
        prefix = vm_id.lower() + "/extensions/"
        return [e for k, e in self.extensions.items() if k.startswith(prefix)]

    def vms_in(self, rg: str | None = None) -> list[VirtualMachine]:
        if rg is None:
            return list(self.vms.values())
        self.sub.rg(rg)
        prefix = f"/subscriptions/{self.sub.id}/resourcegroups/{rg}/".lower()
        return [v for k, v in self.vms.items() if k.startswith(prefix)]

    def items_in(self, table: dict[str, Any], rg: str | None) -> list[Any]:
        if rg is None:
            return list(table.values())
        self.sub.rg(rg)
        prefix = f"/subscriptions/{self.sub.id}/resourcegroups/{rg}/".lower()
        return [v for k, v in table.items() if k.startswith(prefix)]

    # --- disks and snapshots ----------------------------------------------------------------------
    def new_disk(self, rg: str, name: str, location: str, **kw: Any) -> Disk:
        disk = Disk(id=self.rid(rg, "disks", name), name=name, resource_group=self.sub.rg(rg).name,
                    location=norm_location(location), time_created=now_iso(self.world), **kw)
        disk.set_performance()
        self.disks[disk.id.lower()] = disk
        return disk

    def put_disk(self, rg: str, name: str, body: dict[str, Any], *, snapshot: bool = False) -> tuple[Disk, bool]:
        """Create or update a disk (or snapshot) from a REST body. Returns (resource, created)."""
        table = self.snapshots if snapshot else self.disks
        rtype = "snapshots" if snapshot else "disks"
        rid = self.rid(rg, rtype, name)
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidParameter("The 'properties' value must be an object.", target="properties")
        existing = table.get(rid.lower())
        if existing is not None:
            return self._update_disk(existing, body, props), False
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise cx.missing_param("location")
        creation = props.get("creationData")
        if not isinstance(creation, dict) or not creation.get("createOption"):
            raise cx.missing_param("creationData.createOption")
        option = str(creation["createOption"])
        sku = (body.get("sku") or {}).get("name") or ("Standard_LRS" if snapshot else "Premium_LRS")
        kw: dict[str, Any] = {"sku": sku, "tags": dict(body.get("tags") or {}), "zones": list(body.get("zones") or []),
                              "creation_data": copy.deepcopy(creation), "incremental": bool(props.get("incremental")),
                              "is_snapshot": snapshot}
        if option == "Empty":
            size = props.get("diskSizeGB")
            if not isinstance(size, int) or size <= 0:
                raise cx.missing_param("diskSizeGB")
            kw["size_gb"] = size
        elif option == "Copy":
            source_id = creation.get("sourceResourceId")
            if not isinstance(source_id, str):
                raise cx.missing_param("creationData.sourceResourceId")
            source_id = norm_id(source_id)
            source = self.disks.get(source_id.lower()) or self.snapshots.get(source_id.lower())
            if source is None:
                raise NotFound(f"Resource {source_id} not found.", code="NotFound")
            if norm_location(source.location) != norm_location(location):
                raise InvalidParameter(
                    f"Source '{source_id}' is in location '{source.location}' but the target is in "
                    f"'{norm_location(location)}'.", target="creationData.sourceResourceId")
            kw.update(size_gb=max(source.size_gb, props.get("diskSizeGB") or 0), os_type=source.os_type,
                      hyper_v_generation=source.hyper_v_generation, purchase_plan=copy.deepcopy(source.purchase_plan),
                      security_type=source.security_type, guest=source.guest, content=source.content)
        elif option == "FromImage":
            kw["size_gb"] = props.get("diskSizeGB") or 127
            kw["guest"] = GUEST_SPECIALIZED
        else:
            raise InvalidParameter(f"createOption '{option}' is not supported by armsim.",
                                   target="creationData.createOption")
        for key, attr in (("osType", "os_type"), ("hyperVGeneration", "hyper_v_generation")):
            if props.get(key):
                kw[attr] = props[key]
        if isinstance(props.get("purchasePlan"), dict):
            kw["purchase_plan"] = props["purchasePlan"]
        if isinstance(props.get("securityProfile"), dict) and props["securityProfile"].get("securityType"):
            kw["security_type"] = props["securityProfile"]["securityType"]
        kw["extra"] = {k: v for k, v in props.items() if k in ("encryption", "networkAccessPolicy",
                       "publicNetworkAccess", "supportsHibernation", "burstingEnabled", "maxShares")}
        item = Disk(id=rid, name=name, resource_group=self.sub.rg(rg).name, location=norm_location(location),
                    time_created=now_iso(self.world), provisioning_state="Updating" if not snapshot else "Creating",
                    **kw)
        item.set_performance(props)
        table[rid.lower()] = item
        return item, True

    def _update_disk(self, disk: Disk, body: dict[str, Any], props: dict[str, Any]) -> Disk:
        """PUT/PATCH of an existing disk (or snapshot): tags, a larger size, another SKU. Checked before anything
        changes: no shrinking; a disk's SKU changes only while it is unattached or its VM is deallocated."""
        asked = props.get("diskSizeGB")
        new_size = asked if isinstance(asked, int) and not isinstance(asked, bool) else disk.size_gb
        resize = new_size != disk.size_gb
        if new_size < disk.size_gb:
            raise cx.resized_down(disk.name, disk.size_gb, new_size)
        sku = body.get("sku")
        new_sku = sku.get("name") if isinstance(sku, dict) and isinstance(sku.get("name"), str) and sku["name"] \
            else None
        sku_change = new_sku is not None and new_sku.lower() != disk.sku.lower()
        if sku_change and not disk.is_snapshot and disk.managed_by:
            vm = self.vms.get(disk.managed_by.lower())
            if vm is not None and vm.power_state != "deallocated":
                raise cx.disk_sku_change_attached(disk.name, vm.id)
        if "tags" in body:
            disk.tags = dict(body.get("tags") or {})
        disk.size_gb = new_size
        if new_sku is not None:
            disk.sku = new_sku
        if resize or sku_change or any(k in props for k in ("tier", "diskIOPSReadWrite", "diskMBpsReadWrite")):
            disk.set_performance(props)
        return disk

    def delete_disk(self, rg: str, name: str) -> Disk | None:
        disk = self.disks.get(self.rid(rg, "disks", name).lower())
        if disk is None:
            return None
        if disk.managed_by:
            raise cx.disk_attached(disk.name, disk.managed_by)
        return disk

    # --- images -----------------------------------------------------------------------------------
    def put_image(self, rg: str, name: str, body: dict[str, Any]) -> tuple[Image, bool]:
        rid = self.rid(rg, "images", name)
        existing = self.images.get(rid.lower())
        if existing is not None:
            if "tags" in body:
                existing.tags = dict(body.get("tags") or {})
            return existing, False
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise cx.missing_param("location")
        props = body.get("properties") or {}
        image = Image(id=rid, name=name, resource_group=self.sub.rg(rg).name, location=norm_location(location),
                      tags=dict(body.get("tags") or {}), provisioning_state="Creating",
                      hyper_v_generation=props.get("hyperVGeneration") or "V1")
        source_id = _ref_id(props.get("sourceVirtualMachine"))
        if source_id:
            vm = self.vms.get(source_id.lower())
            if vm is None:
                raise NotFound(f"Resource {source_id} not found.", code="NotFound")
            if not vm.generalized:
                raise cx.requires_generalized("Create Image", vm.name)
            if (vm.properties.get("securityProfile") or {}).get("securityType") == "TrustedLaunch":
                raise cx.trusted_launch_image()
            if vm.location != image.location:
                raise InvalidParameter(f"The source virtual machine '{source_id}' must be in the same "
                                       f"region as the image ('{image.location}').", target="sourceVirtualMachine")
            os_disk = self.disk_by_id(vm.os_disk_id or "")
            image.source_vm = vm.id
            image.os_disk = {"osType": vm.os_disk.get("osType") or os_disk.os_type, "osState": "Generalized",
                             "managedDisk": {"id": os_disk.id}, "caching": vm.os_disk.get("caching", "ReadWrite"),
                             "diskSizeGB": os_disk.size_gb, "storageAccountType": os_disk.sku}
            image.os_guest, image.os_content, image.os_plan = os_disk.guest, os_disk.content, os_disk.purchase_plan
            for dd in vm.data_disks:
                d = self.disks.get((_ref_id(dd.get("managedDisk")) or "").lower())
                if d is None:
                    continue
                image.data_disks.append({"lun": dd["lun"], "managedDisk": {"id": d.id},
                                         "caching": dd.get("caching", "None"), "diskSizeGB": d.size_gb,
                                         "storageAccountType": d.sku})
                image.data_contents[str(dd["lun"])] = d.content
        else:
            sp = props.get("storageProfile") or {}
            osd = sp.get("osDisk") if isinstance(sp, dict) else None
            if not isinstance(osd, dict):
                raise cx.missing_param("storageProfile.osDisk")
            src_id = _ref_id(osd.get("managedDisk")) or _ref_id(osd.get("snapshot"))
            src = (self.disks.get((src_id or "").lower()) or self.snapshots.get((src_id or "").lower()))
            if src is None:
                raise NotFound(f"Resource {src_id} not found.", code="NotFound")
            image.os_disk = {k: v for k, v in osd.items()}
            image.os_disk.setdefault("diskSizeGB", src.size_gb)
            image.os_guest, image.os_content, image.os_plan = src.guest, src.content, src.purchase_plan
        self.images[rid.lower()] = image
        return image, True

    # --- virtual machines -------------------------------------------------------------------------
    def guard(self, vm: VirtualMachine, operation: str, *, allow_generalized: bool = False) -> None:
        """Refuse any operation on a VM being deleted, busy, or (unless allowed) generalized."""
        if vm.deleting:
            raise cx.marked_for_deletion(operation, vm.name)
        if vm.busy is not None:
            op = self.world.operations.get(vm.busy)
            if op is not None and not op.done:
                raise cx.operation_in_progress(operation, vm.name)
        if vm.generalized and not allow_generalized:
            raise cx.generalized(operation, vm.name)

    def put_vm(self, rg: str, name: str, body: dict[str, Any], *, patch: bool = False,
               if_match: str | None = None, if_none_match: str | None = None,
               ) -> tuple[VirtualMachine, bool, dict[str, Any] | None]:
        """Create (PUT) or update (PUT/PATCH) a VM; every rule is checked before anything changes.

        Returns (vm, created, failure): ``failure`` is the error the operation will end with although
        the request was accepted (e.g. OSProvisioningTimedOut for an image that was never sysprepped).
        """
        rid = self.rid(rg, "virtualMachines", name)
        existing = self.vms.get(rid.lower())
        if existing is not None:
            if if_none_match == "*":
                raise ArmError(f"The resource '{rid}' already exists.", code="PreconditionFailed", status=412)
            if if_match not in (None, "*") and if_match.strip('"') != str(existing.etag):
                raise ArmError("The specified precondition 'If-Match' failed.", code="PreconditionFailed",
                               status=412)
            self.guard(existing, "update")
            self._check_user_assigned(rid, body.get("identity"))
            self._update_vm(existing, body, patch=patch)
            return existing, False, None
        if patch:
            raise ResourceNotFound("Microsoft.Compute/virtualMachines", name, rg)
        if if_match not in (None,):
            raise ArmError("The specified precondition 'If-Match' failed.", code="PreconditionFailed", status=412)
        self._check_user_assigned(rid, body.get("identity"))
        vm, failure = self._create_vm(rg, name, rid, body)
        return vm, True, failure

    def _create_vm(self, rg: str, name: str, rid: str, body: dict[str, Any],
                   ) -> tuple[VirtualMachine, dict[str, Any] | None]:
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise cx.missing_param("location")
        location = norm_location(location)
        props = copy.deepcopy(body.get("properties") or {})
        if not isinstance(props, dict):
            raise InvalidParameter("The 'properties' value must be an object.", target="properties")
        if not isinstance((props.get("hardwareProfile") or {}).get("vmSize"), str):
            raise cx.missing_param("hardwareProfile.vmSize")
        storage = props.get("storageProfile")
        if not isinstance(storage, dict) or not isinstance(storage.get("osDisk", {}), dict):
            raise cx.missing_param("storageProfile")
        os_disk = storage.setdefault("osDisk", {})
        option = os_disk.get("createOption")
        zones = [str(z) for z in body.get("zones") or []]
        plan = body.get("plan") if isinstance(body.get("plan"), dict) else None
        security_type = (props.get("securityProfile") or {}).get("securityType") or "Standard"
        os_profile = props.get("osProfile")
        plans: list[tuple[str, Any]] = []  # deferred effects, applied only once everything validated
        guest: str | None
        image_fail: dict[str, Any] | None = None

        if option == "Attach":
            if os_profile is not None:
                raise cx.not_allowed_param("osProfile")
            if storage.get("imageReference") is not None:
                raise InvalidParameter("Parameter 'imageReference' is not allowed when the OS disk is attached.",
                                       target="imageReference")
            if not os_disk.get("osType"):
                raise cx.missing_param("osDisk.osType")
            disk_id = _ref_id(os_disk.get("managedDisk"))
            if not disk_id:
                raise cx.missing_param("osDisk.managedDisk.id")
            disk = self.disk_by_id(disk_id)
            self._check_attachable(disk, rid, location, zones)
            self._check_plan(disk.purchase_plan, plan, rid)
            disk_type = disk.security_type or "Standard"
            if (disk_type.startswith("ConfidentialVM") and security_type != "ConfidentialVM") or (
                    not disk_type.startswith("ConfidentialVM") and disk_type != security_type
                    and not (disk_type == "Standard" and security_type == "Standard")):
                raise cx.security_type_mismatch()
            os_disk["name"] = disk.name
            os_disk["managedDisk"] = {"id": disk.id, "storageAccountType": disk.sku}
            os_disk["diskSizeGB"] = disk.size_gb
            guest = disk.guest
            plans.append(("attach", disk))
        elif option == "FromImage":
            ref = storage.get("imageReference")
            if not isinstance(ref, dict):
                raise cx.missing_param("imageReference")
            if not isinstance(os_profile, dict):
                raise cx.missing_param("osProfile")
            self._check_os_profile(os_profile, os_disk, ref)
            image_id = ref.get("id")
            os_name = os_disk.get("name") or f"{name}_OsDisk_1_{uuid.uuid4().hex}"
            if self.disks.get(self.rid(rg, "disks", os_name).lower()) is not None:
                raise ArmError(f"A disk named '{os_name}' already exists in resource group '{rg}'.",
                               code="ConflictingUserInput", status=409, target="osDisk.name")
            sku = (os_disk.get("managedDisk") or {}).get("storageAccountType") or "Premium_LRS"
            if image_id:
                image = self.images.get(str(image_id).lower())
                if image is None or image.location != location:
                    raise cx.image_not_found(str(image_id), location)
                self._check_plan(image.os_plan, plan, rid)
                os_disk.setdefault("osType", image.os_disk.get("osType"))
                # A sysprepped guest runs setup with the osProfile; an unsysprepped one boots as it was, its
                # agent runs but never reports provisioning: Azure gives up with OSProvisioningTimedOut.
                if image.os_guest != GUEST_GENERALIZED:
                    image_fail = cx.os_provisioning_timed_out(name, agent_running=True)
                disk_kw: dict[str, Any] = {"content": image.os_content, "guest": GUEST_SPECIALIZED,
                                           "purchase_plan": copy.deepcopy(image.os_plan),
                                           "size_gb": os_disk.get("diskSizeGB") or image.os_disk.get("diskSizeGB", 127),
                                           "hyper_v_generation": image.hyper_v_generation}
                for dd in image.data_disks:
                    plans.append(("image-data", (dd, image.data_contents.get(str(dd["lun"]), uuid.uuid4().hex))))
            else:
                platform = vmimages.check_create(self.sub, rid, ref, plan)
                os_disk.setdefault("osType", platform.os_type if platform else "Linux"
                                   if "ubuntu" in str(ref.get("offer", "")).lower()
                                   or "linux" in str(ref.get("offer", "")).lower() else "Windows")
                disk_kw = {"guest": GUEST_SPECIALIZED, "size_gb": os_disk.get("diskSizeGB") or 127,
                           "hyper_v_generation": "V2" if security_type == "TrustedLaunch" else "V1"}
                if plan:
                    disk_kw["purchase_plan"] = {k: plan.get(k) for k in ("name", "publisher", "product")}
            if security_type != "Standard":
                disk_kw["security_type"] = security_type
            os_disk["name"] = os_name
            os_disk["diskSizeGB"] = disk_kw["size_gb"]
            plans.append(("new-os", (os_name, sku, disk_kw)))
            guest = GUEST_SPECIALIZED
        else:
            raise InvalidParameter(f"The value '{option}' of parameter 'osDisk.createOption' is not valid.",
                                   target="osDisk.createOption")
        os_disk.setdefault("caching", "ReadWrite")
        os_disk.setdefault("deleteOption", "Detach")
        os_disk.setdefault("createOption", option)
        plans += self._plan_data_disks(rg, name, rid, location, zones, storage)
        net_plans = self.sub.network.plan_vm_nics(rid, location, props)
        if os_profile is not None:
            props["osProfile"] = {k: v for k, v in os_profile.items() if k not in WRITE_ONLY_OS_PROFILE}
            props["osProfile"].setdefault("secrets", [])
            props["osProfile"].setdefault("allowExtensionOperations", True)
        user_data = props.pop("userData", None)
        identity = self._identity(body.get("identity"), None)
        del guest  # the guest is read from the OS disk at boot

        # everything validated: apply
        vm = VirtualMachine(
            id=rid, name=name, resource_group=self.sub.rg(rg).name, location=location, properties=props,
            tags=dict(body.get("tags") or {}), zones=zones, plan=plan, identity=identity,
            extended_location=body.get("extendedLocation"), user_data=user_data, power_state="starting",
            provisioning_state="Creating", time_created=now_iso(self.world),
        )
        for kind, arg in plans:
            if kind == "attach":
                self._attach(arg, vm)
            elif kind == "new-os":
                os_name, sku, disk_kw = arg
                disk = self.new_disk(rg, os_name, location, sku=sku, os_type=os_disk.get("osType"), zones=zones,
                                     creation_data={"createOption": "FromImage",
                                                    **({"imageReference": storage["imageReference"]}
                                                       if storage.get("imageReference") else {})},
                                     **disk_kw)
                os_disk["managedDisk"] = {"id": disk.id, "storageAccountType": disk.sku}
                self._attach(disk, vm)
            elif kind == "new-data":
                dd, dname, content = arg
                disk = self.new_disk(rg, dname, location, sku=dd["managedDisk"]["storageAccountType"],
                                     size_gb=dd["diskSizeGB"], zones=zones, content=content)
                dd["managedDisk"]["id"] = disk.id
                self._attach(disk, vm)
            elif kind == "attach-data":
                self._attach(arg, vm)
            elif kind == "image-data":
                idd, content = arg
                lun = idd["lun"]
                entry = next((d for d in vm.data_disks if d.get("lun") == lun), None)
                if entry is not None and entry.get("createOption") == "Attach":
                    continue  # unconfirmed: an existing disk attached at an image LUN replaces the image's disk
                if entry is None:
                    entry = {"lun": lun, "createOption": "FromImage", "caching": idd.get("caching", "None")}
                    vm.data_disks.append(entry)
                dname = entry.get("name") or f"{name}_disk{lun + 2}_{uuid.uuid4().hex}"
                disk = self.new_disk(rg, dname, location, sku=idd.get("storageAccountType", "Premium_LRS"),
                                     size_gb=idd.get("diskSizeGB", 32), zones=zones, content=content)
                entry.update(name=dname, managedDisk={"id": disk.id, "storageAccountType": disk.sku},
                             diskSizeGB=disk.size_gb)
                entry.setdefault("deleteOption", "Detach")
                entry.setdefault("toBeDetached", False)
                self._attach(disk, vm)
        self.sub.network.attach_vm_nics(rid, net_plans)
        self.vms[rid.lower()] = vm
        self.place(vm, self.allocate(vm))
        return vm, image_fail

    def _check_os_profile(self, os_profile: dict[str, Any], os_disk: dict[str, Any], ref: dict[str, Any]) -> None:
        if not os_profile.get("adminUsername"):
            raise cx.missing_param("osProfile.adminUsername")
        computer = str(os_profile.get("computerName") or "")
        if not computer:
            raise cx.missing_param("osProfile.computerName")
        linux = os_profile.get("linuxConfiguration")
        if isinstance(linux, dict):
            keys = ((linux.get("ssh") or {}).get("publicKeys")) or []
            if linux.get("disablePasswordAuthentication") and not keys:
                raise InvalidParameter("Authentication using either SSH or by user name and password must be "
                                       "enabled in Linux profile.", target="linuxConfiguration")
            if not keys and not os_profile.get("adminPassword"):
                raise cx.missing_param("osProfile.adminPassword")
        else:
            if not os_profile.get("adminPassword"):
                raise cx.missing_param("osProfile.adminPassword")
            if len(computer) > 15 or computer.isdigit():
                raise InvalidParameter(
                    "Windows computer name cannot be more than 15 characters long, be entirely numeric, or contain "
                    "the following characters: ` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : . ' \" , < > / ?.",
                    target="osProfile.computerName")

    def _check_attachable(self, disk: Disk, vm_id: str, location: str, zones: list[str]) -> None:
        if disk.managed_by and disk.managed_by.lower() != vm_id.lower():
            raise cx.disk_owned(disk.id, disk.managed_by)
        if disk.location != location:
            raise InvalidParameter(f"Disk '{disk.id}' is in location '{disk.location}' but the virtual machine "
                                   f"is in location '{location}'.", target="managedDisk.id")
        if disk.zones and sorted(disk.zones) != sorted(zones):
            raise InvalidParameter(f"Disk '{disk.id}' is in zone {','.join(disk.zones)} and cannot be attached to "
                                   f"a virtual machine in zone {','.join(zones) or '(none)'}.", target="zones")

    def _check_plan(self, disk_plan: dict[str, Any] | None, vm_plan: dict[str, Any] | None, vm_id: str) -> None:
        if disk_plan and not vm_plan:
            raise cx.plan_required(vm_id)
        if vm_plan and not disk_plan:
            raise cx.plan_not_needed()
        if disk_plan and vm_plan and any(
                str(disk_plan.get(k, "")).lower() != str(vm_plan.get(k, "")).lower()
                for k in ("name", "publisher", "product")):
            raise cx.plan_mismatch()

    def _plan_data_disks(self, rg: str, name: str, vm_id: str, location: str, zones: list[str],
                         storage: dict[str, Any]) -> list[tuple[str, Any]]:
        plans: list[tuple[str, Any]] = []
        luns: set[int] = set()
        for i, dd in enumerate(storage.setdefault("dataDisks", []) or []):
            if not isinstance(dd, dict) or not isinstance(dd.get("lun"), int):
                raise cx.missing_param(f"dataDisks[{i}].lun")
            if dd["lun"] in luns:
                raise InvalidParameter(f"Duplicate LUN {dd['lun']} in dataDisks.", target=f"dataDisks[{i}].lun")
            luns.add(dd["lun"])
            dd.setdefault("caching", "None")
            dd.setdefault("deleteOption", "Detach")
            dd.setdefault("toBeDetached", False)
            option = dd.get("createOption")
            if option == "Attach":
                did = _ref_id(dd.get("managedDisk"))
                if not did:
                    raise cx.missing_param(f"dataDisks[{i}].managedDisk.id")
                disk = self.disk_by_id(did)
                self._check_attachable(disk, vm_id, location, zones)
                dd.update(name=disk.name, diskSizeGB=disk.size_gb,
                          managedDisk={"id": disk.id, "storageAccountType": disk.sku})
                plans.append(("attach-data", disk))
            elif option == "Empty":
                if not isinstance(dd.get("diskSizeGB"), int):
                    raise cx.missing_param(f"dataDisks[{i}].diskSizeGB")
                dname = dd.get("name") or f"{name}_disk{dd['lun'] + 2}_{uuid.uuid4().hex}"
                dd["name"] = dname
                dd["managedDisk"] = {"storageAccountType": (dd.get("managedDisk") or {}).get(
                    "storageAccountType", "Premium_LRS")}
                plans.append(("new-data", (dd, dname, uuid.uuid4().hex)))
            elif option == "FromImage":
                pass  # filled from the image's data disks
            else:
                raise InvalidParameter(f"The value '{option}' of parameter 'dataDisks[{i}].createOption' is not "
                                       "valid.", target=f"dataDisks[{i}].createOption")
        return plans

    def _os_disk_swap(self, vm: VirtualMachine, old_os: dict[str, Any], new_os: dict[str, Any]) -> Disk | None:
        """The disk an update swaps in as the OS disk (``osDisk.managedDisk.id`` names another disk), checked:
        the VM is deallocated, the disk exists, is free, in the VM's location and zone, of the same OS type."""
        old_id, new_id = _ref_id(old_os.get("managedDisk")), _ref_id(new_os.get("managedDisk"))
        if not old_id or not new_id or old_id.lower() == new_id.lower():
            return None
        if vm.power_state != "deallocated":
            raise cx.os_disk_swap_needs_deallocation(vm.name)
        disk = self.disk_by_id(new_id)
        self._check_attachable(disk, vm.id, vm.location, vm.zones)
        os_type = old_os.get("osType")
        if disk.os_type and os_type and disk.os_type.lower() != str(os_type).lower():
            raise InvalidParameter(f"The OS type '{disk.os_type}' of disk '{disk.name}' does not match the OS type "
                                   f"'{os_type}' of the virtual machine.", target="osDisk.managedDisk.id")
        new_os.update(name=disk.name, managedDisk={**(new_os.get("managedDisk") or {}), "id": disk.id,
                                                   "storageAccountType": disk.sku})
        return disk

    def _attach(self, disk: Disk, vm: VirtualMachine) -> None:
        disk.managed_by = vm.id
        disk.disk_state = "Attached"

    def _check_user_assigned(self, rid: str, requested: Any) -> None:
        """armsim does not model user-assigned identities: one is taken on trust once its resource group
        exists (the VM write's linked access check, assign/action on it, is in armsim.authorization.rbac)."""
        ids = requested.get("userAssignedIdentities") if isinstance(requested, dict) else None
        for uami, value in (ids.items() if isinstance(ids, dict) else ()):
            if value is not None and not unmodelled_reference(self.sub, uami,
                                                              "Microsoft.ManagedIdentity/userAssignedIdentities"):
                raise cx.identity_not_found(rid, uami)

    def _identity(self, requested: Any, previous: dict[str, Any] | None) -> dict[str, Any] | None:
        if not isinstance(requested, dict) or not requested.get("type") or requested.get("type") == "None":
            return None
        kinds = {k.strip().lower() for k in str(requested["type"]).split(",")}
        out: dict[str, Any] = {"type": requested["type"]}
        if "systemassigned" in kinds:
            keep = previous if previous and previous.get("principalId") else None
            out["principalId"] = keep["principalId"] if keep else str(uuid.uuid4())
            out["tenantId"] = self.sub.tenant_id
        if "userassigned" in kinds:
            ids = requested.get("userAssignedIdentities") or {}
            out["userAssignedIdentities"] = {
                i: {"principalId": _principal_for(i, "principal"), "clientId": _principal_for(i, "client")}
                for i in ids}
        return out

    def _update_vm(self, vm: VirtualMachine, body: dict[str, Any], *, patch: bool) -> None:
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidParameter("The 'properties' value must be an object.", target="properties")
        new = _merge(vm.properties, props) if patch else copy.deepcopy(props)
        old_os, new_os = vm.properties.get("storageProfile", {}).get("osDisk", {}), \
            (new.get("storageProfile") or {}).get("osDisk") or {}
        if new_os.get("createOption") not in (None, old_os.get("createOption")):
            raise ArmError("Changing property 'osDisk.createOption' is not allowed.", code="PropertyChangeNotAllowed",
                           status=409, target="osDisk.createOption")
        if isinstance(new.get("osProfile"), dict):
            for key in ("computerName", "adminUsername"):
                if key in new["osProfile"] and new["osProfile"][key] != vm.properties.get("osProfile", {}).get(key):
                    raise ArmError("Changing property 'osProfile' is not allowed.", code="PropertyChangeNotAllowed",
                                   status=409, target="osProfile")
            new["osProfile"] = {k: v for k, v in new["osProfile"].items() if k not in WRITE_ONLY_OS_PROFILE}
        # keep what the client may omit on PUT
        storage = new.setdefault("storageProfile", {})
        # the attached OS disk stays unless the request names another one (a re-sent create body has no id)
        merged_os = _merge(old_os, {k: v for k, v in new_os.items() if v is not None})
        storage["osDisk"] = merged_os
        swapped = self._os_disk_swap(vm, old_os, merged_os)
        if "imageReference" in vm.properties.get("storageProfile", {}):
            storage.setdefault("imageReference", vm.properties["storageProfile"]["imageReference"])
        old_data = {d.get("lun"): d for d in vm.data_disks}
        requested = [d for d in storage.get("dataDisks") or [] if isinstance(d, dict)]
        added = [d for d in requested if d.get("lun") not in old_data]
        plans = self._plan_data_disks(vm.resource_group, vm.name, vm.id, vm.location, vm.zones, {"dataDisks": added})
        # disks already attached keep their identity; caching, deleteOption and toBeDetached may change
        storage["dataDisks"] = [{**old_data[d["lun"]], **d} if d.get("lun") in old_data else d for d in requested]
        new_data = storage.get("dataDisks") or []
        kept_luns = {d.get("lun") for d in new_data if not d.get("toBeDetached")}
        if "networkProfile" in new:
            net_plans = self.sub.network.plan_vm_nics(vm.id, vm.location, new)
        else:
            new["networkProfile"] = copy.deepcopy(vm.properties.get("networkProfile", {}))
            net_plans = None
        user_data = new.pop("userData", None)
        # apply
        for lun, d in old_data.items():
            if lun not in kept_luns:
                disk = self.disks.get((_ref_id(d.get("managedDisk")) or "").lower())
                if disk is not None:
                    disk.managed_by, disk.disk_state = None, "Unattached"
        storage["dataDisks"] = [d for d in new_data if not d.get("toBeDetached")]
        if swapped is not None:
            released = self.disks.get((_ref_id(old_os.get("managedDisk")) or "").lower())
            if released is not None:
                released.managed_by, released.disk_state = None, "Unattached"
            self._attach(swapped, vm)
            swapped.disk_state = "Reserved"  # a deallocated VM's disks
        for kind, arg in plans:
            if kind == "attach-data":
                self._attach(arg, vm)
            elif kind == "new-data":
                dd, dname, content = arg
                disk = self.new_disk(vm.resource_group, dname, vm.location,
                                     sku=dd["managedDisk"]["storageAccountType"], size_gb=dd["diskSizeGB"],
                                     zones=vm.zones, content=content)
                dd["managedDisk"]["id"] = disk.id
                self._attach(disk, vm)
        if net_plans is not None:
            self.sub.network.detach_vm_nics(vm.id)
            self.sub.network.attach_vm_nics(vm.id, net_plans)
        if user_data is not None:
            vm.user_data = user_data
        if "tags" in body:
            vm.tags = dict(body.get("tags") or {})
        if "identity" in body:
            vm.identity = self._identity(body.get("identity"), vm.identity)
        vm.properties = new
        vm.etag += 1
        vm.provisioning_state = "Updating"

    # --- hosts ------------------------------------------------------------------------------------
    def allocate(self, vm: VirtualMachine) -> str:
        """A host for the VM's next placement: one armed for it (a fault set while it had no host), else a new one.
        Every placement gets a host the VM was never on."""
        key = vm.id.lower()
        for fault in self.host_faults.values():
            if fault.armed_for == key:
                fault.armed_for = None
                return fault.host
        return str(uuid.uuid4())

    def place(self, vm: VirtualMachine, host: str) -> None:
        """The VM now runs on ``host``; on a host it was not on, its temporary disk is a new, empty one."""
        if vm.host != host or vm.temp_disk is None:
            vm.host, vm.temp_disk = host, new_fingerprint()

    def release(self, vm: VirtualMachine) -> None:
        vm.host = vm.temp_disk = None

    def host_fault(self, host: str | None) -> str | None:
        fault = self.host_faults.get((host or "").lower())
        return fault.kind if fault is not None else None

    def guest_failure(self, vm: VirtualMachine, kind: str, host: str | None) -> dict[str, Any] | None:
        """The error an operation of ``kind`` ends with because it completes on a provisioning-timeout host."""
        if kind in WAITS_FOR_GUEST and self.host_fault(host) == HOST_PROVISIONING_TIMEOUT:
            return cx.os_provisioning_timed_out(vm.name, agent_running=False)
        return None

    def set_host_fault(self, vm_id: str, kind: str) -> dict[str, Any]:
        """Make the VM's host faulty, or, for a VM without a host (deallocated or not created yet), arm the fault
        for its next placement. Returns what was done; the caller replays a provisioning if needed."""
        if kind not in HOST_FAULTS:
            raise BadRequest(f"Unknown host fault kind '{kind}'; use {' or '.join(HOST_FAULTS)}.")
        vm = self.vms.get(vm_id.lower())
        if vm is None or vm.host is None:
            for fault in self.host_faults.values():  # a new fault replaces one armed before
                if fault.armed_for == vm_id.lower():
                    fault.armed_for = None
            host = str(uuid.uuid4())
            self.host_faults[host] = HostFault(host=host, kind=kind, armed_for=vm_id.lower())
            return {"vm": vm.id if vm else vm_id, "kind": kind, "host": host, "armed": True}
        self.host_faults[vm.host.lower()] = HostFault(host=vm.host, kind=kind)
        vm.agent_ready = False
        return {"vm": vm.id, "kind": kind, "host": vm.host, "armed": False}

    # --- lifecycle --------------------------------------------------------------------------------
    def boot(self, vm: VirtualMachine) -> None:
        """The VM is running: its guest boots and, if it can, its agent reports Ready after boot time."""
        vm.agent_ready = False
        self.world.operations.start(self.world, subscription=self.sub.id, kind="vm.boot", target=vm.id,
                                    namespace="compute", location=vm.location, internal=True)

    def set_disk_states(self, vm: VirtualMachine, state: str) -> None:
        for did in vm.disk_ids():
            disk = self.disks.get(did.lower())
            if disk is not None and disk.managed_by and disk.managed_by.lower() == vm.id.lower():
                disk.disk_state = state

    def remove_vm(self, vm: VirtualMachine) -> None:
        """The VM is gone: disks and NICs whose deleteOption is Delete go with it, the rest are detached."""
        for entry in [vm.os_disk, *vm.data_disks]:
            disk = self.disks.get((_ref_id(entry.get("managedDisk")) or "").lower())
            if disk is None:
                continue
            if entry.get("deleteOption") == "Delete":
                del self.disks[disk.id.lower()]
            else:
                disk.managed_by, disk.disk_state = None, "Unattached"
        self.sub.network.release_vm_nics(vm.id, vm.nics)
        for ext in self.extensions_of(vm.id):
            del self.extensions[ext.id.lower()]
        self.vms.pop(vm.id.lower(), None)

    def put_extension(self, rg: str, vm_name: str, name: str, body: dict[str, Any]) -> tuple[Extension, bool]:
        try:
            vm = self.vm(rg, vm_name)
        except ResourceNotFound:
            raise ParentResourceNotFound(vm_name) from None
        self.guard(vm, "Create or Update Extension")
        props = body.get("properties") or {}
        if not isinstance(props, dict) or not props.get("publisher") or not props.get("type"):
            raise cx.missing_param("properties.publisher")
        rid = f"{vm.id}/extensions/{name}"
        existing = self.extensions.get(rid.lower())
        ext = Extension(id=rid, name=name, vm_id=vm.id, location=vm.location,
                        properties={k: v for k, v in props.items() if k not in ("protectedSettings",
                                                                                 "protectedSettingsFromKeyVault")},
                        tags=dict(body.get("tags") or {}),
                        protected=bool(props.get("protectedSettings") or props.get("protectedSettingsFromKeyVault")),
                        provisioning_state="Creating" if existing is None else "Updating")
        self.extensions[rid.lower()] = ext
        return ext, existing is None


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386): objects merge, arrays and scalars replace, null removes."""
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# --- operation completers: what happens when an operation's time is up -----------------------------


def _vm(world: World, op: Operation) -> tuple[ComputeState, VirtualMachine | None]:
    state = world.sub(op.subscription).compute
    return state, state.vms.get(op.target.lower())


@completer("vm.create")
def _created(world: World, op: Operation) -> None:
    state, vm = _vm(world, op)
    if vm is None:
        return
    vm.busy = None
    if op.succeeded:
        vm.provisioning_state, vm.power_state = "Succeeded", "running"
        state.set_disk_states(vm, "Attached")
        state.boot(vm)
    else:
        vm.provisioning_state, vm.provisioning_error = "Failed", op.error
        code = (op.error or {}).get("code")
        if code == "OSProvisioningTimedOut":
            vm.power_state = "running"  # the guest boots with whatever accounts the disk had
            state.boot(vm)
        elif code in cx.ALLOCATION_CODES or code in BOOT_DIAGNOSTICS_CODES:  # never placed: left deallocated
            state.release(vm)
            vm.power_state = "deallocated"
            state.set_disk_states(vm, "Reserved")
        else:
            vm.power_state = "stopped"


@completer("vm.update")
def _updated(world: World, op: Operation) -> None:
    _, vm = _vm(world, op)
    if vm is not None:
        vm.busy = None
        vm.provisioning_state = "Succeeded" if op.succeeded else "Failed"
        vm.provisioning_error = None if op.succeeded else op.error
        old_size = op.args.get("old_size")  # a resize that could not be placed keeps the old size
        if old_size and (op.error or {}).get("code") in cx.ALLOCATION_CODES:
            vm.properties.setdefault("hardwareProfile", {})["vmSize"] = old_size


@completer("vm.boot")
def _booted(world: World, op: Operation) -> None:
    state, vm = _vm(world, op)
    if vm is None or vm.power_state != "running":
        return
    disk = state.disks.get((vm.os_disk_id or "").lower())
    vm.agent_ready = disk is not None and disk.guest == GUEST_SPECIALIZED and state.host_fault(vm.host) is None


def _power(target_state: str, boots: bool) -> Any:
    def done(world: World, op: Operation) -> None:
        state, vm = _vm(world, op)
        if vm is None:
            return
        vm.busy = None
        host = op.args.get("host")  # where the operation puts the VM (a new host for start/redeploy)
        if not op.succeeded:
            vm.provisioning_state, vm.provisioning_error = "Failed", op.error
            if op.kind in WAITS_FOR_GUEST and (op.error or {}).get("code") == "OSProvisioningTimedOut" and host:
                # the VM was placed and its guest boots; only the host never hears from it
                state.place(vm, host)
                vm.power_state = "running"
                state.set_disk_states(vm, "Attached")
                state.boot(vm)
            else:
                vm.power_state = op.args.get("previous", vm.power_state)
            return
        vm.provisioning_state, vm.provisioning_error = "Succeeded", None
        vm.power_state = target_state
        if target_state == "deallocated":
            state.release(vm)
            state.set_disk_states(vm, "Reserved")
        elif target_state == "running":
            if host:
                state.place(vm, host)
            state.set_disk_states(vm, "Attached")
        if boots:
            state.boot(vm)
        else:
            vm.agent_ready = False

    return done


for _kind, _target, _boots in (("vm.start", "running", True), ("vm.restart", "running", True),
                               ("vm.redeploy", "running", True), ("vm.deallocate", "deallocated", False),
                               ("vm.powerOff", "stopped", False)):
    completer(_kind)(_power(_target, _boots))


@completer("vm.delete")
def _deleted(world: World, op: Operation) -> None:
    state, vm = _vm(world, op)
    if vm is None:
        return
    vm.busy = None
    if op.succeeded:
        state.remove_vm(vm)
    else:
        vm.deleting, vm.provisioning_state, vm.provisioning_error = False, "Failed", op.error


def _finish_table(table: str, *, output: bool = False) -> Any:
    def done(world: World, op: Operation) -> None:
        state = world.sub(op.subscription).compute
        items = getattr(state, table)
        item = items.get(op.target.lower())
        if item is None:
            return
        if op.kind.endswith(".delete"):
            if op.succeeded:
                del items[op.target.lower()]
            return
        item.provisioning_state = "Succeeded" if op.succeeded else "Failed"
        if output and op.succeeded:
            op.output = item.to_dict()

    return done


completer("disk.create")(_finish_table("disks", output=True))
completer("disk.delete")(_finish_table("disks"))
completer("snapshot.create")(_finish_table("snapshots", output=True))
completer("snapshot.delete")(_finish_table("snapshots"))
completer("image.create")(_finish_table("images"))
completer("image.delete")(_finish_table("images"))
completer("extension.create")(_finish_table("extensions"))
completer("extension.delete")(_finish_table("extensions"))

__all__ = ["BadRequest", "ComputeState", "Disk", "Extension", "HostFault", "Image", "VirtualMachine"]
