"""Azure's allocator, emulated: hardware clusters, availability sets, proximity placement groups, SKU
restrictions, capacity and vCPU quota. No HTTP here (handlers: ``capacity_responses``).

Clusters: every region has one cluster per kind (``catalog.CLUSTER_KINDS``) per zone. A VM that holds an
allocation (``vm.host`` set: running or stopped) is pinned to the cluster in ``placements``; deallocating
releases it. An availability set (or proximity placement group) is pinned to the cluster of any allocated
member, and its members allocate there. A cluster hosts only the sizes of its kind.

Capacity: unlimited unless a ``CapacityLimit`` caps the allocated VMs (of one size, or any) on matching
clusters, or a ``FailureRule`` makes the next N allocations of a size fail. Quota (``QuotaLimit``): vCPUs of
every VM in the region count, deallocated ones too ("Quotas are calculated based on the total number of cores
in use both allocated and deallocated", Azure's vCPU quota docs); defaults are generous.

Synchronous refusals (the write answers the error): unknown size, SkuNotAvailable, quota, a size outside the
pinned cluster. Capacity failures end the accepted operation (AllocationFailed and friends); when the allocation
was scoped to an availability set's cluster (a member pinned by another one, or resized in place), the
AllocationFailed message is Azure's availability-set variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from armsim.compute import catalog
from armsim.compute import exceptions as cx
from armsim.errors import BadRequest, InvalidParameter

if TYPE_CHECKING:
    from armsim.compute.models import ComputeState, VirtualMachine

DEFAULT_CORES_LIMIT = 500
DEFAULT_FAMILY_LIMIT = 250


def _ids(ids: list[str]) -> list[dict[str, str]]:
    return [{"id": i} for i in ids]


@dataclass
class _Group:
    """A placement group resource (availability set, proximity placement group): the ARM envelope."""

    id: str
    name: str
    resource_group: str
    location: str

    def envelope(self, rtype: str, props: dict[str, Any], tags: dict[str, str], **extra: Any) -> dict[str, Any]:
        out = {"id": self.id, "name": self.name, "type": f"Microsoft.Compute/{rtype}", "location": self.location,
               **extra, "properties": props}
        if tags:
            out["tags"] = dict(tags)
        return out


@dataclass
class AvailabilitySet(_Group):
    fault_domains: int = 2
    update_domains: int = 5
    sku: str = "Aligned"
    proximity_group: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self, members: list[str]) -> dict[str, Any]:
        props: dict[str, Any] = {"platformFaultDomainCount": self.fault_domains,
                                 "platformUpdateDomainCount": self.update_domains, "virtualMachines": _ids(members)}
        if self.proximity_group:
            props["proximityPlacementGroup"] = {"id": self.proximity_group}
        return self.envelope("availabilitySets", props, self.tags, sku={"name": self.sku})


@dataclass
class ProximityPlacementGroup(_Group):
    group_type: str = "Standard"
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self, vms: list[str], sets: list[str]) -> dict[str, Any]:
        return self.envelope("proximityPlacementGroups", {
            "proximityPlacementGroupType": self.group_type, "virtualMachines": _ids(vms),
            "availabilitySets": _ids(sets), "virtualMachineScaleSets": []}, self.tags)


@dataclass
class Placement:
    """The cluster a VM was last placed on (it counts only while the VM holds an allocation)."""

    vm: str
    cluster: str


@dataclass
class CapacityLimit:
    """At most ``limit`` allocated VMs (of ``size``, or any size) per matching cluster."""

    location: str
    limit: int
    size: str | None = None
    zone: str | None = None
    cluster: str | None = None

    def applies(self, cluster: str, zone: str, size_name: str) -> bool:
        return (self.cluster in (None, cluster) and self.zone in (None, zone)
                and (self.size is None or self.size.lower() == size_name.lower())
                and cluster.startswith(self.location + "-"))


@dataclass
class FailureRule:
    """The next ``remaining`` allocations of ``size`` (any size if None) in ``location`` fail with ``code``."""

    location: str
    remaining: int
    code: str = "AllocationFailed"
    size: str | None = None


@dataclass
class SkuRestriction:
    size: str
    location: str
    zones: list[str] = field(default_factory=list)  # empty: the whole location (type Location)


@dataclass
class QuotaLimit:
    location: str
    name: str  # "cores" or a family such as "standardDSv5Family"
    limit: int
    legacy: bool = False  # refuse with the older QuotaExceeded wording


def _key(*parts: Any) -> str:
    return "|".join(str(p or "*").lower() for p in parts)


# --- catalogue and restrictions ------------------------------------------------------------------------


def restriction(state: ComputeState, size_name: str, location: str, zones: list[str]) -> bool:
    """Is the size restricted for this subscription where the VM goes?"""
    for r in state.sku_restrictions.values():
        if r.size.lower() == size_name.lower() and r.location == location and (
                not r.zones or not zones or set(zones) & set(r.zones)):
            return True
    return False


def sku_entries(state: ComputeState, location: str | None) -> list[dict[str, Any]]:
    out = []
    for loc in ([location] if location else catalog.REGIONS):
        if loc not in catalog.REGIONS:
            continue
        for s in catalog.SIZES.values():
            restrictions = []
            for r in state.sku_restrictions.values():
                if r.size.lower() != s.name.lower() or r.location != loc:
                    continue
                info: dict[str, Any] = {"locations": [loc]}
                if r.zones:
                    info["zones"] = list(r.zones)
                restrictions.append({"type": "Zone" if r.zones else "Location", "values": [loc],
                                     "restrictionInfo": info, "reasonCode": "NotAvailableForSubscription"})
            out.append({"resourceType": "virtualMachines", "name": s.name, "tier": "Standard",
                        "size": s.name.split("_", 1)[1], "family": s.family, "locations": [loc],
                        "locationInfo": [{"location": loc, "zones": list(catalog.ZONES), "zoneDetails": []}],
                        "capabilities": s.capabilities(), "restrictions": restrictions})
    return out


def region_sizes(state: ComputeState, location: str) -> list[catalog.Size]:
    return [s for s in catalog.SIZES.values() if not restriction(state, s.name, location, [])]


def check_size(state: ComputeState, vm_id: str, size_name: str, location: str, zones: list[str]) -> catalog.Size:
    s = catalog.size(size_name)
    if s is None or location not in catalog.REGIONS:
        raise cx.InvalidVmSize(size_name, [x.name for x in region_sizes(state, location)])
    if restriction(state, s.name, location, zones):
        raise cx.SkuNotAvailable(vm_id, location, zones, state.sub.id)
    return s


# --- placement ------------------------------------------------------------------------------------------


def _ref(obj: Any) -> str | None:
    ref = obj.get("id") if isinstance(obj, dict) else None
    return "/" + ref.strip().strip("/") if isinstance(ref, str) and ref.strip("/ ") else None


def avset_of(vm: VirtualMachine) -> str | None:
    return _ref(vm.properties.get("availabilitySet"))


def ppg_of(vm: VirtualMachine) -> str | None:
    return _ref(vm.properties.get("proximityPlacementGroup"))


def cluster_of(state: ComputeState, vm: VirtualMachine) -> str | None:
    """The VM's cluster while it holds an allocation."""
    p = state.placements.get(vm.id.lower())
    return p.cluster if p is not None and vm.host is not None else None


def members(state: ComputeState, ref_key: str, group_id: str, *, allocated: bool = False) -> list[VirtualMachine]:
    getter = avset_of if ref_key == "availabilitySet" else ppg_of
    return [v for v in state.vms.values() if (getter(v) or "").lower() == group_id.lower()
            and (not allocated or cluster_of(state, v) is not None)]


def pinned(state: ComputeState, vm: VirtualMachine) -> tuple[str | None, str | None]:
    """(cluster, what pins it) from the VM's availability set or proximity placement group: the cluster of
    another allocated member."""
    for ref_key, group in (("availabilitySet", avset_of(vm)), ("proximityPlacementGroup", ppg_of(vm))):
        if group:
            for other in members(state, ref_key, group, allocated=True):
                if other.id.lower() != vm.id.lower():
                    return cluster_of(state, other), ref_key
    return None, None


def _cluster_sizes(cluster: str) -> list[str]:
    return [s.name for s in catalog.hosted_sizes(cluster)]


def _room(state: ComputeState, cluster: str, zone: str, size_name: str, vm: VirtualMachine) -> bool:
    for limit in state.capacity_limits.values():
        if not limit.applies(cluster, zone, size_name):
            continue
        used = sum(1 for v in state.vms.values() if v.id.lower() != vm.id.lower() and cluster_of(state, v) == cluster
                   and (limit.size is None or _vm_size(v).lower() == limit.size.lower()))
        if used >= limit.limit:
            return False
    return True


def _vm_size(vm: VirtualMachine) -> str:
    return str((vm.properties.get("hardwareProfile") or {}).get("vmSize") or "")


def allocate(state: ComputeState, vm: VirtualMachine, size_name: str | None = None,
             keep_cluster: bool = False) -> dict[str, Any] | None:
    """Place the VM on a cluster for ``size_name`` (default its own size). Records the placement and returns
    None, or returns the allocation error the operation ends with. ``keep_cluster``: stay on the VM's own
    cluster (an in-place resize)."""
    size_name = size_name or _vm_size(vm)
    s = catalog.size(size_name)
    if s is None:
        return None  # an unknown size was refused earlier; VMs seeded straight into the model are not placed
    own = cluster_of(state, vm) if keep_cluster else None
    pin, why = pinned(state, vm)
    for rule in list(state.allocation_failures.values()):
        if rule.location == vm.location and (rule.size is None or rule.size.lower() == s.name.lower()):
            rule.remaining -= 1
            if rule.remaining <= 0:
                state.allocation_failures = {k: r for k, r in state.allocation_failures.items() if r is not rule}
            return _failure(rule.code, vm, scoped_to_set=bool((own or pin) and avset_of(vm)))
    fixed = own or pin
    candidates = [(c, z) for c, _, z in catalog.clusters(vm.location) if catalog.hosts(c, s.name)
                  and (not vm.zones or z in vm.zones)]
    if fixed:
        chosen = [(c, z) for c, z in candidates if c == fixed]
    else:
        chosen = candidates
    for cluster, zone in chosen:
        if _room(state, cluster, zone, s.name, vm):
            from armsim.compute.models import norm_id

            state.placements[vm.id.lower()] = Placement(vm=norm_id(vm.id), cluster=cluster)
            return None
    elsewhere = any(_room(state, c, z, s.name, vm) for c, _, z in catalog.clusters(vm.location)
                    if catalog.hosts(c, s.name))
    if why == "proximityPlacementGroup" and elsewhere:
        constraints = (["Availability Zone"] if vm.zones else []) + ["Proximity Placement Group", "VM Size"]
        return cx.overconstrained(constraints, zonal=bool(vm.zones))
    if fixed and avset_of(vm):  # scoped to the set's cluster: Azure says so in the message
        return cx.allocation_failed_in_availability_set()
    if vm.zones and not fixed and elsewhere:
        return cx.zonal_allocation_failed()
    return cx.allocation_failed()


def _failure(code: str, vm: VirtualMachine, scoped_to_set: bool = False) -> dict[str, Any]:
    if code == "ZonalAllocationFailed":
        return cx.zonal_allocation_failed()
    if code in ("OverconstrainedAllocationRequest", "OverconstrainedZonalAllocationRequest"):
        return cx.overconstrained((["Availability Zone"] if vm.zones else []) + ["VM Size"],
                                  zonal=code == "OverconstrainedZonalAllocationRequest")
    if code == "AllocationFailed":
        return cx.allocation_failed_in_availability_set() if scoped_to_set else cx.allocation_failed()
    return {"code": code, "message": f"Allocation failed with {code}."}


def available_sizes(state: ComputeState, vm: VirtualMachine | None = None, avset: str | None = None,
                    location: str = "") -> list[catalog.Size]:
    """What a VM (or a set) may be resized to: its cluster's sizes while it (or a member) is allocated, else every
    size of the region not restricted for the subscription."""
    cluster = None
    if vm is not None:
        cluster = cluster_of(state, vm) or pinned(state, vm)[0]
        location = vm.location
    elif avset is not None:
        allocated = members(state, "availabilitySet", avset, allocated=True)
        cluster = cluster_of(state, allocated[0]) if allocated else None
    sizes = region_sizes(state, location)
    return [s for s in sizes if cluster is None or catalog.hosts(cluster, s.name)]


# --- quota ---------------------------------------------------------------------------------------------


SPOT_QUOTA = "lowPriorityCores"  # Spot (and the older Low) priority VMs count here only, not in their family


def is_spot(props: dict[str, Any]) -> bool:
    return str(props.get("priority") or "").lower() in ("spot", "low")


def _quota_names(s: catalog.Size, spot: bool) -> tuple[tuple[str, str], ...]:
    """(quota name, its name in a QuotaExceeded message) that a VM of size ``s`` consumes."""
    if spot:
        return ((SPOT_QUOTA, "LowPriorityCores"),)
    return ((s.family, f"{s.family} Cores"), ("cores", "Total Regional Cores"))


def usage(state: ComputeState, location: str) -> dict[str, int]:
    """vCPUs in use per quota name ("cores", each family, lowPriorityCores), deallocated VMs included."""
    out: dict[str, int] = {}
    for vm in state.vms.values():
        s = catalog.size(_vm_size(vm))
        if vm.location != location or s is None:
            continue
        for name, _ in _quota_names(s, is_spot(vm.properties)):
            out[name] = out.get(name, 0) + s.vcpus
        out["virtualMachines"] = out.get("virtualMachines", 0) + 1
    return out


def limit_of(state: ComputeState, location: str, name: str) -> QuotaLimit:
    q = state.quota_limits.get(_key(location, name))
    if q is not None:
        return q
    default = {"cores": DEFAULT_CORES_LIMIT, "virtualMachines": 25000}.get(name, DEFAULT_FAMILY_LIMIT)
    return QuotaLimit(location=location, name=name, limit=default)


def usages(state: ComputeState, location: str) -> list[dict[str, Any]]:
    used = usage(state, location)
    rows = [("cores", "Total Regional vCPUs"), ("virtualMachines", "Virtual Machines"),
            (SPOT_QUOTA, "Total Regional Low-priority vCPUs"), *sorted(catalog.FAMILY_NAMES.items())]
    return [{"name": {"value": name, "localizedValue": label}, "currentValue": used.get(name, 0),
             "limit": limit_of(state, location, name).limit, "unit": "Count"} for name, label in rows]


def check_quota(state: ComputeState, location: str, size_name: str, added: int, *, starting: bool = False,
                spot: bool = False) -> None:
    """Refuse ``added`` more vCPUs of the size's family (and in total; a Spot VM: of lowPriorityCores). A start
    adds nothing (deallocated VMs count already) but is refused while usage is over a limit lowered below it."""
    s = catalog.size(size_name)
    if s is None:
        return
    used = usage(state, location)
    for name, quota in _quota_names(s, spot):
        q = limit_of(state, location, name)
        current = used.get(name, 0)
        if (starting and current > q.limit) or (not starting and added > 0 and current + added > q.limit):
            required = s.vcpus if starting else added
            raise cx.QuotaExceeded(quota=quota, location=location, limit=q.limit, usage=current - (required if starting
                                   else 0), required=required, subscription=state.sub.id, resource=name,
                                   legacy=q.legacy)


# --- the checks a write runs ---------------------------------------------------------------------------


def check_create(state: ComputeState, rid: str, body: dict[str, Any]) -> None:
    """A new VM: its size, restrictions, quota, and its availability set (exists; a pinned set must host the size)."""
    from armsim.compute.models import norm_location

    props: dict[str, Any] = body["properties"] if isinstance(body.get("properties"), dict) else {}
    size_name = (props.get("hardwareProfile") or {}).get("vmSize")
    location = body.get("location")
    if not isinstance(size_name, str) or not isinstance(location, str):
        return  # the model reports what is missing
    location = norm_location(location)
    zones = [str(z) for z in body.get("zones") or []]
    s = check_size(state, rid, size_name, location, zones)
    groups = (("availabilitySet", state.availability_sets), ("proximityPlacementGroup", state.proximity_groups))
    for key, table in groups:
        ref = _ref(props.get(key))
        if ref is None:
            continue
        if ref.lower() not in table:
            if key == "availabilitySet":
                raise cx.AvailabilitySetNotFound(ref)
            raise InvalidParameter(f"The Proximity Placement Group '{ref}' cannot be found.", target=key)
        if key == "availabilitySet":
            allocated = members(state, key, ref, allocated=True)
            cluster = cluster_of(state, allocated[0]) if allocated else None
            if cluster and not catalog.hosts(cluster, s.name):
                raise cx.VmSizeNotInAvailabilitySet(rid.rsplit("/", 1)[1], ref.rsplit("/", 1)[1], s.name,
                                                    _cluster_sizes(cluster))
    check_quota(state, location, s.name, s.vcpus, spot=is_spot(props))


def check_resize(state: ComputeState, vm: VirtualMachine, body: dict[str, Any]) -> str | None:
    """A PUT/PATCH of an existing VM that changes ``hardwareProfile.vmSize``: the new size if it does."""
    props: dict[str, Any] = body["properties"] if isinstance(body.get("properties"), dict) else {}
    new = (props.get("hardwareProfile") or {}).get("vmSize")
    old = _vm_size(vm)
    if not isinstance(new, str) or new.lower() == old.lower():
        return None
    s = check_size(state, vm.id, new, vm.location, vm.zones)
    cluster = cluster_of(state, vm) or pinned(state, vm)[0]
    if cluster and vm.host is not None and not catalog.hosts(cluster, s.name):
        raise cx.VmSizeNotInCluster("resize", vm.name, s.name, _cluster_sizes(cluster))
    before = catalog.size(old)
    spot = is_spot(vm.properties)
    kept = before.vcpus if before and (spot or before.family == s.family) else 0  # the old size's vCPUs given back
    check_quota(state, vm.location, s.name, s.vcpus - kept, spot=spot)
    return s.name


def check_start(state: ComputeState, vm: VirtualMachine, operation: str) -> dict[str, Any] | None:
    """A start (or redeploy) that places the VM again: restrictions, quota, the pinned cluster, then capacity."""
    size_name = _vm_size(vm)
    s = catalog.size(size_name)
    if s is None:
        return None
    if restriction(state, s.name, vm.location, vm.zones):
        raise cx.SkuNotAvailable(vm.id, vm.location, vm.zones, state.sub.id)
    if vm.host is None:
        check_quota(state, vm.location, s.name, 0, starting=True, spot=is_spot(vm.properties))
    cluster, _ = pinned(state, vm)
    if cluster and not catalog.hosts(cluster, s.name):
        raise cx.VmSizeNotInCluster(operation, vm.name, s.name, _cluster_sizes(cluster))
    return allocate(state, vm)


# --- control ------------------------------------------------------------------------------------------


def _location(value: Any) -> str:
    if not isinstance(value, str) or value.replace(" ", "").lower() not in catalog.REGIONS:
        raise BadRequest(f"Unknown location {value!r}; armsim's regions: {', '.join(catalog.REGIONS)}.")
    return value.replace(" ", "").lower()


def _size_name(value: Any) -> str | None:
    if value is None:
        return None
    s = catalog.size(str(value))
    if s is None:
        raise BadRequest(f"Unknown size {value!r}.")
    return s.name


def set_capacity(state: ComputeState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"location", "limit" (null removes), "size"?, "zone"?, "cluster"?}`` or
    ``{"location", "fail_next": N, "code"?, "size"?}``."""
    location = _location(body.get("location"))
    size_name = _size_name(body.get("size"))
    if "fail_next" in body:
        n = body["fail_next"]
        if not isinstance(n, int) or n < 0:
            raise BadRequest("'fail_next' must be a non-negative integer.")
        code = str(body.get("code") or "AllocationFailed")
        key = _key(location, size_name)
        if n == 0:
            state.allocation_failures.pop(key, None)
        else:
            state.allocation_failures[key] = FailureRule(location=location, remaining=n, code=code, size=size_name)
        return {"fail_next": n, "location": location, "size": size_name, "code": code}
    limit = body.get("limit")
    zone = None if body.get("zone") is None else str(body["zone"])
    cluster = body.get("cluster")
    if cluster is not None and cluster not in [c for c, _, _ in catalog.clusters(location)]:
        raise BadRequest(f"Unknown cluster {cluster!r} in {location}.")
    key = _key(location, size_name, zone, cluster)
    if limit is None:
        state.capacity_limits.pop(key, None)
    elif isinstance(limit, int) and limit >= 0:
        state.capacity_limits[key] = CapacityLimit(location=location, limit=limit, size=size_name, zone=zone,
                                                   cluster=cluster)
    else:
        raise BadRequest("'limit' must be a non-negative integer or null.")
    return {"location": location, "size": size_name, "zone": zone, "cluster": cluster, "limit": limit}


def restrict_sku(state: ComputeState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"size", "location", "zones"?: [...], "restricted"?: false to lift}``."""
    location = _location(body.get("location"))
    size_name = _size_name(body.get("size"))
    if size_name is None:
        raise BadRequest("'size' is required.")
    zones = [str(z) for z in body.get("zones") or []]
    key = _key(size_name, location, ",".join(zones))
    if body.get("restricted", True) is False:
        state.sku_restrictions.pop(key, None)
    else:
        state.sku_restrictions[key] = SkuRestriction(size=size_name, location=location, zones=zones)
    return {"size": size_name, "location": location, "zones": zones, "restricted": body.get("restricted", True)}


def set_quota(state: ComputeState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"location", "name": "cores" | "lowPriorityCores" | "<family>", "limit", "legacy"?}``."""
    location = _location(body.get("location"))
    name = body.get("name")
    if name not in ("cores", "virtualMachines", SPOT_QUOTA, *catalog.FAMILY_NAMES):
        raise BadRequest(f"Unknown quota name {name!r}; use cores, {SPOT_QUOTA} or a family such as "
                         "standardDSv5Family.")
    limit = body.get("limit")
    if not isinstance(limit, int) or limit < 0:
        raise BadRequest("'limit' must be a non-negative integer.")
    state.quota_limits[_key(location, name)] = QuotaLimit(location=location, name=str(name), limit=limit,
                                                          legacy=bool(body.get("legacy")))
    return {"location": location, "name": name, "limit": limit}


MODELS: dict[str, type] = {"availability_sets": AvailabilitySet, "proximity_groups": ProximityPlacementGroup,
                           "placements": Placement, "capacity_limits": CapacityLimit,
                           "allocation_failures": FailureRule, "sku_restrictions": SkuRestriction,
                           "quota_limits": QuotaLimit}
