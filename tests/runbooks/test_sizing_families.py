"""The sizing playbooks on armsim's allocator, through the real SDK: size-not-in-cluster (rg-resize), sku-not-available
(rg-sku) and quota-exceeded (rg-quota). Each detects from the refused write in the activity log, advises with zero
writes unless its fix is named, validates a resize target before the first write, and never touches the
distractors."""

from __future__ import annotations

import json

import pytest
from remediation_helpers import Rig

from runbooks.errors import AdviceOnly
from runbooks.observe import VmRef
from runbooks.remediate import remediate_vm, run_diagnosis


def _vm(rig: Rig, rg: str, name: str) -> tuple[str, str]:
    """(size, power state) as Azure shows them."""
    client = rig.arm.compute_client(retry_total=0)
    vm = client.virtual_machines.get(rg, name, expand="instanceView")
    power = next(s.code for s in vm.instance_view.statuses if s.code.startswith("PowerState/"))
    return vm.hardware_profile.vm_size, power.split("/", 1)[1]


def _writes(rig: Rig, mark: int) -> list[tuple[str, str]]:
    return [(w["method"], "/".join(w["path"].rstrip("/").rsplit("/", 2)[-2:])) for w in rig.arm.writes(mark)]


# --- size not in cluster -------------------------------------------------------------------------------


def test_size_not_in_cluster_is_detected_and_advised_with_zero_writes(rig: Rig) -> None:
    rig.arm.seed("size-not-in-cluster")
    az = rig.az()
    mark = rig.arm.last_request
    diag = run_diagnosis(az, VmRef("rg-resize", "api-01"))
    assert diag.playbook is not None and diag.playbook.id == "size-not-in-cluster"
    assert diag.recommended is None  # every scenario for a set member stops more than the VM: named only
    assert set(diag.fitting) == set() and {f.scenario.id for f in diag.fits if f.fits} == {"resize-set",
                                                                                           "resize-in-place"}
    advice = diag.advice
    assert advice is not None and advice["data"]["requested"] == "Standard_F4s_v2"
    assert any("not available in its availability set's cluster" in r for r in advice["data"]["requested_refusals"])
    fitting = [s["name"] for s in advice["data"]["fitting"]]
    assert "Standard_F4s_v2" not in fitting and fitting[0] == "Standard_D4s_v5"  # in the cluster, ≥ 4 vCPUs / 8 GB
    for name in ("api-02", "api-03", "api-04"):  # a set sibling, a resize that worked, a healthy VM
        assert run_diagnosis(az, VmRef("rg-resize", name)).playbook is None, name
    with pytest.raises(AdviceOnly) as e:
        remediate_vm(az, VmRef("rg-resize", "api-01"), rig.hooks(), yes=True)
    assert "--scenario resize-set" in str(e.value) and "--scenario resize-in-place" in str(e.value)
    cli = rig.invoke("remediate", "--vm", "rg-resize/api-01", "--yes")
    assert cli.returncode == 0, cli.stderr
    assert "It advises; nothing was changed" in cli.stdout and "Standard_D4s_v5" in cli.stdout
    assert rig.arm.writes(mark) == []


def test_a_standalone_vm_is_deallocated_resized_to_the_size_asked_for_and_started(rig: Rig) -> None:
    """api-05 (standalone, running): its resize to Standard_F4s_v2 was refused by its cluster. ``--yes`` takes the
    one unattended scenario: deallocate, resize to the size asked for, start (on a cluster that offers it)."""
    rig.arm.seed("size-not-in-cluster")
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", "rg-resize/api-05", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "scenario deallocate-resize-start" in done.stdout
    assert _writes(rig, mark) == [("POST", "api-05/deallocate"), ("PATCH", "virtualMachines/api-05"),
                                  ("POST", "api-05/start")]
    assert _vm(rig, "rg-resize", "api-05") == ("Standard_F4s_v2", "running")
    assert run_diagnosis(rig.az(), VmRef("rg-resize", "api-05")).playbook is None  # healthy now
    assert _vm(rig, "rg-resize", "api-03") == ("Standard_D4s_v5", "running")  # distractor untouched


def test_resize_set_names_the_member_the_new_cluster_cannot_take_and_the_way_forward_converges(rig: Rig) -> None:
    """api-01 asks for Standard_F4s_v2 in a set of v5 VMs. resize-set deallocates both, resizes api-01, starts it
    first (on a cluster that offers F4s_v2); api-02's Standard_D2s_v5 is not offered there, so its start is
    refused. The run fails naming api-02, never silently; resizing api-02 and re-running converges."""
    rig.arm.seed("size-not-in-cluster")
    mark = rig.arm.last_request
    dry = rig.invoke("remediate", "--vm", "rg-resize/api-01", "--scenario", "resize-set", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "api-01 (running), api-02 (running)" in dry.stdout and "Standard_F4s_v2 (requested)" in dry.stdout
    assert "cannot start there" in dry.stdout  # the plan says so before anything is stopped
    assert rig.arm.writes(mark) == []
    first = rig.invoke("remediate", "--vm", "rg-resize/api-01", "--scenario", "resize-set", "--yes")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "api-02 powerState = running (found deallocated)" in first.stderr
    writes = _writes(rig, mark)
    assert sorted(writes[:2]) == [("POST", "api-01/deallocate"), ("POST", "api-02/deallocate")]
    assert writes[2:] == [("PATCH", "virtualMachines/api-01"), ("POST", "api-01/start"), ("POST", "api-02/start")]
    assert _vm(rig, "rg-resize", "api-01") == ("Standard_F4s_v2", "running")
    assert _vm(rig, "rg-resize", "api-02") == ("Standard_D2s_v5", "deallocated")
    # api-02: its refused start is the evidence; its fix is named, and it takes a size the set's cluster offers
    advice = rig.invoke("remediate", "--vm", "rg-resize/api-02", "--yes")
    assert advice.returncode == 0 and "--scenario resize-and-start" in advice.stdout, advice.stdout + advice.stderr
    fixed = rig.invoke("remediate", "--vm", "rg-resize/api-02", "--scenario", "resize-and-start", "--yes")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    # the closest the compute cluster offers with ≥ 2 vCPUs and 8 GB, not burstable: F4s_v2 (F2s_v2 has 4 GB)
    assert _vm(rig, "rg-resize", "api-02") == ("Standard_F4s_v2", "running")
    again = rig.invoke("remediate", "--vm", "rg-resize/api-01", "--yes")  # the failed run resumes and verifies
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming it" in again.stdout and "every condition holds" in again.stdout
    ids = {n: f"/subscriptions/{rig.sub}/resourceGroups/rg-resize/providers/Microsoft.Compute/virtualMachines/{n}"
           for n in ("api-01", "api-02")}
    assert rig.arm.vm_facts(ids["api-01"])["cluster"] == rig.arm.vm_facts(ids["api-02"])["cluster"]


def test_resize_set_whose_resize_is_refused_names_every_member_it_left_down_and_rollback_restarts_them(
        rig: Rig) -> None:
    """The resize is refused after the whole set was deallocated: the error names both VMs the run took down
    (not just the step's own goal) and the rollback command, which starts them again at their old sizes."""
    rig.arm.seed("size-not-in-cluster")
    rig.arm.add_fault(method="PATCH", path=r"/virtualMachines/api-01$", action="error", status=409, times=5,
                      error={"code": "OperationNotAllowed", "message": "Injected refusal of the resize."})
    first = rig.invoke("remediate", "--vm", "rg-resize/api-01", "--scenario", "resize-set", "--yes")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "Left down by this run: api-01 (deallocated), api-02 (deallocated)" in first.stderr, first.stderr
    run_id = first.stderr.split("invoke runs.rollback ", 1)[1].split("`", 1)[0]
    assert _vm(rig, "rg-resize", "api-02") == ("Standard_D2s_v5", "deallocated")
    rig.arm.world.faults.clear()
    back = rig.invoke("runs.rollback", run_id, "--yes")
    assert back.returncode == 0, back.stdout + back.stderr
    assert _vm(rig, "rg-resize", "api-01") == ("Standard_D2s_v5", "running")
    assert _vm(rig, "rg-resize", "api-02") == ("Standard_D2s_v5", "running")


def test_resize_in_place_takes_the_closest_cluster_size_and_leaves_the_set_running(rig: Rig) -> None:
    rig.arm.seed("size-not-in-cluster")
    mark = rig.arm.last_request
    done = rig.invoke("remediate", "--vm", "rg-resize/api-01", "--scenario", "resize-in-place", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _writes(rig, mark) == [("PATCH", "virtualMachines/api-01")]
    assert _vm(rig, "rg-resize", "api-01") == ("Standard_D4s_v5", "running")
    assert _vm(rig, "rg-resize", "api-02") == ("Standard_D2s_v5", "running")


def test_a_named_size_the_cluster_does_not_offer_is_refused_before_any_write(rig: Rig) -> None:
    rig.arm.seed("size-not-in-cluster")
    mark = rig.arm.last_request
    bad = rig.invoke("remediate", "--vm", "rg-resize/api-01", "--scenario", "resize-in-place", "--set",
                     "resize-vm.size=Standard_F4s_v2", "--yes")
    assert bad.returncode == 2
    assert "cannot resize to Standard_F4s_v2" in bad.stderr and "cluster" in bad.stderr
    assert rig.arm.writes(mark) == []


# --- SKU not available --------------------------------------------------------------------------------


def test_sku_restriction_is_named_and_the_fix_writes_only_when_named(rig: Rig) -> None:
    rig.arm.seed("sku-not-available")
    az = rig.az()
    mark = rig.arm.last_request
    diag = run_diagnosis(az, VmRef("rg-sku", "db-01"))
    assert diag.playbook is not None and diag.playbook.id == "sku-not-available"
    advice = diag.advice
    assert advice is not None and advice["data"]["requested"] == "Standard_E4s_v5"
    assert any("NotAvailableForSubscription" in r for r in advice["data"]["requested_refusals"])
    top = advice["data"]["fitting"][0]
    assert top["name"] != "Standard_E4s_v5" and top["vcpus"] >= 4 and top["memory_gb"] >= 32
    assert run_diagnosis(az, VmRef("rg-sku", "db-03")).playbook is None
    cli = rig.invoke("remediate", "--vm", "rg-sku/db-01", "--yes", "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["writes"] == 0
    refused = rig.invoke("remediate", "--vm", "rg-sku/db-01", "--scenario", "resize-to-fitting-size", "--set",
                         "resize-vm.size=Standard_E4s_v5", "--yes")
    assert refused.returncode == 2 and "NotAvailableForSubscription" in refused.stderr
    assert rig.arm.writes(mark) == []
    done = rig.invoke("remediate", "--vm", "rg-sku/db-01", "--scenario", "resize-to-fitting-size", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _writes(rig, mark) == [("PATCH", "virtualMachines/db-01")]
    assert _vm(rig, "rg-sku", "db-01") == (top["name"], "deallocated")  # resized; it stays as it was
    assert _vm(rig, "rg-sku", "db-03") == ("Standard_E2s_v5", "running")


# --- quota exceeded --------------------------------------------------------------------------------------


def test_quota_advice_names_the_increase_and_a_family_with_room(rig: Rig) -> None:
    rig.arm.seed("quota-exceeded")
    az = rig.az()
    mark = rig.arm.last_request
    diag = run_diagnosis(az, VmRef("rg-quota", "batch-02"))
    assert diag.playbook is not None and diag.playbook.id == "quota-exceeded"
    advice = diag.advice
    assert advice is not None
    # Azure's own message says the same: limit 8, usage 6, 6 more needed, new limit 12
    assert advice["data"]["quota_request"] == {"location": "eastus", "name": "standardDSv5Family", "limit": 12}
    fitting = [s["name"] for s in advice["data"]["fitting"]]
    assert fitting and not any(n.startswith("Standard_D") and n.endswith("s_v5") for n in fitting)
    for name in ("batch-01", "batch-04"):
        assert run_diagnosis(az, VmRef("rg-quota", name)).playbook is None, name
    over = rig.invoke("remediate", "--vm", "rg-quota/batch-02", "--scenario", "resize-within-quota", "--set",
                      "resize-vm.size=Standard_D8s_v5", "--yes")
    assert over.returncode == 2 and "quota" in over.stderr
    assert rig.arm.writes(mark) == []
    done = rig.invoke("remediate", "--vm", "rg-quota/batch-02", "--scenario", "resize-within-quota", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _vm(rig, "rg-quota", "batch-02") == (fitting[0], "running")
    assert _vm(rig, "rg-quota", "batch-01") == ("Standard_D4s_v5", "running")


# --- IOPS limit ------------------------------------------------------------------------------------------


def test_iops_cap_is_explained_from_the_sizes_limits_and_the_fix_runs_only_when_named(rig: Rig) -> None:
    """io-01 (Standard_D2s_v5: 3750 IOPS uncached) has disks that provide 10 500. Named (as the IOPS RCA tells the
    operator to), the playbook shows the cap and the sizes that cover the disks, writes nothing unless its fix is
    named, and its in-place resize removes the cap. io-02 (within its cap) and io-03 (a larger size with the same
    disks) do not match. Unnamed, no diagnosis pays for the region's SKUs to look for it."""
    rig.arm.seed("iops-limit")
    az = rig.az()
    mark = rig.arm.last_request
    plain = run_diagnosis(az, VmRef("rg-iops", "io-01"))
    assert plain.playbook is None and not any("/skus" in r["path"] for r in rig.arm.requests(mark))
    diag = run_diagnosis(az, VmRef("rg-iops", "io-01"), playbook="iops-limit")
    assert diag.matched == ["iops-limit"]
    detail = diag.signals["disks-over-limit"].detail
    assert "3750 IOPS" in detail and "10500 IOPS" in detail
    advice = diag.advice
    assert advice is not None
    fitting = advice["data"]["fitting"]
    assert fitting and all(s["vcpus"] >= 2 for s in fitting)
    for name in ("io-02", "io-03"):
        assert run_diagnosis(az, VmRef("rg-iops", name), playbook="iops-limit").matched == [], name
    cli = rig.invoke("remediate", "--vm", "rg-iops/io-01", "--playbook", "iops-limit", "--yes")
    assert cli.returncode == 0 and "It advises; nothing was changed" in cli.stdout, cli.stdout + cli.stderr
    assert rig.arm.writes(mark) == []
    done = rig.invoke("remediate", "--vm", "rg-iops/io-01", "--playbook", "iops-limit", "--scenario",
                      "resize-in-place", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    size, power = _vm(rig, "rg-iops", "io-01")
    assert power == "running" and size == fitting[0]["name"]
    again = run_diagnosis(rig.az(), VmRef("rg-iops", "io-01"), playbook="iops-limit")
    assert again.matched == [] and not again.signals["disks-over-limit"].holds  # no longer capped below its disks
    assert _vm(rig, "rg-iops", "io-03")[0] == "Standard_D16s_v5"


def test_size_alone_names_the_resize_fix_and_is_checked_before_any_write(rig: Rig) -> None:
    """``--size`` on an advice-only VM picks the one fix that resizes (sku-not-available's), checked like any
    named size: a restricted one is refused with zero writes, an allowed one is applied."""
    rig.arm.seed("sku-not-available")
    mark = rig.arm.last_request
    refused = rig.invoke("remediate", "--vm", "rg-sku/db-01", "--size", "Standard_E4s_v5", "--yes")
    assert refused.returncode == 2 and "NotAvailableForSubscription" in refused.stderr, refused.stderr
    assert rig.arm.writes(mark) == []
    done = rig.invoke("remediate", "--vm", "rg-sku/db-01", "--size", "Standard_D8s_v5", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the one fix of the advice that takes the size given" in " ".join(done.stdout.split())  # wrapped
    assert _vm(rig, "rg-sku", "db-01") == ("Standard_D8s_v5", "deallocated")
