"""The families there is nothing to repair for: availability events the platform, the owner or the guest OS
caused. Detected from Resource Health (whose statuses name the RCA article), explained with post-checks, zero
writes; a VM with another failure is about that failure."""

from __future__ import annotations

import json

import pytest
from remediation_helpers import Rig

from runbooks.errors import AdviceOnly
from runbooks.observe import VmRef
from runbooks.remediate import remediate_vm, run_diagnosis

CASES = [("platform-event", "ev-01", "VMA_RCA_Hardware_NodeReboot_Disk_Failure", True),
         ("platform-event", "ev-02", "VMA_RCA_IO_Timeout_NodeReboot_XStore_IO_Failures_e17_noend", False),
         ("customer-initiated-event", "ev-04", "VMA_RCA_CustomerInitiated_NodeReboot_Redeploy", True),
         ("guest-os-crash", "ev-05", "VMA_RCA_Software_NodeCrash_GuestOS_Windows", True),
         ("guest-os-crash", "ev-06", "VMA_RCA_Software_NodeCrash_GuestOS_UBUNTU", False)]


@pytest.mark.parametrize(("playbook", "vm", "article", "all_checks_pass"), CASES, ids=[c[1] for c in CASES])
def test_an_availability_event_is_explained_with_its_article_and_post_checks_and_nothing_is_written(
        rig: Rig, playbook: str, vm: str, article: str, all_checks_pass: bool) -> None:
    seeded = rig.arm.seed(playbook)
    mark = rig.arm.last_request
    diag = run_diagnosis(rig.az(), VmRef("rg-events", vm))
    assert diag.playbook is not None and diag.matched == [playbook], diag.matched  # no other family claims it
    assert diag.articles() == [article]  # the one article Resource Health names, not the playbook's many
    checks = {what: ok for what, ok, _ in diag.post_checks()}
    assert checks["running"] and checks["agent-ready"]
    assert all(checks.values()) is all_checks_pass, checks  # ev-02: still unavailable; ev-06: no boot diagnostics
    with pytest.raises(AdviceOnly) as explained:
        remediate_vm(rig.az(), VmRef("rg-events", vm), rig.hooks(), yes=True)
    text = str(explained.value)
    assert f"Playbook {playbook}. It explains; nothing was changed." in text and article in text
    assert "post-check running: yes" in text and max(len(line) for line in text.splitlines()) <= 100
    assert rig.arm.writes(mark) == []
    for distractor in seeded["distractors"]:
        other = run_diagnosis(rig.az(), VmRef.parse(distractor))
        assert other.playbook is None or other.playbook.id != playbook, (distractor, other.playbook)


def test_diagnose_cli_renders_only_the_article_resource_health_names(rig: Rig) -> None:
    rig.arm.seed("guest-os-crash")
    done = rig.invoke("diagnose", "--vm", "rg-events/ev-06", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["playbook"] == "guest-os-crash"
    assert out["articles_for_evidence"] == ["VMA_RCA_Software_NodeCrash_GuestOS_UBUNTU"]
    assert {c["expects"]: c["holds"] for c in out["post_checks"]}["boot-diagnostics-on"] is False
    assert out["health"][0]["availabilityState"] == "Available"


def test_a_healthy_vm_with_no_event_matches_no_explaining_playbook(rig: Rig) -> None:
    rig.arm.seed("platform-event")
    diag = run_diagnosis(rig.az(), VmRef("rg-events", "ev-03"))
    assert diag.playbook is None and diag.matched == []


FAILURES = [("image-preparation", "rg-img", "img-02", "DeploymentFailure_RCA-image-not-sysprepped"),
            ("policy-denied", "rg-policy", "pol-01", "DeploymentFailure_rca-over-requestdisallowedbypolicy"),
            ("subscription-billing", "rg-billing", "bill-01", "Compute-SubscriptionDisabledInformation-Disabled"),
            ("out-of-scope-failure", "rg-ade", "ade-01",
             "ADE_RCA-ade-on-linux-failing-prerequisites-not-enough-memory")]


@pytest.mark.parametrize(("playbook", "rg", "vm", "article"), FAILURES, ids=[f[0] for f in FAILURES])
def test_a_failure_fixed_outside_arm_is_named_from_the_activity_log_with_zero_writes(
        rig: Rig, playbook: str, rg: str, vm: str, article: str) -> None:
    seeded = rig.arm.seed(playbook)
    mark = rig.arm.last_request
    diag = run_diagnosis(rig.az(), VmRef(rg, vm))
    assert diag.playbook is not None and diag.playbook.id == playbook, (diag.matched, diag.observation.statuses())
    assert article in diag.articles()
    with pytest.raises(AdviceOnly) as explained:
        remediate_vm(rig.az(), VmRef(rg, vm), rig.hooks(), yes=True)
    assert f"Playbook {playbook}. It explains; nothing was changed." in str(explained.value)
    assert rig.arm.writes(mark) == []
    for distractor in seeded["distractors"]:
        other = run_diagnosis(rig.az(), VmRef.parse(distractor))
        assert other.playbook is None or other.playbook.id != playbook, (distractor, other.matched)


def test_the_policy_refusal_names_the_assignment(rig: Rig) -> None:
    rig.arm.seed("policy-denied")
    diag = run_diagnosis(rig.az(), VmRef("rg-policy", "pol-01"))
    detail = diag.signals["failed-policy"].detail
    assert "allowed-vm-sizes" in detail and "/policyAssignments/allowed-vm-sizes" in detail


@pytest.mark.parametrize(("error", "code", "playbook", "article"), [
    ('{"error": {"code": "RequestDisallowedByPolicy", "message": "Resource \'x\' was disallowed by policy."}}', "",
     "policy-denied", "DeploymentFailure_rca-over-requestdisallowedbypolicy"),
    ("(InvalidVhd) The specified cookie value in VHD footer indicates that disk 'd' is not a supported VHD. Disk is "
     "expected to have cookie value 'conectix'.", "", "image-preparation",
     "DeploymentFailure_RCA-vhd-foot-missing-corrupted-connectix-cookien"),
    ('Code="MarketplacePurchaseEligibilityFailed" Message="Offer with PublisherId: p cannot be purchased due to '
     'validation errors. Payment instrument is not supported."', "", "subscription-billing",
     "ValidationFailure_RCA-Marketplace-payment"),
    ("", "ReadOnlyDisabledSubscription", "subscription-billing", "Compute-SubscriptionDisabledInformation-Disabled"),
])
def test_a_pasted_error_picks_the_playbook_and_the_article(error: str, code: str, playbook: str,
                                                           article: str) -> None:
    from runbooks.lookup import parse_error, playbooks_for_error
    from runbooks.playbook import load_playbooks

    matches = playbooks_for_error(*parse_error(error, code or None), load_playbooks())
    assert matches and matches[0].playbook.id == playbook, [m.playbook.id for m in matches]
    assert matches[0].articles == [article]


def test_diagnose_by_article_error_and_code_through_the_cli(rig: Rig) -> None:
    rig.arm.seed("policy-denied")
    shown = rig.invoke("diagnose", "--article", "DeploymentFailure_rca-over-requestdisallowedbypolicy")
    assert shown.returncode == 0, shown.stderr
    assert "playbook policy-denied" in shown.stdout and "family: POLICY (explain)" in shown.stdout
    agrees = rig.invoke("diagnose", "--code", "RequestDisallowedByPolicy", "--vm", "rg-policy/pol-01", "--json")
    out = json.loads(agrees.stdout)
    assert out["matches"][0]["playbook"] == "policy-denied" and out["vm_agrees"] is True
    disagrees = rig.invoke("diagnose", "--code", "RequestDisallowedByPolicy", "--vm", "rg-policy/pol-03")
    assert "does not show this failure" in disagrees.stdout, disagrees.stdout + disagrees.stderr
    unknown = rig.invoke("diagnose", "--code", "NoSuchCode", "--vm", "rg-policy/pol-01", "--json")
    out = json.loads(unknown.stdout)
    assert out["matches"] == [] and "vm_agrees" not in out and out["playbook"] == "policy-denied"  # its own
    bad = rig.invoke("diagnose", "--article", "NoSuch_Article_Id")
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "no playbook serves article" in bad.stderr


def test_the_guest_crash_hardening_runs_only_when_named_and_enables_managed_boot_diagnostics(rig: Rig) -> None:
    rig.arm.seed("guest-os-crash")
    with pytest.raises(AdviceOnly) as explained:
        remediate_vm(rig.az(), VmRef("rg-events", "ev-06"), rig.hooks(), yes=True)
    assert "--scenario enable-boot-diagnostics" in str(explained.value)
    mark = rig.arm.last_request
    result = remediate_vm(rig.az(), VmRef("rg-events", "ev-06"), rig.hooks(), scenario="enable-boot-diagnostics",
                          yes=True, verify_timeout=30)
    assert result.outcome is not None and result.outcome.made_calls == 1  # verified: a failure would raise
    assert [w["method"] for w in rig.arm.writes(mark)] == ["PUT"]  # the VM's model, once
    vm = rig.arm.compute_client(retry_total=0).virtual_machines.get("rg-events", "ev-06")
    assert vm.diagnostics_profile.boot_diagnostics.enabled and not vm.diagnostics_profile.boot_diagnostics.storage_uri
    with pytest.raises(Exception, match="does not fit"):  # ev-05 has boot diagnostics already
        remediate_vm(rig.az(), VmRef("rg-events", "ev-05"), rig.hooks(), scenario="enable-boot-diagnostics", yes=True)


def test_a_vms_events_are_its_own_and_its_extensions_not_a_namesakes() -> None:
    from runbooks.observe import vm_of

    vm = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
    assert vm_of(vm) == vm.lower() and vm_of(vm + "/extensions/ade") == vm.lower()
    assert vm_of(vm + "0") != vm.lower()  # vm10 is another VM
    assert vm_of("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/vm1_OsDisk") is None


def test_the_sweep_reports_a_disk_encryption_failure_of_a_vms_extension(rig: Rig) -> None:
    from runbooks.sweep import sweep

    rig.arm.seed("out-of-scope-failure")
    report = sweep(rig.az())
    assert [(i.ref, i.playbook) for i in report.items] == [("rg-ade/ade-01", "out-of-scope-failure")]


def test_an_extension_failing_again_and_again_does_not_hide_the_vms_own_failure() -> None:
    from runbooks.observe import failed_operations

    vm = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"

    def failed(rid: str, code: str, minute: int) -> dict[str, object]:
        return {"status": {"value": "Failed"}, "resourceId": rid, "eventTimestamp": f"2026-12-01T10:{minute:02d}:00Z",
                "correlationId": f"c{minute}-{code}", "operationName": {"value": "x/write"},
                "properties": {"statusMessage": json.dumps({"error": {"code": code, "message": "m"}})}}

    # newest first, as the activity log lists them: 30 extension failures, then the VM's own refusal
    events = [failed(vm + "/extensions/ade", "VMExtensionProvisioningError", 59 - i) for i in range(30)]
    events.append(failed(vm, "ScopeLocked", 0))
    codes = [op["error_code"] for op in failed_operations(events)]
    assert "ScopeLocked" in codes and codes.count("VMExtensionProvisioningError") == 20
