"""The sweep finds the capacity and sizing families from one subscription-wide read of the activity log (their
evidence is a refused or failed write, not a status the VM list shows), and remediates only what runs unattended:
a recommendation is reported as advice, never applied."""

from __future__ import annotations

import pytest
from remediation_helpers import Rig

from runbooks.sweep import FAILED, REMEDIATED, SKIPPED, sweep

# batch-03 and db-02: VMs whose create was refused (no VM exists; the list cannot show them, the activity log can)
TARGETS = {"allocation-failure": {"app-01", "web-01", "shop-02"}, "size-not-in-cluster": {"api-01", "api-05"},
           "quota-exceeded": {"batch-02", "batch-03"}, "sku-not-available": {"db-01", "db-02"}}


@pytest.mark.parametrize("seed", sorted(TARGETS))
def test_the_sweep_finds_every_target_from_the_activity_log_and_no_distractor(rig: Rig, seed: str) -> None:
    rig.arm.seed(seed)  # one world per family: their quotas and capacity limits are region-wide
    mark = rig.arm.last_request
    report = sweep(rig.az())
    assert {i.name: i.playbook for i in report.items} == {name: seed for name in TARGETS[seed]}
    assert report.activity_pages >= 1  # one subscription-wide read, not one per VM
    per_vm = [r for r in rig.arm.requests(mark) if "resourceUri" in str(r.get("query") or r.get("path"))]
    assert per_vm == []
    assert rig.arm.writes(mark) == []


def test_remediate_mode_fixes_what_runs_unattended_and_only_advises_the_rest(rig: Rig) -> None:
    for seed in ("allocation-failure", "size-not-in-cluster"):
        rig.arm.seed(seed)
    report = sweep(rig.az(), remediate=True, max_vms=10, max_errors=10, max_concurrency=2)
    results = {i.name: (i.result, i.detail) for i in report.items}
    assert results["web-01"][0] == REMEDIATED  # a one-off failure: started again
    assert results["api-05"][0] == REMEDIATED  # standalone: deallocated, resized to the size asked for, started
    assert results["app-01"][0] == FAILED and "AllocationFailed" in results["app-01"][1]  # still no capacity
    assert results["shop-02"][0] == FAILED  # pinned: only restart-set would help, and it runs only when named
    assert results["api-01"][0] == SKIPPED and results["api-01"][1].startswith("advice only (no writes)")


def test_a_playbook_detected_only_when_named_is_swept_when_named(rig: Rig) -> None:
    """iops-limit is not looked for by a plain sweep (it would read every VM's disks and the region's SKUs); named,
    the sweep reads each VM in scope for it, the SKUs once, and finds io-01 alone, as advice."""
    rig.arm.seed("iops-limit")
    plain = sweep(rig.az())
    assert plain.items == [] and any("iops-limit" in n and "only when named" in n for n in plain.notes)
    mark = rig.arm.last_request
    named = sweep(rig.az(), playbook="iops-limit")
    assert [(i.name, i.playbook) for i in named.items] == [("io-01", "iops-limit")]
    assert sum(1 for r in rig.arm.requests(mark) if r["path"].endswith("/providers/Microsoft.Compute/skus")) == 1
    done = sweep(rig.az(), playbook="iops-limit", remediate=True)
    [item] = done.items
    assert item.result == SKIPPED and item.detail.startswith("advice only (no writes)")
    assert rig.arm.writes(mark) == []


def test_a_refused_create_is_swept_from_the_activity_log_and_only_advised(rig: Rig) -> None:
    """fw-01's create was refused for unaccepted Marketplace terms: no VM exists, so the VM list cannot show it;
    the sweep finds it in the activity log it reads anyway, and --remediate advises (accepting terms is the
    operator's decision) with zero writes."""
    rig.arm.seed("marketplace-terms")
    mark = rig.arm.last_request
    report = sweep(rig.az())
    assert [(i.name, i.playbook) for i in report.items] == [("fw-01", "marketplace-terms")]
    assert report.items[0].statuses == ["(not created: its create was refused)"]
    fixed = sweep(rig.az(), remediate=True)
    assert [(i.name, i.result) for i in fixed.items] == [("fw-01", SKIPPED)]
    assert fixed.items[0].detail.startswith("advice only (no writes)"), fixed.items[0].detail
    assert rig.arm.writes(mark) == []
