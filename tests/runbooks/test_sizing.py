"""runbooks.sizing as data: a VM and its region in, the sizes that fit (and why the others do not) out. Pure."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from runbooks import sizing
from runbooks.observe import Observation, VmRef

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


def test_disk_iops_floor() -> None:
    obs = _obs()
    obs.disks["/d1"] = {"sku": {"name": "Premium_LRS"}, "properties": {"diskIOPSReadWrite": 5000,
                                                                       "diskMBpsReadWrite": 200}}
    obs.props["storageProfile"]["dataDisks"] = [{"lun": 0, "managedDisk": {"id": "/d1"}}]
    needs = sizing.needs_of(obs, for_io=True)
    assert needs.iops == 5120 and sizing.disk_performance(obs) == (5120, 225.0)
    # at least 5120 uncached IOPS (6400 and up); a size that does not publish its limit is refused
    assert _fits(obs, needs) == ["Standard_F4s_v2", "Standard_D4s_v5", "Standard_E4s_v5", "Standard_D8s_v5"]
    assert any("no uncached disk IOPS limit" in r for r in sizing.rank(obs, needs).refused["Standard_A4_v2"])


def test_requested_size_comes_from_the_request_body_or_the_message_and_not_from_resolved_failures() -> None:
    obs = _obs(failed_operations=[
        {"error_code": "OperationNotAllowed", "message": "… Standard_E4s_v5 …", "resolved_at": "2026-01-01"},
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
