"""runbooks.sizing as data: a VM and its region in, the sizes that fit (and why the others do not) out. Pure."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from runbooks import sizing
from runbooks.observe import Observation, VmRef, _stamp, failed_operations

RG, LOC = "rg", "eastus"
VM_ID = f"/subscriptions/s/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/vm"
OS_ID = f"/subscriptions/s/resourceGroups/{RG}/providers/Microsoft.Compute/disks/os"


def _sku(name: str, family: str, vcpus: int, mem: float, *, premium: bool = True, accel: bool = True,
         gens: str = "V1,V2", nics: int = 2, disks: int = 8, iops: int | None = 3750, mbps: float = 85,
         restrictions: list[dict[str, Any]] | None = None, zones: tuple[str, ...] = ("1", "2", "3")) -> dict[str, Any]:
    caps = {"vCPUs": str(vcpus), "MemoryGB": str(mem), "MaxDataDiskCount": str(disks),
            "MaxNetworkInterfaces": str(nics), "PremiumIO": str(premium), "AcceleratedNetworkingEnabled": str(accel),
            "HyperVGenerations": gens}
    if iops is not None:
        caps |= {"UncachedDiskIOPS": str(iops), "UncachedDiskBytesPerSecond": str(int(mbps * 1_000_000))}
    return {"name": name, "family": family, "capabilities": caps, "zones": list(zones),
            "restrictions": restrictions or []}


SKUS = [
    _sku("Standard_D2s_v5", "standardDSv5Family", 2, 8),
    _sku("Standard_D4s_v5", "standardDSv5Family", 4, 16, iops=6400, mbps=145),
    _sku("Standard_D8s_v5", "standardDSv5Family", 8, 32, iops=12800, mbps=290),
    _sku("Standard_E4s_v5", "standardESv5Family", 4, 32, iops=6400, mbps=145),
    _sku("Standard_D4_v5", "standardDv5Family", 4, 16, premium=False, iops=None),
    _sku("Standard_A4_v2", "standardAv2Family", 4, 8, premium=True, accel=False, gens="V1", iops=None),
    _sku("Standard_F4s_v2", "standardFSv2Family", 4, 8, iops=6400, mbps=95),
]


def _obs(**change: Any) -> Observation:
    vm = {"id": VM_ID, "name": "vm", "location": LOC, "properties": {
        "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
        "storageProfile": {"osDisk": {"name": "os", "managedDisk": {"id": OS_ID, "storageAccountType": "Premium_LRS"}},
                           "dataDisks": []},
        "networkProfile": {"networkInterfaces": [{"id": "/nic1"}]}}}
    obs = Observation(ref=VmRef(RG, "vm"), subscription="s", vm=vm,
                      instance_view={"statuses": [{"code": "PowerState/deallocated"}]},
                      disks={OS_ID.lower(): {"id": OS_ID, "sku": {"name": "Premium_LRS"},
                                             "properties": {"hyperVGeneration": "V1", "diskIOPSReadWrite": 120,
                                                            "diskMBpsReadWrite": 25}}},
                      skus=copy.deepcopy(SKUS), usages=[], gathered={"vm", "instance-view", "disks", "skus"})
    for key, value in change.items():
        setattr(obs, key, value)
    return obs


def _fits(obs: Observation, needs: sizing.Needs | None = None) -> list[str]:
    return [s.name for s in sizing.rank(obs, needs or sizing.needs_of(obs)).fitting]


CASES = [
    # (why, how the observation differs, sizes that fit, a size refused → part of the reason)
    ("a deallocated premium V1 VM: every premium size with as many vCPUs and memory, closest first", {},
     ["Standard_D4s_v5", "Standard_E4s_v5", "Standard_D8s_v5"], ("Standard_D4_v5", "premium disks")),
    ("less memory than the size asked for is refused", {},
     ["Standard_D4s_v5", "Standard_E4s_v5", "Standard_D8s_v5"], ("Standard_F4s_v2", "fewer than 4 and 16")),
    ("a size restricted in the region is refused, naming the reason",
     {"skus": [*SKUS[:3], _sku("Standard_E4s_v5", "standardESv5Family", 4, 32, restrictions=[
         {"type": "Location", "values": [LOC], "reason": "NotAvailableForSubscription", "zones": []}])]},
     ["Standard_D4s_v5", "Standard_D8s_v5"], ("Standard_E4s_v5", "NotAvailableForSubscription")),
    ("an allocated VM keeps to its cluster's list",
     {"instance_view": {"statuses": [{"code": "PowerState/running"}]},
      "sizes": [{"name": "Standard_D2s_v5"}, {"name": "Standard_D4s_v5"}, {"name": "Standard_E4s_v5"}]},
     ["Standard_D4s_v5", "Standard_E4s_v5"], ("Standard_F4s_v2", "current hardware cluster")),
    ("a deallocated member of a set pinned by a running member keeps to the set's cluster",
     {"members": {"/m": {"name": "m", "powerState": "running"}}, "availability_set": {"name": "set"},
      "sizes": [{"name": "Standard_D4s_v5"}]},
     ["Standard_D4s_v5"], ("Standard_E4s_v5", "availability set's cluster")),
    ("quota: within the family the resize adds only the difference; past the limit it is refused",
     {"usages": [{"name": "standardDSv5Family", "label": "DSv5", "current": 6, "limit": 8},
                 {"name": "cores", "label": "Total", "current": 6, "limit": 100}]},
     ["Standard_D4s_v5", "Standard_E4s_v5"], ("Standard_D8s_v5", "6 more vCPUs of DSv5: 6 of 8")),
    ("quota: another family counts its whole size",
     {"usages": [{"name": "standardESv5Family", "label": "ESv5", "current": 2, "limit": 4}]},
     ["Standard_D4s_v5", "Standard_D8s_v5"], ("Standard_E4s_v5", "4 more vCPUs of ESv5")),
    ("the regional total counts the vCPUs given back by the old size",
     {"usages": [{"name": "cores", "label": "Total", "current": 10, "limit": 12}]},
     ["Standard_D4s_v5", "Standard_E4s_v5"], ("Standard_D8s_v5", "6 more vCPUs of Total")),
]


@pytest.mark.parametrize(("why", "change", "fits", "refused"), CASES, ids=[c[0][:50] for c in CASES])
def test_which_sizes_fit(why: str, change: dict[str, Any], fits: list[str], refused: tuple[str, str]) -> None:
    obs = _obs(**change)
    needs = sizing.needs_of(obs, at_least="Standard_D4s_v5")
    advice = sizing.rank(obs, needs)
    assert [s.name for s in advice.fitting] == fits, why
    name, reason = refused
    assert any(reason in r for r in advice.refused[name]), (why, advice.refused.get(name))


def test_features_the_vm_uses_are_required() -> None:
    obs = _obs()
    obs.disks[OS_ID.lower()]["properties"]["hyperVGeneration"] = "V2"
    obs.nics = {"/nic1": {"properties": {"enableAcceleratedNetworking": True}}}
    obs.props["networkProfile"]["networkInterfaces"] = [{"id": "/nic1"}, {"id": "/nic2"}, {"id": "/nic3"}]
    needs = sizing.needs_of(obs)
    assert (needs.generation, needs.accelerated, needs.nics, needs.premium) == ("V2", True, 3, True)
    advice = sizing.rank(obs, needs)
    assert advice.fitting == []  # every size takes 2 NICs
    assert any("takes 2 NICs" in r for r in advice.refused["Standard_D8s_v5"])
    assert any("Hyper-V V2" in r for r in advice.refused["Standard_A4_v2"])


def test_trusted_launch_needs_generation_2() -> None:
    obs = _obs()
    obs.props["securityProfile"] = {"securityType": "TrustedLaunch"}
    assert sizing.needs_of(obs).generation == "V2"


@pytest.mark.parametrize(("disk_mbps", "fits"), [
    (50, ["Standard_F4s_v2", "Standard_D4s_v5", "Standard_E4s_v5", "Standard_D8s_v5"]),  # IOPS decide
    (200, ["Standard_D8s_v5"]),  # 225 MB/s in all: F4s_v2 (95), D4s_v5 and E4s_v5 (145) are too narrow
])
def test_disk_iops_and_throughput_floor(disk_mbps: int, fits: list[str]) -> None:
    obs = _obs()
    obs.disks["/d1"] = {"sku": {"name": "Premium_LRS"}, "properties": {"diskIOPSReadWrite": 5000,
                                                                       "diskMBpsReadWrite": disk_mbps}}
    obs.props["storageProfile"]["dataDisks"] = [{"lun": 0, "managedDisk": {"id": "/d1"}}]
    needs = sizing.needs_of(obs, for_io=True)
    assert (needs.iops, needs.mbps) == (5120, 25.0 + disk_mbps) == sizing.disk_performance(obs)
    # at least 5120 uncached IOPS (6400 and up); a size that does not publish its limit is refused
    assert _fits(obs, needs) == fits
    refused = sizing.rank(obs, needs).refused
    assert any("no uncached disk IOPS limit" in r for r in refused["Standard_A4_v2"])
    if "Standard_F4s_v2" not in fits:
        assert any("throughput at 95 MB/s" in r for r in refused["Standard_F4s_v2"]), refused["Standard_F4s_v2"]


def test_a_trusted_launch_vm_needs_a_size_that_allows_it() -> None:
    no_tl = _sku("Standard_D4s_v5", "standardDSv5Family", 4, 16, iops=6400, mbps=145)
    no_tl["capabilities"]["TrustedLaunchDisabled"] = "True"
    obs = _obs(skus=[SKUS[0], no_tl, *SKUS[2:]])
    obs.props["securityProfile"] = {"securityType": "TrustedLaunch"}
    refused = sizing.rank(obs, sizing.needs_of(obs)).refused
    assert any("Trusted Launch" in r for r in refused["Standard_D4s_v5"]), refused.get("Standard_D4s_v5")
    obs.props["securityProfile"] = {}
    assert "Standard_D4s_v5" not in sizing.rank(obs, sizing.needs_of(obs)).refused


def test_a_spot_vm_counts_against_the_low_priority_quota_only() -> None:
    usages = [{"name": "standardDSv5Family", "current": 10, "limit": 10}, {"name": "cores", "current": 10,
                                                                          "limit": 10},
              {"name": "lowPriorityCores", "current": 2, "limit": 6, "label": "Total Regional Low-priority vCPUs"}]
    obs = _obs(usages=usages)
    needs = sizing.needs_of(obs)
    assert any("vCPUs of" in r for r in sizing.rank(obs, needs).refused["Standard_D4s_v5"])  # regular: no room
    obs.props["priority"] = "Spot"
    refused = sizing.rank(obs, needs).refused
    assert "Standard_D4s_v5" not in refused  # 2 + (4 - 2) ≤ 6
    assert any("Low-priority" in r for r in refused["Standard_D8s_v5"]), refused.get("Standard_D8s_v5")


def test_a_size_the_region_does_not_offer_is_still_named_as_requested() -> None:
    obs = _obs(failed_operations=[{"error_code": "SkuNotAvailable", "message": "The requested size for resource "
                                   "is currently not available", "requested_size": "Standard_NC6s_v3"}])
    assert sizing.requested_size(obs) == "Standard_NC6s_v3"
    advice = sizing.advise(obs, "sizes")
    assert "Standard_NC6s_v3, which was asked for: Standard_NC6s_v3 is not a size of" in advice["lines"][0]
    assert any("as its size Standard_D2s_v5" in line for line in advice["lines"])  # the floor: its own size
    assert advice["top"] == "Standard_A4_v2"  # 4 vCPUs, 8 GB: the closest above D2s_v5 (A before F by name)


def test_requested_size_comes_from_the_request_body_or_the_message_and_not_from_resolved_failures() -> None:
    obs = _obs(failed_operations=[
        {"error_code": "OperationNotAllowed", "message": "because the requested size Standard_E4s_v5 is not "
         "available", "requested_size": "Standard_E4s_v5", "resolved_at": "2026-01-01"},
        {"error_code": "SkuNotAvailable", "message": "The requested size is not available",
         "requested_size": "standard_f4s_v2"},
    ])
    assert sizing.requested_size(obs) == "Standard_F4s_v2"
    obs.failed_operations = [{"error_code": "OperationNotAllowed", "message": "because the requested size "
                              "Standard_D8s_v5 is not available … The available sizes are: Standard_D4s_v5"}]
    assert sizing.requested_size(obs) == "Standard_D8s_v5"
    obs.failed_operations = [{"error_code": "OperationNotAllowed", "message": "Unable to start the VM 'vm' because "
                              "the requested size Standard_D2s_v5 is not available … sizes are: Standard_D4s_v5"}]
    assert sizing.requested_size(obs) is None  # a start of its own size: nothing else was asked for
    obs.failed_operations = [{"error_code": "AllocationFailed", "message": "no capacity"}]
    assert sizing.requested_size(obs) is None


def test_advice_names_the_zones_where_the_size_asked_for_is_allowed() -> None:
    restricted = _sku("Standard_E4s_v5", "standardESv5Family", 4, 32, restrictions=[
        {"type": "Zone", "values": [LOC], "reason": "NotAvailableForSubscription", "zones": ["1"]}])
    obs = _obs(skus=[*SKUS[:3], restricted], failed_operations=[
        {"error_code": "SkuNotAvailable", "message": "not available", "requested_size": "Standard_E4s_v5"}])
    assert obs.vm is not None
    obs.vm["zones"] = ["1"]
    advice = sizing.advise(obs, "sizes")
    assert advice["data"]["requested_zones"] == ["2", "3"]
    assert any("zone 1 of eastus" in r for r in advice["data"]["requested_refusals"])
    assert any("offered here in zone 2, 3" in line for line in advice["lines"])


WRITE = "Microsoft.Compute/virtualMachines/write"


def _event(status: str, when: str, corr: str, size: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if status == "Started" and size:
        props["requestbody"] = json.dumps({"properties": {"hardwareProfile": {"vmSize": size}}})
    if status == "Failed":
        props["statusMessage"] = json.dumps({"error": {"code": "OperationNotAllowed", "message": "not in cluster"}})
    return {"status": {"value": status}, "eventTimestamp": when, "correlationId": corr,
            "operationName": {"value": WRITE}, "properties": props}


@pytest.mark.parametrize(("later_size", "stands"), [("Standard_F4s_v2", False), ("Standard_D2s_v5", True),
                                                    (None, True)], ids=["same-size", "other-size", "tag-update"])
def test_a_refused_resize_stands_until_a_write_asking_for_that_size_succeeds(later_size: str | None,
                                                                              stands: bool) -> None:
    """Newest first, as the activity log lists them; Azure's timestamps carry 7 fractional digits, which
    Python 3.10's fromisoformat refuses (the times must still order)."""
    events = [_event("Succeeded", "2026-12-01T10:05:00.1234567Z", "c2"),
              _event("Started", "2026-12-01T10:04:59.9999999Z", "c2", later_size),
              _event("Failed", "2026-12-01T10:00:01.7654321Z", "c1"),
              _event("Started", "2026-12-01T10:00:00.5Z", "c1", "Standard_F4s_v2")]
    [op] = failed_operations(events)
    assert op["requested_size"] == "Standard_F4s_v2"
    assert ("resolved_at" not in op) is stands, op
    if not stands:
        assert op["resolved_at"].startswith("2026-12-01T10:05:00.123456")


def test_event_times_with_seven_fractional_digits_order_as_times() -> None:
    assert _stamp("2026-12-01T10:00:00.1234567Z") == "2026-12-01T10:00:00.123456Z"  # read, not kept as text
    assert _stamp("2026-12-01T10:00:00.1234567Z") < _stamp("2026-12-01T10:00:00.9Z") < _stamp(
        "2026-12-01T10:00:01Z")
