"""Fleet sweep (runbooks.sweep, ``invoke sweep``) against armsim with the real SDK: finding the generalized VMs
of a 10 000-VM subscription from the paged list, request counts, pacing within ARM's token buckets, the
blast-radius refusal, remediation of several VMs at once, the error budget, and bad input on the CLI."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from remediation_helpers import Rig

from armsim import ArmSim
from runbooks.azure import Azure, Connection
from runbooks.errors import StepRefused, UsageError
from runbooks.observe import VmRef
from runbooks.pacing import BucketEstimate
from runbooks.remediate import run_diagnosis
from runbooks.sweep import FOUND, REMEDIATED, SKIPPED, SweepEvent, sweep

PAGE = 1000  # armsim's page size (Config.page_size), as ARM's


def generalized_ids(arm: ArmSim) -> set[str]:
    """What armsim itself holds as generalized (the hidden truth, not what the API says)."""
    with arm.world.lock:
        return {vm.id.lower() for vm in arm.world.sub(arm.subscription_id).compute.vms.values() if vm.generalized}


def statuses(rig: Rig, vm_id: str) -> list[str]:
    rg, name = vm_id.split("/")[4], vm_id.split("/")[-1]
    view = rig.arm.compute_client().virtual_machines.instance_view(rg, name)
    return [str(s.code) for s in view.statuses or []]


def throttled(log: list[dict[str, Any]]) -> int:
    return sum(1 for r in log if r["status"] == 429)


# --- report mode ------------------------------------------------------------------------------------


def test_report_finds_exactly_the_generalized_vms_of_10000_with_one_read_per_page(rig: Rig) -> None:
    rig.arm.world.config.throttling = True
    seeded = rig.arm.seed("fleet", vms=10_000, resource_groups=20, generalized_fraction=0.03, seed=11)
    truth = generalized_ids(rig.arm)
    assert len(truth) == seeded["generalized"] > 200
    az, mark, events = rig.az(), rig.arm.last_request, []

    report = sweep(az, on_event=events.append)

    log = rig.arm.requests(mark)
    assert {i.vm_id.lower() for i in report.items} == truth
    assert all(i.playbook == "generalized-vm" and i.result == FOUND and "OSState/generalized" in i.statuses
               for i in report.items)
    # fleet VMs have a managed OS disk and no captured image: the list alone recommends from-os-disk
    assert {i.scenario for i in report.items} == {"from-os-disk"}
    assert report.listed == report.in_scope == 10_000
    assert report.pages == math.ceil(10_000 / PAGE) and report.image_pages == 1 and report.activity_pages == 1
    # the cost: the list's pages and the one image list, nothing per VM; no write; no 429
    assert len(log) == report.pages + report.image_pages + report.activity_pages == report.reads
    assert all(r["method"] == "GET" and "statusOnly" in r["query"] for r in log if r["path"].endswith("Machines"))
    assert rig.arm.writes(mark) == [] and report.writes == 0
    assert throttled(log) == 0 and report.throttled == 0
    assert [e.kind for e in events].count("page") == report.pages and events[-1].kind == "found"


def test_report_scoped_to_a_resource_group(rig: Rig) -> None:
    rig.arm.seed("fleet", vms=60, resource_groups=3, generalized_fraction=0.5, seed=3)
    report = sweep(rig.az(), resource_group="RG-FLEET-001")  # resource group names are case-insensitive
    want = {i for i in generalized_ids(rig.arm) if "/resourcegroups/rg-fleet-001/" in i}
    assert want and {i.vm_id.lower() for i in report.items} == want
    assert report.listed == 60 and report.in_scope == 20
    assert not report.notes or "not swept" in report.notes[0]
    empty = sweep(rig.az(), resource_group="rg-nowhere")
    assert empty.items == [] and any("no VM of the subscription is in resource group rg-nowhere" in n
                                     for n in empty.notes)


def test_recommendation_from_the_list_matches_the_full_diagnosis(rig: Rig) -> None:
    rig.arm.seed("generalized-after-capture")
    rig.arm.seed("fleet", vms=4, resource_groups=1, generalized_fraction=0.5, seed=5)
    az = rig.az()
    report = sweep(az)
    assert {i.ref for i in report.items} >= {"rg-demo/app-01"}
    for item in report.items:
        diag = run_diagnosis(az, VmRef(item.resource_group, item.name))
        assert diag.recommended is not None and item.scenario == diag.recommended.id, item.ref
    assert next(i for i in report.items if i.ref == "rg-demo/app-01").scenario == "from-image"


def test_diagnose_costs_pages_plus_the_candidates_reads_and_pacing_avoids_every_429(rig: Rig) -> None:
    """A small read bucket (20 tokens, refilling 50/s at latency scale 0.5) and ~80 diagnosis reads from 8
    threads: without pacing ARM answers 429s; with it, none, and the request count is exact."""
    cfg = rig.arm.world.config
    cfg.throttling, cfg.latency_scale, cfg.buckets["read"] = True, 0.5, [20, 25]
    refill_s = 20 / (25 / 0.5) + 0.05
    rig.arm.seed("fleet", vms=20, resource_groups=2, generalized_fraction=0.5, seed=10)
    assert len(generalized_ids(rig.arm)) >= 8

    unpaced = rig.az()
    unpaced.pacer.enabled = False
    mark = rig.arm.last_request
    sweep(unpaced, diagnose=True, max_concurrency=8)
    assert throttled(rig.arm.requests(mark)) > 0, "the bucket is too large for this test to mean anything"

    time.sleep(refill_s)
    az, mark = rig.az(), rig.arm.last_request
    report = sweep(az, diagnose=True, max_concurrency=8)
    log = rig.arm.requests(mark)
    assert throttled(log) == 0 and report.throttled == 0
    assert report.paced_s > 0
    assert {i.vm_id.lower() for i in report.items} == generalized_ids(rig.arm)
    assert all(i.scenario == "from-os-disk" and not i.detail for i in report.items)
    # exact cost: the pages, plus what diagnosing each candidate reads (measured again, one by one)
    cfg.throttling = False
    per_vm = []
    for item in report.items:
        probe = rig.az()
        run_diagnosis(probe, VmRef(item.resource_group, item.name))
        per_vm.append(probe.counter.reads)
    assert len(log) == report.reads == report.pages + report.image_pages + report.activity_pages + sum(per_vm)
    assert rig.arm.writes(mark) == []


def test_pacer_waits_for_the_refill_once_the_reserve_is_reached() -> None:
    bucket = BucketEstimate(refill=10.0)
    assert bucket.book(0.0, reserve=5) == 0.0  # nothing known yet
    bucket.observe(20, 0.0)  # ARM: 20 left
    waits = [bucket.book(0.0, reserve=5) for _ in range(20)]
    assert waits[:15] == [0.0] * 15  # 20 → 5 without waiting
    assert waits[15:] == pytest.approx([0.1 * k for k in range(1, 6)])  # then one token per 1/10 s
    bucket.observe(0, 0.0)  # ARM says empty: everything still booked counts too
    assert bucket.book(0.0, reserve=5) == pytest.approx((5 + 1 - (0 - 19)) / 10.0)


# --- remediate mode ---------------------------------------------------------------------------------


def test_more_candidates_than_max_vms_is_refused_before_any_write(rig: Rig) -> None:
    rig.arm.seed("fleet", vms=30, resource_groups=2, generalized_fraction=0.5, seed=2)
    n = len(generalized_ids(rig.arm))
    mark = rig.arm.last_request
    with pytest.raises(StepRefused, match=rf"{n} VMs would be remediated, more than --max-vms {n - 1}"):
        sweep(rig.az(), remediate=True, max_vms=n - 1)
    assert rig.arm.writes(mark) == []
    assert not (rig.home / "runs").exists()


def test_remediate_converges_several_vms_at_once(rig: Rig) -> None:
    rig.arm.world.config.throttling = True
    rig.arm.seed("generalized-after-capture")
    rig.arm.seed("fleet", vms=8, resource_groups=2, generalized_fraction=0.5, seed=4)
    before = generalized_ids(rig.arm)
    assert len(before) >= 4
    events: list[SweepEvent] = []
    lines: list[str] = []
    mark = rig.arm.last_request

    report = sweep(rig.az(), remediate=True, max_concurrency=4, max_vms=len(before), prefer="from-image",
                   on_event=events.append, progress=lines.append)

    assert report.ok and report.stopped is None and report.failures() == []
    assert {i.vm_id.lower() for i in report.items} == before
    assert all(i.result == REMEDIATED and i.run_id for i in report.items), [i.to_dict() for i in report.items]
    assert {i.ref: i.scenario for i in report.items}["rg-demo/app-01"] == "from-image"
    assert {i.scenario for i in report.items if i.resource_group.startswith("rg-fleet")} == {"from-os-disk"}
    for vm_id in before:  # checked through the SDK: healthy and no longer generalized
        codes = statuses(rig, vm_id)
        assert "PowerState/running" in codes and "OSState/generalized" not in codes, (vm_id, codes)
    assert generalized_ids(rig.arm) == set()
    assert throttled(rig.arm.requests(mark)) == 0
    assert {e.vm for e in events if e.kind == "done"} == {i.ref for i in report.items}
    assert lines == [str(e) for e in events] and "rg-demo/app-01: remediated: " in "\n".join(lines)
    assert sweep(rig.az()).items == []  # a second sweep finds nothing left to do


def test_a_vm_both_scenarios_fit_is_skipped_unless_a_preference_is_given(rig: Rig) -> None:
    rig.arm.seed("generalized-without-sysprep")  # api-01: an image exists, but the guest was never sysprepped
    mark = rig.arm.last_request
    report = sweep(rig.az(), remediate=True)
    [item] = report.items
    assert item.result == SKIPPED
    assert "from-image and from-os-disk both fit rg-demo/api-01" in item.detail and "--prefer" in item.detail
    assert rig.arm.writes(mark) == []
    report = sweep(rig.az(), remediate=True, prefer="from-os-disk")
    assert [(i.result, i.scenario) for i in report.items] == [(REMEDIATED, "from-os-disk")]
    assert "OSState/generalized" not in statuses(rig, report.items[0].vm_id)
    with pytest.raises(UsageError, match=r"--prefer from-backup: not a scenario of any playbook; use one of .*from-im"):
        sweep(rig.az(), remediate=True, prefer="from-backup")


# --- the CLI ----------------------------------------------------------------------------------------


def test_max_errors_stops_starting_new_remediations(rig: Rig) -> None:
    """Every snapshot is refused (a fault armsim injects): each remediation fails before anything is deleted,
    and after the second failure no further one starts. Through the CLI, which exits 1."""
    rig.arm.seed("fleet", vms=12, resource_groups=2, generalized_fraction=0.5, seed=9)
    n = len(generalized_ids(rig.arm))
    assert n >= 4
    rig.arm.add_fault(method="PUT", path="/snapshots/", times=0, action="error", status=409,
                      error={"code": "OperationNotAllowed", "message": "Snapshots are disabled by policy."})
    mark = rig.arm.last_request

    done = rig.invoke("sweep", "--remediate", "--max-errors", "2", "--max-concurrency", "1", "--max-vms", str(n),
                      "--json")

    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["summary"] == {"found": 0, "remediated": 0, "failed": 2, "skipped": n - 2}
    assert "2 remediation(s) failed (--max-errors 2)" in report["stopped"] and not report["ok"]
    failed = [i for i in report["items"] if i["result"] == "failed"]
    assert all("OperationNotAllowed" in i["detail"] and "\n" not in i["detail"] and i["run_id"] for i in failed)
    assert all(i["detail"].startswith("not started") for i in report["items"] if i["result"] == SKIPPED)
    log = rig.arm.requests(mark)
    assert sum(1 for r in log if r["method"] == "PUT" and "/snapshots/" in r["path"]) == 2  # one per started VM
    assert not any(r["method"] == "DELETE" for r in log)
    assert generalized_ids(rig.arm) == {i["vm_id"].lower() for i in report["items"]}  # nothing was lost
    assert "2 remediation(s) failed" in done.stderr  # the plain progress lines (no terminal)

    # the policy is lifted; the same sweep again resumes the two failed runs and remediates the rest
    with rig.arm.world.lock:
        rig.arm.world.faults.clear()
    lines: list[str] = []
    again = sweep(rig.az(), remediate=True, max_vms=n, progress=lines.append)
    assert again.ok and again.count(REMEDIATED) == n, again.failures()
    resumed = {line.split(":")[0] for line in lines if "exists for" in line and "resuming it" in line}
    assert resumed == {f"{i['resource_group']}/{i['name']}" for i in failed}
    assert {i.run_id for i in again.items if i.ref in resumed} == {i["run_id"] for i in failed}
    assert generalized_ids(rig.arm) == set()


def test_cli_report_as_json(rig: Rig) -> None:
    rig.arm.seed("fleet", vms=20, resource_groups=2, generalized_fraction=0.5, seed=1)
    mark = rig.arm.last_request
    done = rig.invoke("sweep", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {i["vm_id"].lower() for i in report["items"]} == generalized_ids(rig.arm)
    assert report["mode"] == "report" and report["requests"]["writes"] == 0 and rig.arm.writes(mark) == []
    assert "candidate(s) among 20 VM(s)" in done.stderr


@pytest.mark.parametrize(("args", "error"), [
    (["--max-concurrency", "0"], r"--max-concurrency must be a whole number between 1 and 10 \(got 0\)"),
    (["--max-concurrency", "four"], r"--max-concurrency must be a whole number \(got 'four'\)"),
    (["--max-errors=-1"], r"--max-errors must be a whole number at least 1 \(got -1\)"),
    (["--max-vms=-5", "--remediate"], r"--max-vms must be a whole number at least 1 \(got -5\)"),
    (["--subscription", "not-a-guid"], r"bad subscription id 'not-a-guid': expected a GUID"),
    (["--resource-group", "rg/fleet"], r"bad resource group name 'rg/fleet'"),
    (["--remediate", "--max-vms", "1"], r"VMs would be remediated, more than --max-vms 1: nothing was changed"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(rig: Rig, args: list[str], error: str) -> None:
    rig.arm.seed("fleet", vms=10, resource_groups=1, generalized_fraction=0.5, seed=3)
    assert len(generalized_ids(rig.arm)) > 1
    mark = rig.arm.last_request
    done = rig.invoke("sweep", *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[-1].startswith("error: ") and len(lines[-1].splitlines()) == 1
    import re

    assert re.search(error, lines[-1]), lines[-1]
    assert rig.arm.writes(mark) == []
    if "--max-vms" not in " ".join(args) or "-5" in " ".join(args):
        assert rig.arm.requests(mark) == [] and len(lines) == 1  # refused before any request


def test_library_rejects_bad_options_before_any_request(rig: Rig) -> None:
    bad_sub = Azure(Connection("nope", rig.arm.endpoint, rig.arm.ca_bundle), credential=rig.arm.credential())
    mark = rig.arm.last_request
    for az, kwargs in ((bad_sub, {}), (rig.az(), {"max_concurrency": 0}), (rig.az(), {"max_errors": -1}),
                       (rig.az(), {"max_vms": True}), (rig.az(), {"verify_timeout": 0.0, "remediate": True})):
        with pytest.raises(UsageError):
            sweep(az, **kwargs)
    assert rig.arm.requests(mark) == []
