"""The Marketplace families on their armsim scenarios (real SDK over HTTPS): marketplace-terms (a create refused
because the plan's legal terms were never accepted: accept them, only when named and approved) and marketplace-plan
(a create refused for its plan block: advice only, zero writes). The refused VMs do not exist: their diagnosis reads
the refused request from the activity log."""

from __future__ import annotations

import json
from typing import Any

import pytest
from remediation_helpers import Rig

from armsim.marketplaceordering.scenarios import IMAGES, plan_of
from runbooks.errors import Aborted, AdviceOnly, RunbookError
from runbooks.observe import VmRef
from runbooks.remediate import remediate_vm, rollback_run, run_diagnosis

FW01 = "rg-market/fw-01"
AGREEMENTS = "/providers/Microsoft.MarketplaceOrdering/"


def _accepted(rig: Rig) -> dict[str, bool]:
    """Every plan's terms as armsim holds them (publisher/offer/plan → accepted)."""
    with rig.arm.world.lock:
        return {k: a.accepted for k, a in rig.arm.world.default.marketplace.agreements.items()}


def _terms_accepted(rig: Rig, image: str) -> bool:
    plan = plan_of(image)
    client = rig.arm.marketplace_client(retry_total=0).marketplace_agreements
    return bool(client.get("virtualmachine", plan["publisher"], plan["product"], plan["name"]).accepted)


def _recreate(rig: Rig, rg: str, name: str, image: str, plan: dict[str, str] | None) -> Any:
    """The operator sends the VM's deployment again (the NIC made before the refused create is still there)."""
    nic = (f"/subscriptions/{rig.sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkInterfaces/"
           f"{name}-nic")
    body: dict[str, Any] = {"location": "eastus", "properties": {
        "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
        "storageProfile": {"imageReference": dict(IMAGES[image]),
                           "osDisk": {"createOption": "FromImage", "deleteOption": "Delete"}},
        "osProfile": {"computerName": name, "adminUsername": "azureuser", "adminPassword": "Another-Passw0rd!"},
        "networkProfile": {"networkInterfaces": [{"id": nic}]}}}
    if plan is not None:
        body["plan"] = plan
    return rig.arm.compute_client(retry_total=0).virtual_machines.begin_create_or_update(rg, name, body).result()


def test_diagnosis_names_the_plan_and_its_terms_and_leaves_distractors_alone(rig: Rig) -> None:
    seeded = rig.arm.seed("marketplace-terms")
    diag = run_diagnosis(rig.az(), VmRef.parse(FW01))
    assert diag.observation.vm is None and diag.playbook is not None and diag.playbook.id == "marketplace-terms"
    fit = diag.fit("accept-terms")
    assert fit.fits and fit.scenario.explicit
    evidence = dict(diag.evidence(fit.scenario))
    assert "ResourcePurchaseValidationFailed" in evidence["Refused create"]
    plan = seeded["plan"]
    assert f"{plan['publisher']} / {plan['product']} / plan {plan['name']}: accepted false" in evidence["Legal terms"]
    assert "licence: https://" in evidence["Legal terms"]
    failed = diag.observation.failed_operations[0]
    assert failed["requested_plan"] == plan and failed["requested_image"]["offer"] == plan["product"]
    assert "Seed-Only-Passw0rd!" not in json.dumps(diag.observation.to_dict())  # no secret kept from the body
    for vm in seeded["distractors"]:
        other = run_diagnosis(rig.az(), VmRef.parse(vm.split("/resourceGroups/")[1].replace(
            "/providers/Microsoft.Compute/virtualMachines/", "/")))
        assert other.playbook is None, (vm, other.matched)
    rtr = run_diagnosis(rig.az(), VmRef("rg-market", "rtr-01"), playbook="marketplace-terms")
    assert not rtr.signals["failed-create-terms"].holds  # refused once, created since: no longer stands
    assert "succeeded later" in rtr.signals["failed-create-terms"].detail


def test_cli_diagnose_and_dry_run_of_a_refused_create_write_nothing(rig: Rig) -> None:
    rig.arm.seed("marketplace-terms")
    mark = rig.arm.last_request
    shown = rig.invoke("diagnose", "--vm", FW01)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "does not exist (its create was refused" in shown.stdout and "disk None" not in shown.stdout
    assert "Playbook marketplace-terms" in shown.stdout and "fortinet_fg-vm_payg_2023" in shown.stdout
    dry = rig.invoke("remediate", "--vm", FW01, "--scenario", "accept-terms", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Dry run: nothing was changed (0 writes)" in dry.stdout
    shown_plan = " ".join(dry.stdout.split())  # the plan wraps within 100 columns
    assert "accept the legal terms of Marketplace plan fortinet/fortinet_fortigate-vm_v5" in shown_plan
    assert max(len(line) for line in dry.stdout.splitlines()) <= 100
    unattended = rig.invoke("remediate", "--vm", FW01, "--yes")  # not named: advice only
    assert unattended.returncode == 0, unattended.stdout + unattended.stderr
    assert "--scenario accept-terms" in unattended.stdout
    assert rig.arm.writes(mark) == []
    assert not _terms_accepted(rig, "fortigate")


def test_confirm_mode_asks_and_no_writes_nothing(rig: Rig) -> None:
    rig.arm.seed("marketplace-terms")
    mark = rig.arm.last_request
    asked: list[str] = []
    hooks = rig.hooks(approve_plan=False)
    answer = hooks.confirm
    hooks.confirm = lambda q: asked.append(q) or answer(q)
    with pytest.raises(Aborted):
        remediate_vm(rig.az(), VmRef.parse(FW01), hooks, scenario="accept-terms")
    assert asked and asked[0].startswith(f"Apply this plan to {FW01} (1 call(s): 1 update)")
    assert rig.arm.writes(mark) == [] and not _terms_accepted(rig, "fortigate")
    with pytest.raises(AdviceOnly):  # unnamed, the accepting is never chosen for the operator
        remediate_vm(rig.az(), VmRef.parse(FW01), rig.hooks(), yes=True)
    assert rig.arm.writes(mark) == []


def test_accept_terms_writes_only_that_agreement_then_the_create_succeeds(rig: Rig) -> None:
    rig.arm.seed("marketplace-terms")
    before = _accepted(rig)
    mark = rig.arm.last_request
    run = rig.invoke("remediate", "--vm", FW01, "--scenario", "accept-terms", "--yes")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Send the VM's deployment again" in run.stdout
    writes = rig.arm.writes(mark)
    plan = plan_of("fortigate")
    assert [(w["method"], w["path"].split(AGREEMENTS)[1]) for w in writes] == [
        ("PUT", f"offerTypes/virtualmachine/publishers/{plan['publisher']}/offers/{plan['product']}/plans/"
                f"{plan['name']}/agreements/current")]
    after = _accepted(rig)
    assert after == {**before, f"{plan['publisher']}/{plan['product']}/{plan['name']}".lower(): True}
    for home_file in rig.home.rglob("*"):  # the run store (plan, journal) keeps no secret of the refused body
        if home_file.is_file():
            assert "Seed-Only-Passw0rd!" not in home_file.read_text(errors="replace")
    again = rig.invoke("remediate", "--vm", FW01, "--scenario", "accept-terms", "--yes")  # nothing left to do
    assert again.returncode != 0 and "does not fit" in again.stdout + again.stderr
    assert len(rig.arm.writes(mark)) == 1
    vm = _recreate(rig, "rg-market", "fw-01", "fortigate", plan)  # the operator re-runs the deployment
    assert vm.provisioning_state == "Succeeded" and vm.plan.name == plan["name"]
    healthy = run_diagnosis(rig.az(), VmRef.parse(FW01))
    assert healthy.playbook is None and healthy.observation.vm is not None
    assert "PowerState/running" in healthy.observation.statuses()


def test_rollback_cancels_the_acceptance(rig: Rig) -> None:
    rig.arm.seed("marketplace-terms")
    result = remediate_vm(rig.az(), VmRef.parse(FW01), rig.hooks(), scenario="accept-terms", yes=True)
    assert result.outcome is not None and _terms_accepted(rig, "fortigate")
    back, outcome = rollback_run(rig.az(), result.plan.run_id, rig.hooks(), yes=True)
    assert back.plan is not None and outcome is not None
    assert not _terms_accepted(rig, "fortigate")
    assert _terms_accepted(rig, "vmseries") and _terms_accepted(rig, "c8000v")  # others as they were


FAULTS: dict[str, dict[str, Any]] = {
    "500": {"action": "error", "status": 500, "times": 4,
            "error": {"code": "InternalServerError", "message": "Injected 500."}},
    "drop-after": {"action": "drop", "when": "after"},
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_at_the_agreement_put_then_a_rerun_converges(rig: Rig, fault: str) -> None:
    rig.arm.seed("marketplace-terms")
    rule = rig.arm.add_fault(method="PUT", path=r"/agreements/current$", nth=1, **FAULTS[fault])
    first_error: RunbookError | None = None
    try:
        remediate_vm(rig.az(), VmRef.parse(FW01), rig.hooks(), scenario="accept-terms", yes=True)
    except RunbookError as e:
        first_error = e
    with rig.arm.world.lock:
        assert [f["fired"] for f in rig.arm.world.faults if f["path"] == rule["path"]] != [0]  # the fault happened
    if first_error is None:  # the SDK retried the PUT (idempotent) and it went through: nothing left to do
        assert _terms_accepted(rig, "fortigate")
    else:  # the re-run resumes the failed run and converges
        result = remediate_vm(rig.az(), VmRef.parse(FW01), rig.hooks(), scenario="accept-terms", yes=True)
        assert result.resumed and result.outcome is not None
    assert _terms_accepted(rig, "fortigate")
    mark = rig.arm.last_request
    with pytest.raises(RunbookError, match="does not fit"):  # converged: a further run has nothing to accept
        remediate_vm(rig.az(), VmRef.parse(FW01), rig.hooks(), scenario="accept-terms", yes=True)
    assert rig.arm.writes(mark) == []
    assert _recreate(rig, "rg-market", "fw-01", "fortigate", plan_of("fortigate")).provisioning_state == "Succeeded"


CASES = {
    "fw-11": ("image fortinet:fortinet_fortigate-vm_v5:fortinet_fg-vm_payg_2023:latest is sold under a plan and the "
              "request gave none", json.dumps({"plan": plan_of("fortigate")}, separators=(", ", ": "))),
    "web-12": ("has no plan and the request gave", "remove the plan block"),
    "nva-13": ("differs: name 'bundle2' (the image's: 'byol')",
               json.dumps({"plan": plan_of("vmseries")}, separators=(", ", ": "))),
}


@pytest.mark.parametrize("vm", sorted(CASES))
def test_plan_advice_names_the_exact_fix_and_writes_nothing(rig: Rig, vm: str) -> None:
    seeded = rig.arm.seed("marketplace-plan")
    mark = rig.arm.last_request
    with pytest.raises(AdviceOnly) as info:
        remediate_vm(rig.az(), VmRef("rg-plan", vm), rig.hooks(), yes=True)
    text = str(info.value)
    what, fix = CASES[vm]
    assert what in text and fix in text, text
    assert "--scenario fix-plan-block" in text
    named = remediate_vm(rig.az(), VmRef("rg-plan", vm), rig.hooks(), scenario="fix-plan-block", yes=True)
    assert named.plan.writes == 0  # the named fix is the operator's: a manual step only
    assert rig.arm.writes(mark) == []
    for other in seeded["distractors"]:
        name = other.rsplit("/", 1)[1]
        assert run_diagnosis(rig.az(), VmRef("rg-plan", name)).playbook is None


def test_plan_advice_after_the_fix_the_create_succeeds(rig: Rig) -> None:
    rig.arm.seed("marketplace-plan")
    diag = run_diagnosis(rig.az(), VmRef("rg-plan", "web-12"))
    assert diag.advice is not None and diag.advice["data"]["fix"] == "remove"
    vm = _recreate(rig, "rg-plan", "web-12", "ubuntu", None)  # the plan block dropped, as advised
    assert vm.provisioning_state == "Succeeded"
    assert run_diagnosis(rig.az(), VmRef("rg-plan", "web-12")).playbook is None


def test_a_saved_plan_of_accept_terms_applies_exactly(rig: Rig, tmp_path: Any) -> None:
    rig.arm.seed("marketplace-terms")
    saved = tmp_path / "plan.json"
    made = rig.invoke("remediate", "--vm", FW01, "--scenario", "accept-terms", "--dry-run", "--plan-out", str(saved))
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Seed-Only-Passw0rd!" not in saved.read_text()
    mark = rig.arm.last_request
    applied = rig.invoke("apply", "--plan", str(saved), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert [w["method"] for w in rig.arm.writes(mark)] == ["PUT"] and _terms_accepted(rig, "fortigate")


def test_an_automation_job_advises_on_a_refused_plan_and_writes_nothing(
        rig: Rig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from runbooks.automation.entry import remediate_main

    for key, value in rig.arm.env().items():
        monkeypatch.setenv(key, value)
    rig.arm.seed("marketplace-plan")
    mark = rig.arm.last_request
    assert remediate_main(['{"vm": "rg-plan/fw-11", "apply": true, "allow_local_store": true}']) == 0
    out = capsys.readouterr().out
    assert "It advises; nothing was changed" in out and '"name": "fortinet_fg-vm_payg_2023"' in out, out
    assert rig.arm.writes(mark) == []


def test_a_deleted_vm_with_an_old_refused_write_is_not_found(rig: Rig) -> None:
    from azure.core.exceptions import HttpResponseError

    from runbooks.errors import TargetNotFound

    rig.arm.seed("marketplace-terms")
    compute = rig.arm.compute_client(retry_total=0)
    rig.arm.add_fault(method="PATCH", path=r"/virtualMachines/web-01$", action="error", status=409,
                      error={"code": "OperationNotAllowed", "message": "Injected refusal."})
    with pytest.raises(HttpResponseError):  # a refused write stands in web-01's activity log…
        compute.virtual_machines.begin_update("rg-market", "web-01", {"tags": {"env": "test"}}).result()
    compute.virtual_machines.begin_delete("rg-market", "web-01").result()  # …then the VM is deleted
    with pytest.raises(TargetNotFound, match="VM rg-market/web-01 not found"):
        run_diagnosis(rig.az(), VmRef("rg-market", "web-01"))
    with pytest.raises(TargetNotFound, match="VM rg-market/nothing-here not found"):
        run_diagnosis(rig.az(), VmRef("rg-market", "nothing-here"))
