"""The VM size catalogue: sizes, families, regions and the hardware-cluster kinds that host them; and the
managed-disk performance tiers.

Figures are the published ones (Azure's size-series pages): vCPUs, memory, temporary disk, data disks,
NICs and the uncached (remote) disk limits of premium-capable sizes ("Max uncached disk throughput:
IOPS/MBps"; checked against azure-docs dv5-dsv5, dasv5-dadsv5, ev5-esv5, dv4-dsv4, ev4-esv4, dv2-dsv2,
dsv3, fsv2 and b-series pages). ``UncachedDiskBytesPerSecond`` is the MBps figure times 1 048 576, as the
resourceSkus API reports it (e.g. 1200 MBps → 1258291200 for Standard_E64s_v3 in azure-docs' ultra-disk
page); some newer series report a decimal figure instead (unconfirmed for the sizes here). Sizes without
premium storage (``Standard_D2_v5``, ``Standard_D2_v4``, ``Standard_A2_v2``) carry no uncached-disk figures.

Disk tiers (``DISK_TIERS``): the size-based tiers of Premium SSD (P1…P80), Standard SSD (E1…E80) and Standard
HDD (S4…S80) with their provisioned (Premium) or "up to" (Standard) IOPS and MB/s, from azure-docs
``includes/disk-storage-{premium-ssd,standard-ssd,standard-hdd}-sizes.md``. A disk gets the smallest tier whose
size is at least its own (a disk larger than the largest tier gets the largest).
"""

from __future__ import annotations

from dataclasses import dataclass

OS_DISK_MB = 1047552  # what ARM reports as osDiskSizeInMB for every size


@dataclass(frozen=True)
class Size:
    name: str
    family: str
    vcpus: int
    memory_gb: float
    temp_disk_gb: int
    max_data_disks: int
    max_nics: int
    premium: bool
    accelerated_networking: bool
    generations: str
    ephemeral_os: bool
    iops: int | None  # uncached disk IOPS
    bytes_per_second: int | None  # uncached disk throughput
    hardware: str  # which cluster kinds host it (CLUSTER_KINDS)

    def capabilities(self) -> list[dict[str, str]]:
        caps = [("MaxResourceVolumeMB", str(self.temp_disk_gb * 1024)), ("OSVhdSizeMB", str(OS_DISK_MB)),
                ("vCPUs", str(self.vcpus)), ("MemoryGB", f"{self.memory_gb:g}"),
                ("MaxDataDiskCount", str(self.max_data_disks)), ("MaxNetworkInterfaces", str(self.max_nics)),
                ("PremiumIO", str(self.premium)), ("AcceleratedNetworkingEnabled", str(self.accelerated_networking)),
                ("HyperVGenerations", self.generations), ("EphemeralOSDiskSupported", str(self.ephemeral_os))]
        if self.iops is not None and self.bytes_per_second is not None:
            caps += [("UncachedDiskIOPS", str(self.iops)), ("UncachedDiskBytesPerSecond", str(self.bytes_per_second))]
        return [{"name": n, "value": v} for n, v in caps]

    def vm_size(self) -> dict[str, object]:
        """A ``VirtualMachineSize`` entry (vmSizes lists)."""
        return {"name": self.name, "numberOfCores": self.vcpus, "osDiskSizeInMB": OS_DISK_MB,
                "resourceDiskSizeInMB": self.temp_disk_gb * 1024, "memoryInMB": int(self.memory_gb * 1024),
                "maxDataDiskCount": self.max_data_disks}


_MB = 1024 * 1024


def _s(name: str, family: str, vcpus: int, mem: float, temp: int, disks: int, nics: int, premium: bool, accel: bool,
       gens: str, eph: bool, iops: int | None, mbps: float | None, hardware: str) -> Size:
    return Size(name, family, vcpus, mem, temp, disks, nics, premium, accel, gens, eph, iops,
                int(mbps * _MB) if mbps is not None else None, hardware)


_V12 = "V1,V2"
SIZES: dict[str, Size] = {s.name.lower(): s for s in (
    # Dsv5 / Dv5 / Dasv5 / Esv5: no temporary disk (v5 hardware)
    _s("Standard_D2s_v5", "standardDSv5Family", 2, 8, 0, 4, 2, True, True, _V12, False, 3750, 85, "v5"),
    _s("Standard_D4s_v5", "standardDSv5Family", 4, 16, 0, 8, 2, True, True, _V12, False, 6400, 145, "v5"),
    _s("Standard_D8s_v5", "standardDSv5Family", 8, 32, 0, 16, 4, True, True, _V12, False, 12800, 290, "v5"),
    _s("Standard_D16s_v5", "standardDSv5Family", 16, 64, 0, 32, 8, True, True, _V12, False, 25600, 600, "v5"),
    _s("Standard_D2_v5", "standardDv5Family", 2, 8, 0, 4, 2, False, True, _V12, False, None, None, "v5"),
    _s("Standard_D4_v5", "standardDv5Family", 4, 16, 0, 8, 2, False, True, _V12, False, None, None, "v5"),
    _s("Standard_D2as_v5", "standardDASv5Family", 2, 8, 0, 4, 2, True, True, _V12, False, 3750, 82, "v5"),
    _s("Standard_D4as_v5", "standardDASv5Family", 4, 16, 0, 8, 2, True, True, _V12, False, 6400, 144, "v5"),
    _s("Standard_E2s_v5", "standardESv5Family", 2, 16, 0, 4, 2, True, True, _V12, False, 3750, 85, "v5"),
    _s("Standard_E4s_v5", "standardESv5Family", 4, 32, 0, 8, 2, True, True, _V12, False, 6400, 145, "v5"),
    _s("Standard_E8s_v5", "standardESv5Family", 8, 64, 0, 16, 4, True, True, _V12, False, 12800, 290, "v5"),
    # Dsv4 / Dv4 / Esv4: no temporary disk (v4 hardware, which also hosts DSv2 and Av2)
    _s("Standard_D2s_v4", "standardDSv4Family", 2, 8, 0, 4, 2, True, True, _V12, False, 3200, 48, "v4"),
    _s("Standard_D4s_v4", "standardDSv4Family", 4, 16, 0, 8, 2, True, True, _V12, False, 6400, 96, "v4"),
    _s("Standard_D8s_v4", "standardDSv4Family", 8, 32, 0, 16, 4, True, True, _V12, False, 12800, 192, "v4"),
    _s("Standard_D2_v4", "standardDv4Family", 2, 8, 0, 4, 2, False, True, _V12, False, None, None, "v4"),
    _s("Standard_E2s_v4", "standardESv4Family", 2, 16, 0, 4, 2, True, True, _V12, False, 3200, 48, "v4"),
    _s("Standard_DS1_v2", "standardDSv2Family", 1, 3.5, 7, 4, 2, True, False, _V12, True, 3200, 48, "v4"),
    _s("Standard_DS2_v2", "standardDSv2Family", 2, 7, 14, 8, 2, True, True, _V12, True, 6400, 96, "v4"),
    _s("Standard_DS3_v2", "standardDSv2Family", 4, 14, 28, 16, 4, True, True, _V12, True, 12800, 192, "v4"),
    _s("Standard_D1_v2", "standardDv2Family", 1, 3.5, 50, 4, 2, False, False, _V12, False, None, None, "v4"),
    _s("Standard_D2_v2", "standardDv2Family", 2, 7, 100, 8, 2, False, True, _V12, False, None, None, "v4"),
    _s("Standard_D2s_v3", "standardDSv3Family", 2, 8, 16, 4, 2, True, True, _V12, True, 3200, 48, "v4"),
    _s("Standard_A0", "standardAFamily", 1, 0.75, 20, 1, 1, False, False, "V1", False, None, None, "v4"),
    _s("Standard_A2_v2", "standardAv2Family", 2, 4, 20, 4, 2, False, False, "V1", False, None, None, "v4"),
    # Fsv2 and B: compute-optimized / burstable hardware
    _s("Standard_F2s_v2", "standardFSv2Family", 2, 4, 16, 4, 2, True, True, _V12, True, 3200, 47, "compute"),
    _s("Standard_F4s_v2", "standardFSv2Family", 4, 8, 32, 8, 2, True, True, _V12, True, 6400, 95, "compute"),
    _s("Standard_F8s_v2", "standardFSv2Family", 8, 16, 64, 16, 4, True, True, _V12, True, 12800, 190, "compute"),
    _s("Standard_B2s", "standardBSFamily", 2, 4, 8, 4, 3, True, False, _V12, False, 1280, 15, "compute"),
    _s("Standard_B2ms", "standardBSFamily", 2, 8, 16, 4, 3, True, False, _V12, False, 1920, 22.5, "compute"),
)}

FAMILY_NAMES = {f: f"Standard {f[8:-6]} Family vCPUs" for f in sorted({s.family for s in SIZES.values()})}

REGIONS = ("eastus", "eastus2", "westus", "westus2", "southcentralus", "westeurope", "northeurope", "uksouth")
ZONES = ("1", "2", "3")
# Each region has one cluster of each kind per zone, named "<region>-<kind>-z<zone>".
CLUSTER_KINDS = {"gen5": ("v5",), "gen4": ("v4",), "compute": ("compute",)}


def size(name: str) -> Size | None:
    return SIZES.get(name.lower())


def clusters(location: str) -> list[tuple[str, str, str]]:
    """(cluster id, kind, zone) of every cluster in a region."""
    return [(f"{location}-{kind}-z{zone}", kind, zone) for zone in ZONES for kind in CLUSTER_KINDS]


def hosts(cluster: str, size_name: str) -> bool:
    s = size(size_name)
    kind = cluster.split("-")[-2] if cluster.count("-") >= 2 else ""
    return s is not None and s.hardware in CLUSTER_KINDS.get(kind, ())


def hosted_sizes(cluster: str) -> list[Size]:
    return [s for s in SIZES.values() if hosts(cluster, s.name)]


# --- managed-disk performance tiers ------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskTier:
    name: str  # "P30", "E10", "S4"
    size_gb: int  # the tier's size (GiB)
    iops: int
    mbps: int


def _tiers(prefix: str, rows: tuple[tuple[int, int, int, int], ...]) -> tuple[DiskTier, ...]:
    return tuple(DiskTier(f"{prefix}{n}", size, iops, mbps) for n, size, iops, mbps in rows)


_PREMIUM = _tiers("P", ((1, 4, 120, 25), (2, 8, 120, 25), (3, 16, 120, 25), (4, 32, 120, 25), (6, 64, 240, 50),
                        (10, 128, 500, 100), (15, 256, 1100, 125), (20, 512, 2300, 150), (30, 1024, 5000, 200),
                        (40, 2048, 7500, 250), (50, 4096, 7500, 250), (60, 8192, 16000, 500),
                        (70, 16384, 18000, 750), (80, 32767, 20000, 900)))
_STANDARD_SSD = _tiers("E", ((1, 4, 500, 60), (2, 8, 500, 60), (3, 16, 500, 60), (4, 32, 500, 60), (6, 64, 500, 60),
                             (10, 128, 500, 60), (15, 256, 500, 60), (20, 512, 500, 60), (30, 1024, 500, 60),
                             (40, 2048, 500, 60), (50, 4096, 500, 60), (60, 8192, 2000, 400),
                             (70, 16384, 4000, 600), (80, 32767, 6000, 750)))
_STANDARD_HDD = _tiers("S", ((4, 32, 500, 60), (6, 64, 500, 60), (10, 128, 500, 60), (15, 256, 500, 60),
                             (20, 512, 500, 60), (30, 1024, 500, 60), (40, 2048, 500, 60), (50, 4096, 500, 60),
                             (60, 8192, 1300, 300), (70, 16384, 2000, 500), (80, 32767, 2000, 500)))
DISK_TIERS: dict[str, tuple[DiskTier, ...]] = {
    "premium_lrs": _PREMIUM, "premium_zrs": _PREMIUM,
    "standardssd_lrs": _STANDARD_SSD, "standardssd_zrs": _STANDARD_SSD,
    "standard_lrs": _STANDARD_HDD,
}


def disk_tiers(sku: str) -> tuple[DiskTier, ...] | None:
    """The size-based tiers of a disk SKU; None for SKUs whose performance is set, not derived (PremiumV2_LRS,
    UltraSSD_LRS) and for unknown SKUs."""
    return DISK_TIERS.get(sku.lower())


def baseline_tier(sku: str, size_gb: int) -> DiskTier | None:
    """The tier a disk of this SKU and size is billed and performs as: the smallest whose size is >= size_gb."""
    tiers = disk_tiers(sku)
    if not tiers:
        return None
    return next((t for t in tiers if t.size_gb >= size_gb), tiers[-1])


def settable_tier(sku: str) -> bool:
    """Premium SSD alone has performance tiers a caller may set (``properties.tier``) and that ARM reports."""
    return sku.lower() in ("premium_lrs", "premium_zrs")
