"""Disk performance through the real SDK: each managed disk's tier, provisioned IOPS and MB/s (derived from its SKU
and size), a VM size's uncached-disk cap in resourceSkus, the rule that a disk changes SKU only while its VM is
deallocated, and the ``iops-limit`` scenario built on them."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import requests
from armsim_env import Env
from azure.core.exceptions import ResourceExistsError

from armsim import ArmSim

MiB = 1024 * 1024


def _disk(env: Env, rg: str, name: str, size: int, sku: str = "Premium_LRS", **props: Any) -> Any:
    return env.compute.disks.begin_create_or_update(rg, name, {
        "location": "eastus", "sku": {"name": sku},
        "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": size, **props}}).result()


def _perf(disk: Any) -> tuple[str | None, int | None, int | None]:
    return disk.tier, disk.disk_iops_read_write, disk.disk_m_bps_read_write


def _caps(env: Env) -> dict[str, dict[str, str]]:
    return {s.name: {c.name: c.value for c in s.capabilities}
            for s in env.compute.resource_skus.list(filter="location eq 'eastus'")}


# --- VM sizes: uncached disk limits ---------------------------------------------------------------------------------


def test_resource_skus_report_each_sizes_uncached_disk_cap(env: Env) -> None:
    caps = _caps(env)
    published = {  # size: (IOPS, MBps), from the size-series pages
        "Standard_D2s_v5": (3750, 85), "Standard_D4s_v5": (6400, 145), "Standard_D8s_v5": (12800, 290),
        "Standard_D16s_v5": (25600, 600), "Standard_D2as_v5": (3750, 82), "Standard_D4as_v5": (6400, 144),
        "Standard_E2s_v5": (3750, 85), "Standard_E4s_v5": (6400, 145), "Standard_D2s_v4": (3200, 48),
        "Standard_E2s_v4": (3200, 48), "Standard_DS1_v2": (3200, 48), "Standard_D2s_v3": (3200, 48),
        "Standard_F2s_v2": (3200, 47), "Standard_F4s_v2": (6400, 95), "Standard_B2s": (1280, 15),
    }
    for size, (iops, mbps) in published.items():
        assert (caps[size]["UncachedDiskIOPS"], caps[size]["UncachedDiskBytesPerSecond"]) == (
            str(iops), str(mbps * MiB)), size
    assert caps["Standard_B2ms"]["UncachedDiskBytesPerSecond"] == str(int(22.5 * MiB))
    assert "UncachedDiskIOPS" not in caps["Standard_D2_v5"]  # no premium storage, no uncached figure


# --- disks: tier, IOPS, MB/s ----------------------------------------------------------------------------------------


def test_premium_ssd_gets_the_smallest_tier_that_holds_its_size(env: Env) -> None:
    env.rg("rg")
    expected = {4: ("P1", 120, 25), 32: ("P4", 120, 25), 64: ("P6", 240, 50), 100: ("P10", 500, 100),
                128: ("P10", 500, 100), 129: ("P15", 1100, 125), 256: ("P15", 1100, 125), 512: ("P20", 2300, 150),
                1024: ("P30", 5000, 200), 2048: ("P40", 7500, 250), 4096: ("P50", 7500, 250),
                8192: ("P60", 16000, 500), 16384: ("P70", 18000, 750), 32767: ("P80", 20000, 900)}
    for size, perf in expected.items():
        made = _disk(env, "rg", f"p-{size}", size)
        assert _perf(made) == perf, size
        assert _perf(env.compute.disks.get("rg", f"p-{size}")) == perf, size
    zrs = _disk(env, "rg", "p-zrs", 1024, "Premium_ZRS")
    assert _perf(zrs) == ("P30", 5000, 200)
    raw = env.raw("GET", f"{env.rg_id('rg')}/providers/Microsoft.Compute/disks/p-1024", api="2026-03-02").json()
    assert {k: raw["properties"][k] for k in ("tier", "diskIOPSReadWrite", "diskMBpsReadWrite")} == {
        "tier": "P30", "diskIOPSReadWrite": 5000, "diskMBpsReadWrite": 200}


def test_standard_ssd_and_hdd_report_their_tiers_figures_without_a_tier(env: Env) -> None:
    env.rg("rg")
    expected = {("StandardSSD_LRS", 4): (500, 60), ("StandardSSD_LRS", 1024): (500, 60),
                ("StandardSSD_LRS", 4096): (500, 60), ("StandardSSD_LRS", 8192): (2000, 400),
                ("StandardSSD_LRS", 32767): (6000, 750), ("StandardSSD_ZRS", 64): (500, 60),
                ("Standard_LRS", 8): (500, 60), ("Standard_LRS", 200): (500, 60), ("Standard_LRS", 8192): (1300, 300),
                ("Standard_LRS", 16384): (2000, 500)}
    for (sku, size), (iops, mbps) in expected.items():
        made = _disk(env, "rg", f"{sku.lower().replace('_', '-')}-{size}", size, sku)
        assert _perf(made) == (None, iops, mbps), (sku, size)


def test_resize_and_sku_change_recompute_the_figures(env: Env) -> None:
    env.rg("rg")
    assert _perf(_disk(env, "rg", "d1", 128)) == ("P10", 500, 100)
    grown = env.compute.disks.begin_update("rg", "d1", {"properties": {"diskSizeGB": 1024}}).result()
    assert _perf(grown) == ("P30", 5000, 200)
    standard = env.compute.disks.begin_update("rg", "d1", {"sku": {"name": "StandardSSD_LRS"}}).result()
    assert standard.sku.name == "StandardSSD_LRS" and _perf(standard) == (None, 500, 60)
    back = env.compute.disks.begin_update("rg", "d1", {"sku": {"name": "Premium_LRS"}}).result()
    assert _perf(back) == ("P30", 5000, 200)
    tagged = env.compute.disks.begin_update("rg", "d1", {"tags": {"team": "io"}}).result()
    assert _perf(tagged) == ("P30", 5000, 200)


def test_a_chosen_premium_tier_and_provisioned_skus_keep_what_was_given(env: Env) -> None:
    env.rg("rg")
    assert _perf(_disk(env, "rg", "fast", 128, tier="P30")) == ("P30", 5000, 200)  # performance tier above baseline
    assert _perf(env.compute.disks.begin_update("rg", "fast", {"properties": {"diskSizeGB": 256}}).result()) == (
        "P30", 5000, 200)  # kept across a resize while still above the new baseline
    outgrown = env.compute.disks.begin_update("rg", "fast", {"properties": {"diskSizeGB": 2048}}).result()
    assert _perf(outgrown) == ("P40", 7500, 250)
    assert _perf(_disk(env, "rg", "low", 1024, tier="P10")) == ("P30", 5000, 200)  # never below the baseline
    v2 = _disk(env, "rg", "v2", 256, "PremiumV2_LRS", diskIOPSReadWrite=4000, diskMBpsReadWrite=150)
    assert _perf(v2) == (None, 4000, 150)
    ultra = _disk(env, "rg", "ultra", 64, "UltraSSD_LRS", diskIOPSReadWrite=20000, diskMBpsReadWrite=500)
    assert _perf(ultra) == (None, 20000, 500)
    tuned = env.compute.disks.begin_update("rg", "ultra", {"properties": {"diskIOPSReadWrite": 30000}}).result()
    assert _perf(tuned) == (None, 30000, 500)


def test_vm_disks_created_with_the_vm_report_their_figures(env: Env) -> None:
    env.rg("rg")
    vm = env.vm("rg", "vm1", data_disks=[{}])
    os_disk = env.compute.disks.get("rg", vm.storage_profile.os_disk.name)
    data = env.compute.disks.get("rg", vm.storage_profile.data_disks[0].name)
    assert (os_disk.disk_size_gb, _perf(os_disk)) == (127, ("P10", 500, 100))
    assert (data.disk_size_gb, _perf(data)) == (32, ("P4", 120, 25))
    snap = env.compute.snapshots.begin_create_or_update("rg", "snap", {
        "location": "eastus", "properties": {"creationData": {"createOption": "Copy",
                                                              "sourceResourceId": os_disk.id}}}).result()
    raw = env.raw("GET", f"{env.rg_id('rg')}/providers/Microsoft.Compute/snapshots/snap", api="2026-03-02").json()
    assert not {"tier", "diskIOPSReadWrite", "diskMBpsReadWrite"} & set(raw["properties"])  # disks only
    copy = env.compute.disks.begin_create_or_update("rg", "copy", {
        "location": "eastus", "sku": {"name": "StandardSSD_LRS"},
        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": snap.id}}}).result()
    assert (copy.disk_size_gb, _perf(copy)) == (127, (None, 500, 60))


# --- SKU change needs the VM deallocated ----------------------------------------------------------------------------


def test_sku_change_refused_while_the_vm_holds_an_allocation(arm: ArmSim, env: Env) -> None:
    env.rg("rg")
    vm = env.vm("rg", "vm1", data_disks=[{}])
    data_name, os_name = vm.storage_profile.data_disks[0].name, vm.storage_profile.os_disk.name
    message = (f"Cannot change the SKU of disk {data_name} while it is attached to running VM {vm.id}. Changing the "
               "disk type of an Azure Virtual Machine's disk requires the virtual machine to be deallocated. Please "
               "stop your VM and retry the operation.")
    with pytest.raises(ResourceExistsError) as e:  # PATCH
        env.compute.disks.begin_update("rg", data_name, {"sku": {"name": "StandardSSD_LRS"}})
    assert (e.value.status_code, e.value.error.code, e.value.error.message) == (409, "OperationNotAllowed", message)
    with pytest.raises(ResourceExistsError) as e:  # PUT with the whole disk, resized as well: nothing changes
        env.compute.disks.begin_create_or_update("rg", data_name, {
            "location": "eastus", "sku": {"name": "Standard_LRS"}, "tags": {"t": "1"},
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 64}})
    assert e.value.error.code == "OperationNotAllowed"
    kept = env.compute.disks.get("rg", data_name)
    assert (kept.sku.name, kept.disk_size_gb, kept.tags, _perf(kept)) == ("Premium_LRS", 32, None, ("P4", 120, 25))
    failed = [json.loads(ev["properties"]["statusMessage"])["error"]["code"] for ev in arm.world.default.activity
              if ev["status"]["value"] == "Failed" and ev["resourceId"].endswith("/disks/" + data_name)]
    assert failed == ["OperationNotAllowed", "OperationNotAllowed"]
    # the same SKU again, a resize or tags are fine while it runs
    env.compute.disks.begin_update("rg", data_name, {"sku": {"name": "Premium_LRS"}, "tags": {"t": "2"}}).result()

    env.compute.virtual_machines.begin_power_off("rg", "vm1").result()  # stopped still holds the allocation
    with pytest.raises(ResourceExistsError):
        env.compute.disks.begin_update("rg", os_name, {"sku": {"name": "StandardSSD_LRS"}})
    env.compute.virtual_machines.begin_deallocate("rg", "vm1").result()
    for name in (data_name, os_name):
        changed = env.compute.disks.begin_update("rg", name, {"sku": {"name": "StandardSSD_LRS"}}).result()
        assert changed.sku.name == "StandardSSD_LRS" and changed.tier is None and changed.disk_iops_read_write == 500
    storage = env.compute.virtual_machines.get("rg", "vm1").storage_profile  # the VM shows its disks' SKU
    assert storage.os_disk.managed_disk.storage_account_type == "StandardSSD_LRS"
    assert storage.data_disks[0].managed_disk.storage_account_type == "StandardSSD_LRS"
    env.compute.virtual_machines.begin_start("rg", "vm1").result()
    assert env.compute.disks.get("rg", data_name).disk_state == "Attached"


def test_sku_change_of_an_unattached_disk(env: Env) -> None:
    env.rg("rg")
    _disk(env, "rg", "free", 512, "Standard_LRS")
    changed = env.compute.disks.begin_update("rg", "free", {"sku": {"name": "Premium_LRS"}}).result()
    assert (changed.sku.name, _perf(changed)) == ("Premium_LRS", ("P20", 2300, 150))


# --- the iops-limit scenario ----------------------------------------------------------------------------------------


def _vm_disk_iops(env: Env, rg: str, name: str) -> tuple[str, int, list[Any]]:
    vm = env.compute.virtual_machines.get(rg, name)
    ids = [vm.storage_profile.os_disk.managed_disk.id] + [d.managed_disk.id for d in vm.storage_profile.data_disks]
    disks = [env.compute.disks.get(rg, i.rsplit("/", 1)[1]) for i in ids]
    return str(vm.hardware_profile.vm_size), sum(d.disk_iops_read_write for d in disks), disks


def test_iops_limit_scenario(arm: ArmSim, env: Env) -> None:
    rg = "rg-iops"
    seeded = arm.seed("iops-limit")
    ids = {n: env.vm_id(rg, n) for n in ("io-01", "io-02", "io-03")}
    assert seeded["vms"] == list(ids.values())
    assert seeded["targets"] == [ids["io-01"]] and seeded["distractors"] == [ids["io-02"], ids["io-03"]]
    caps = _caps(env)
    totals = {}
    for name in ids:
        assert "PowerState/running" in env.statuses(rg, name)
        size, total, disks = _vm_disk_iops(env, rg, name)
        totals[name] = (size, total, int(caps[size]["UncachedDiskIOPS"]))
        assert all(d.sku.name == "Premium_LRS" and d.managed_by == ids[name] for d in disks)
    assert totals["io-01"] == ("Standard_D2s_v5", 10500, 3750)  # two P30 (5000 each) + the P10 OS disk
    assert totals["io-02"] == ("Standard_D2s_v5", 1000, 3750)
    assert totals["io-03"] == ("Standard_D16s_v5", 10500, 25600)
    io01 = env.compute.virtual_machines.get(rg, "io-01")
    assert [(d.disk_size_gb, d.caching) for d in io01.storage_profile.data_disks] == [(1024, "None"), (1024, "None")]
    for d in io01.storage_profile.data_disks:
        assert _perf(env.compute.disks.get(rg, d.name)) == ("P30", 5000, 200)
    assert caps["Standard_D2s_v5"]["UncachedDiskBytesPerSecond"] == str(85 * MiB)  # 400 MB/s of disks behind 85
    assert not [e for e in arm.world.default.activity if e["status"]["value"] == "Failed"]


def test_serve_seeds_the_iops_limit_scenario() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "armsim", "serve", "--scenario", "iops-limit",
                             "--latency-scale", "0.001"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        disk = requests.get(f"{info['endpoint']}/subscriptions/{info['subscription_id']}/resourceGroups/rg-iops/"
                            "providers/Microsoft.Compute/disks/io-01_data0?api-version=2026-03-02",
                            headers={"Authorization": "Bearer any"}, verify=info["ca_bundle"], timeout=30)
        assert disk.status_code == 200, disk.text
        props = disk.json()["properties"]
        assert (props["tier"], props["diskIOPSReadWrite"], props["diskMBpsReadWrite"]) == ("P30", 5000, 200)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
