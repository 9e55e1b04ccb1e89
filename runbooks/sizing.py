"""Sizing: which VM sizes fit a VM where it is, and why the others do not. Pure (reads an Observation).

A size *fits* when Azure would accept a resize to it and the VM would work on it:

* it exists in the VM's region and is not restricted there (or in the VM's zones) for the subscription
  (``resourceSkus`` restrictions);
* while the VM or another member of its availability set holds hardware, the cluster hosts it (the VM's
  ``vmSizes`` list); once all are deallocated, any size of the region;
* the vCPU quota of its family and of the region has room for it (``usages``; deallocated VMs count);
* it has what the VM uses: premium disks, accelerated networking, the OS disk's Hyper-V generation (Trusted
  Launch needs generation 2), as many NICs and data disks, and at least the vCPUs, memory and disk IOPS asked.

``rank`` orders the fitting sizes closest first (burstable B-series last, unless the VM is one); the
planner, the recommendation and the resize step share these rules, so a plan never names a size its own
checks would refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from runbooks.observe import Observation, dotted, requested_nics

_ALLOCATED = ("running", "starting", "stopped", "stopping")
# Azure names the size it refused after "requested size" ("… because the requested size Standard_F4s_v2 is not
# available in the current hardware cluster. The available sizes are: …"); other sizes in a message are options.
_SIZE_IN_TEXT = re.compile(r"requested (?:VM )?size '?((?:Standard|Basic)_[A-Za-z0-9_]+)", re.IGNORECASE)
SPOT_QUOTA = "lowPriorityCores"
_SIZE_CODES = ("SkuNotAvailable", "OperationNotAllowed", "QuotaExceeded", "AllocationFailed",
               "ZonalAllocationFailed", "OverconstrainedAllocationRequest", "OverconstrainedZonalAllocationRequest",
               "InvalidParameter")


@dataclass(frozen=True)
class Size:
    """One VM size of the region, from ``resourceSkus``."""

    name: str
    family: str
    vcpus: int
    memory_gb: float
    data_disks: int
    nics: int
    premium: bool
    accelerated: bool
    generations: frozenset[str]
    iops: int | None
    mbps: float | None
    zones: tuple[str, ...]
    restrictions: tuple[dict[str, Any], ...]
    trusted_launch: bool = True  # False where the SKU says TrustedLaunchDisabled

    @classmethod
    def from_sku(cls, sku: dict[str, Any]) -> Size:
        caps = sku.get("capabilities") or {}

        def num(key: str, default: float = 0) -> float:
            try:
                return float(caps.get(key, default))
            except (TypeError, ValueError):
                return default

        bps = num("UncachedDiskBytesPerSecond", -1)
        return cls(str(sku.get("name")), str(sku.get("family") or ""), int(num("vCPUs")), num("MemoryGB"),
                   int(num("MaxDataDiskCount")), int(num("MaxNetworkInterfaces", 1)),
                   str(caps.get("PremiumIO", "False")).lower() == "true",
                   str(caps.get("AcceleratedNetworkingEnabled", "False")).lower() == "true",
                   frozenset(g.strip().upper() for g in str(caps.get("HyperVGenerations", "V1")).split(",") if g),
                   int(num("UncachedDiskIOPS")) if "UncachedDiskIOPS" in caps else None,
                   bps / 1_000_000 if bps >= 0 else None, tuple(sku.get("zones") or ()),
                   tuple(sku.get("restrictions") or ()),
                   str(caps.get("TrustedLaunchDisabled", "False")).lower() != "true")

    def restriction(self, location: str, zones: tuple[str, ...]) -> str | None:
        """Why the subscription may not use this size here (None: it may)."""
        for r in self.restrictions:
            reason = r.get("reason") or "restricted"
            if r.get("type") == "Location" and any(str(v).lower() == location.lower() for v in r.get("values", [])):
                return f"{self.name} is not available in {location} for this subscription ({reason})"
            if r.get("type") == "Zone" and zones:
                blocked = set(r.get("zones") or []) & set(zones)
                if blocked:
                    return f"{self.name} is not available in zone {', '.join(sorted(blocked))} of {location} ({reason})"
        if zones and self.zones and not set(zones) <= set(self.zones):
            return f"{self.name} is not offered in zone {', '.join(sorted(set(zones) - set(self.zones)))}"
        return None


@dataclass(frozen=True)
class Needs:
    """What a size must offer for this VM. ``basis`` says where the vCPU and memory floor comes from."""

    vcpus: int
    memory_gb: float
    data_disks: int
    nics: int
    premium: bool
    accelerated: bool
    generation: str | None
    iops: int = 0
    mbps: float = 0.0
    basis: str = ""
    trusted_launch: bool = False

    def describe(self) -> str:
        parts = [f"≥ {self.vcpus} vCPUs and {self.memory_gb:g} GB ({self.basis})" if self.basis else
                 f"≥ {self.vcpus} vCPUs and {self.memory_gb:g} GB"]
        if self.premium:
            parts.append("premium storage")
        if self.accelerated:
            parts.append("accelerated networking")
        if self.generation:
            parts.append(f"Hyper-V {self.generation}")
        if self.trusted_launch:
            parts.append("Trusted Launch")
        parts.append(f"{self.nics} NIC{'s' if self.nics != 1 else ''}, {self.data_disks} data disk"
                     f"{'s' if self.data_disks != 1 else ''}")
        if self.iops:
            parts.append(f"≥ {self.iops} uncached IOPS (its disks' total)")
        if self.mbps:
            parts.append(f"≥ {self.mbps:g} MB/s uncached")
        return ", ".join(parts)


@dataclass
class Advice:
    """A size recommendation: what the VM needs, the sizes that fit (closest first), and why others do not."""

    needs: Needs
    fitting: list[Size] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)  # size name → why not
    in_place: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"needs": self.needs.describe(), "in_place": self.in_place,
                "fitting": [{"name": s.name, "family": s.family, "vcpus": s.vcpus, "memory_gb": s.memory_gb}
                            for s in self.fitting],
                "refused": self.refused}


def catalogue(obs: Observation) -> dict[str, Size]:
    """The region's sizes by lower-case name (empty when ``skus`` was not read)."""
    return {str(s.get("name", "")).lower(): Size.from_sku(s) for s in obs.skus}


def current_size(obs: Observation) -> str:
    return str(dotted(obs.props, "hardwareProfile.vmSize") or "")


def requested_size(obs: Observation) -> str | None:
    """The size a standing (unresolved) failed operation asked for, other than the VM's own: from the request
    body the activity log kept, else named in its error message (the resize or create that Azure refused)."""
    own = current_size(obs).lower()
    known = catalogue(obs)
    for op in obs.failed_operations:
        if op.get("resolved_at") or str(op.get("error_code") or "") not in _SIZE_CODES:
            continue
        asked = str(op.get("requested_size") or "")
        if asked and asked.lower() != own:  # the request body: named even when the region does not offer it
            return str(known[asked.lower()].name) if asked.lower() in known else asked
        for name in _SIZE_IN_TEXT.findall(str(op.get("message") or "")):
            if name.lower() != own and (not known or name.lower() in known):
                return str(known[name.lower()].name if known else name)
    return None


def _disk_skus(obs: Observation) -> list[str]:
    out = []
    for entry in obs.disk_entries():
        managed = entry.get("managedDisk") or {}
        disk = obs.disks.get(str(managed.get("id", "")).lower()) or {}
        out.append(str((disk.get("sku") or {}).get("name") or managed.get("storageAccountType") or ""))
    return out


def disk_performance(obs: Observation) -> tuple[int, float]:
    """The VM's disks' provisioned IOPS and MB/s, added up (0 where a disk does not say)."""
    iops, mbps = 0, 0.0
    for entry in obs.disk_entries():
        disk = obs.disks.get(str((entry.get("managedDisk") or {}).get("id", "")).lower()) or {}
        props = disk.get("properties") or {}
        iops += int(props.get("diskIOPSReadWrite") or 0)
        mbps += float(props.get("diskMBpsReadWrite") or 0)
    return iops, mbps


def _security_type(obs: Observation) -> str:
    return str(dotted(obs.props, "securityProfile.securityType") or "").lower()


def is_spot(obs: Observation) -> bool:
    """Spot (or the older Low) priority: its vCPUs count against the region's low-priority quota only."""
    return str(obs.props.get("priority") or "").lower() in ("spot", "low")


def _generation(obs: Observation) -> str | None:
    if _security_type(obs) in ("trustedlaunch", "confidentialvm"):
        return "V2"
    os_id = str(dotted(obs.props, "storageProfile.osDisk.managedDisk.id") or "").lower()
    gen = dotted(obs.disks.get(os_id) or {}, "properties.hyperVGeneration") or obs.instance_view.get(
        "hyperVGeneration")
    return str(gen).upper() if gen else None


def needs_of(obs: Observation, *, at_least: str | None = None, for_io: bool = False) -> Needs:
    """What a size must offer this VM: its own size's vCPUs and memory (or ``at_least``'s: the size that was asked
    for), the features it uses, and with ``for_io`` its disks' IOPS (the limit the IOPS RCAs are about)."""
    known = catalogue(obs)
    if at_least and at_least.lower() not in known:
        at_least = None  # a size the region does not offer: the floor is the VM's own size
    basis_name = at_least or current_size(obs)
    basis = known.get(basis_name.lower())
    nics = obs.props.get("networkProfile", {}).get("networkInterfaces") or []
    accelerated = any(bool(dotted(n, "properties.enableAcceleratedNetworking")) for n in obs.nics.values())
    if (asked := requested_nics(obs)) is not None:  # a refused NIC change: the size must take the NICs asked for
        nics = nics if len(nics) >= len(asked[1]) else asked[1]
        accelerated = accelerated or any(bool(dotted(obs.resources.get(str(r["id"]).lower()) or {},
                                                     "properties.enableAcceleratedNetworking")) for r in asked[1])
    iops, mbps = disk_performance(obs) if for_io else (0, 0.0)
    return Needs(vcpus=basis.vcpus if basis else 0, memory_gb=basis.memory_gb if basis else 0.0,
                 data_disks=len(obs.props.get("storageProfile", {}).get("dataDisks") or []), nics=max(1, len(nics)),
                 premium=any(s.lower().startswith("premium") for s in _disk_skus(obs)), accelerated=accelerated,
                 generation=_generation(obs), iops=iops, mbps=mbps,
                 trusted_launch=_security_type(obs) == "trustedlaunch",
                 basis=(f"as {basis_name}, which was asked for" if at_least else f"as its size {basis_name}")
                 if basis else "")


def holds_hardware(state: Observation) -> bool:
    """Does the VM, or another member of its availability set, hold an allocation (in the predicted state)?"""
    if str(state.view(state.vm_id).get("powerState") or "") in _ALLOCATED:
        return True
    return any(str(m.get("powerState") or "") in _ALLOCATED for m in state.members.values())


def refusals(state: Observation, size: Size, needs: Needs) -> list[str]:
    """Why ``size`` does not fit the VM in ``state`` (empty: it fits)."""
    out = []
    zones = tuple(str(z) for z in (state.vm or {}).get("zones") or ())
    if (why := size.restriction(state.location, zones)) is not None:
        out.append(why)
    if holds_hardware(state) and state.sizes and size.name.lower() not in {
            str(s.get("name", "")).lower() for s in state.sizes}:
        holder = "its availability set's cluster" if state.availability_set else "its current hardware cluster"
        out.append(f"{size.name} is not available in {holder} (deallocate first to choose from the whole region)")
    if (why := _quota(state, size)) is not None:
        out.append(why)
    if size.vcpus < needs.vcpus or size.memory_gb < needs.memory_gb:
        out.append(f"{size.name} has {size.vcpus} vCPUs and {size.memory_gb:g} GB, fewer than {needs.vcpus} and "
                   f"{needs.memory_gb:g}")
    if needs.premium and not size.premium:
        out.append(f"{size.name} does not support the VM's premium disks")
    if needs.accelerated and not size.accelerated:
        out.append(f"{size.name} does not support accelerated networking, which a NIC of the VM uses")
    if needs.generation and needs.generation not in size.generations:
        out.append(f"{size.name} does not run Hyper-V {needs.generation} VMs")
    if needs.trusted_launch and not size.trusted_launch:
        out.append(f"{size.name} does not support Trusted Launch, the VM's security type")
    if size.nics < needs.nics:
        out.append(f"{size.name} takes {size.nics} NICs; the VM has {needs.nics}")
    if size.data_disks < needs.data_disks:
        out.append(f"{size.name} takes {size.data_disks} data disks; the VM has {needs.data_disks}")
    if needs.iops and (size.iops or 0) < needs.iops:
        out.append(f"{size.name} caps uncached disk IOPS at {size.iops}; the disks provide {needs.iops}" if size.iops
                   else f"{size.name} publishes no uncached disk IOPS limit (it takes no premium disks)")
    if needs.mbps and size.mbps is not None and size.mbps < needs.mbps:
        out.append(f"{size.name} caps uncached throughput at {size.mbps:g} MB/s; the disks provide {needs.mbps:g}")
    return out


def _quota(state: Observation, size: Size) -> str | None:
    """Would a resize to ``size`` exceed the family's or the region's vCPU quota (deallocated VMs count)?"""
    if not state.usages:
        return None
    rows = {str(u.get("name") or "").lower(): u for u in state.usages}
    old = catalogue(state).get(current_size(state).lower())
    old_vcpus = old.vcpus if old else 0
    same_family = old is not None and old.family.lower() == size.family.lower()
    for name, added in _consumes(state, size, old_vcpus if same_family else 0, old_vcpus):
        row = rows.get(name.lower())
        if row is None or added <= 0:
            continue
        current, limit = int(row.get("current") or 0), int(row.get("limit") or 0)
        if current + added > limit:
            label = row.get("label") or name
            return (f"{size.name} needs {added} more vCPUs of {label}: {current} of {limit} are used in "
                    f"{state.location}")
    return None


def _consumes(state: Observation, size: Size, family_back: int, total_back: int) -> list[tuple[str, int]]:
    """(quota name, vCPUs added) a resize to ``size`` takes: the family and the regional total, or for a Spot VM
    the regional low-priority quota alone."""
    if is_spot(state):
        return [(SPOT_QUOTA, size.vcpus - total_back)]
    return [(size.family, size.vcpus - family_back), ("cores", size.vcpus - total_back)]


def rank(state: Observation, needs: Needs) -> Advice:
    """Every size of the region, split into those that fit (closest first: fewest vCPUs, then memory, the VM's own
    family first, then name) and those that do not, with why."""
    known = catalogue(state)
    own = known.get(current_size(state).lower())
    advice = Advice(needs, in_place=holds_hardware(state))
    for size in known.values():
        if own is not None and size.name.lower() == own.name.lower() and not needs.iops:
            continue
        why = refusals(state, size, needs)
        if why:
            advice.refused[size.name] = why
        else:
            advice.fitting.append(size)
    family = own.family.lower() if own else ""
    burstable_ok = own is not None and _burstable(own)
    advice.fitting.sort(key=lambda s: (_burstable(s) and not burstable_ok, s.vcpus, s.memory_gb,
                                       s.family.lower() != family, s.name.lower()))
    return advice


def _burstable(size: Size) -> bool:
    """B-series sizes run on CPU credits: below their baseline they slow down, so they are offered last to a VM
    that is not burstable already."""
    return size.name.lower().startswith(("standard_b", "basic_b"))


# --- advice: what a diagnosis recommends for a sizing family ------------------------------------------------

ADVICE_FACTS = frozenset({"vm", "instance-view", "disks", "nics", "placement", "sizes", "skus", "usages",
                          "activity-log"})
_TOP = 5
ADVICE_WITHOUT_VM = frozenset({"plan"})  # advice about a refused create, given when the VM does not exist


def _size_line(s: Size) -> str:
    return f"{s.name} ({s.vcpus} vCPUs, {s.memory_gb:g} GB)"


def advise(obs: Observation, kind: str) -> dict[str, Any]:
    """The recommendation of a sizing playbook for this VM, as lines to show and data (JSON): ``sizes`` (what the
    refused size lacks here and the sizes that fit), ``quota`` (usage against the limits, the increase to ask for,
    the sizes that fit within quota) or ``disk-limits`` (the disks against the size's caps, the sizes that
    cover them); ``plan`` (a refused create's Marketplace plan against its image) is ``runbooks.marketplace``'s."""
    if kind == "plan":
        from runbooks import marketplace

        return marketplace.advise(obs)
    requested = requested_size(obs)
    known = catalogue(obs)
    lines: list[str] = []
    data: dict[str, Any] = {"kind": kind, "requested": requested}
    if kind == "disk-limits":
        needs = needs_of(obs, for_io=True)
        own = known.get(current_size(obs).lower())
        cap = f"{own.iops} IOPS / {own.mbps:g} MB/s" if own and own.iops is not None and own.mbps is not None else \
            "unknown limits"
        mbps = disk_performance(obs)[1]
        lines.append(f"{current_size(obs)} lets {cap} through uncached; the disks provide {needs.iops} IOPS / "
                     f"{mbps:g} MB/s")
    else:
        needs = needs_of(obs, at_least=requested)
    if requested and kind != "disk-limits":
        size = known.get(requested.lower())
        why = refusals(obs, size, needs) if size else [f"{requested} is not a size of {obs.location}"]
        lines.append(f"{requested}, which was asked for: " + ("; ".join(why) if why else "fits now"))
        data["requested_refusals"] = why
        zones = tuple(str(z) for z in (obs.vm or {}).get("zones") or ())
        if size is not None and zones:
            open_zones = [z for z in size.zones if size.restriction(obs.location, (z,)) is None]
            data["requested_zones"] = open_zones
            if open_zones and not set(zones) <= set(open_zones):
                lines.append(f"{requested} is offered here in zone {', '.join(open_zones)}; a VM moves to another "
                             "zone only by being created again there")
    if kind == "quota":
        rows = {str(u.get("name") or "").lower(): u for u in obs.usages}
        basis = known.get((requested or current_size(obs)).lower())
        shown = [SPOT_QUOTA] if is_spot(obs) else [n for n in ((basis.family if basis else None), "cores") if n]
        for name in shown:
            row = rows.get(name.lower())
            if row:
                lines.append(f"{row.get('label') or name}: {row.get('current')} of {row.get('limit')} vCPUs used in "
                             f"{obs.location}")
        if basis is not None:
            own = known.get(current_size(obs).lower())
            same = own is not None and own.family.lower() == basis.family.lower()
            quota, added = _consumes(obs, basis, own.vcpus if own and same else 0, own.vcpus if own else 0)[0]
            row = rows.get(quota.lower())
            if row is not None and int(row.get("current") or 0) + added > int(row.get("limit") or 0):
                want = int(row.get("current") or 0) + added
                data["quota_request"] = {"location": obs.location, "name": quota, "limit": want}
                lines.append(f"to keep {basis.name}: ask for the {row.get('label') or quota} quota in "
                             f"{obs.location} to be raised to at least {want} (Azure portal: Quotas, or a support "
                             "request); nothing here changes quota")
    advice = rank(obs, needs)
    data.update(advice.to_dict())
    lines.append(f"needs: {needs.describe()}")
    if advice.fitting:
        lines.append("sizes that fit, closest first: " + ", ".join(_size_line(s) for s in advice.fitting[:_TOP]))
    else:
        lines.append(f"no size of {obs.location} fits: choose another region, or change what the VM needs")
    return {"lines": lines, "data": data, "top": advice.fitting[0].name if advice.fitting else None}
