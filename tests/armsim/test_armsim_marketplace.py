"""Marketplace images, plans and legal terms through the real SDKs (azure-mgmt-compute virtual_machine_images,
azure-mgmt-marketplaceordering marketplace_agreements): a create from an image sold under a plan is refused as Azure
refuses it until the plan block matches and the terms are accepted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from armsim_env import Env, error_body
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from armsim.marketplaceordering.scenarios import IMAGES, plan_of

FORTI = IMAGES["fortigate"]


def _create(env: Env, name: str, image: str, plan: dict[str, str] | None) -> Any:
    body = env.vm_body("rg", name)
    body["properties"]["storageProfile"]["imageReference"] = dict(IMAGES[image])
    if plan is not None:
        body["plan"] = plan
    return env.compute.virtual_machines.begin_create_or_update("rg", name, body).result()


def _refused(env: Env, name: str, image: str, plan: dict[str, str] | None) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as info:
        _create(env, name, image, plan)
    return info.value


def test_image_get_and_list_show_the_plan_of_third_party_images(env: Env) -> None:
    images = env.compute.virtual_machine_images
    versions = images.list("eastus", FORTI["publisher"], FORTI["offer"], FORTI["sku"])
    assert [v.name for v in versions] == ["7.4.5", "7.6.1"]
    got = images.get("eastus", FORTI["publisher"], FORTI["offer"], FORTI["sku"], "7.6.1")
    assert (got.plan.name, got.plan.product, got.plan.publisher) == (
        "fortinet_fg-vm_payg_2023", "fortinet_fortigate-vm_v5", "fortinet")
    assert got.id.endswith("/Skus/fortinet_fg-vm_payg_2023/Versions/7.6.1")
    ubuntu = IMAGES["ubuntu"]
    plain = images.get("eastus", ubuntu["publisher"], ubuntu["offer"], ubuntu["sku"], "22.04.202502130")
    assert plain.plan is None and plain.os_disk_image.operating_system == "Linux"
    with pytest.raises(ResourceNotFoundError):
        images.get("eastus", FORTI["publisher"], FORTI["offer"], FORTI["sku"], "1.0.0")


@pytest.mark.parametrize(("image", "plan", "message"), [
    ("fortigate", None, "requires Plan information in the request. VM: '"),
    ("ubuntu", plan_of("vmseries"), "does not need Plan information, please remove the Plan information"),
    ("vmseries", {**plan_of("vmseries"), "name": "bundle2"}, "The purchase information does not match."),
])
def test_a_plan_that_does_not_fit_the_image_is_refused(env: Env, image: str, plan: dict[str, str] | None,
                                                       message: str) -> None:
    env.rg("rg")
    err = _refused(env, "vm1", image, plan)
    assert err.status_code == 400 and err.error is not None
    assert err.error.code == "VMMarketplaceInvalidInput" and message in err.error.message
    with pytest.raises(ResourceNotFoundError):
        env.compute.virtual_machines.get("rg", "vm1")


def test_an_unknown_image_of_a_listed_publisher_is_not_found(env: Env) -> None:
    env.rg("rg")
    body = env.vm_body("rg", "vm1")
    body["properties"]["storageProfile"]["imageReference"] = {**FORTI, "sku": "no-such-sku"}
    resp = env.raw("PUT", env.vm_id("rg", "vm1"), json=body)
    assert resp.status_code == 404
    err = error_body(resp)
    assert err["code"] == "PlatformImageNotFound" and "fortinet:fortinet_fortigate-vm_v5:no-such-sku:latest" in \
        err["message"]


def test_terms_must_be_accepted_before_the_create_then_it_succeeds(env: Env) -> None:
    env.rg("rg")
    plan = plan_of("fortigate")
    err = _refused(env, "fw1", "fortigate", plan)
    assert err.status_code == 400 and err.error is not None
    assert err.error.code == "ResourcePurchaseValidationFailed"
    assert "Legal terms have not been accepted for this item on this subscription" in err.error.message
    assert env.sub in err.error.message

    agreements = env.arm.marketplace_client(retry_total=0).marketplace_agreements
    terms = agreements.get("virtualmachine", plan["publisher"], plan["product"], plan["name"])
    assert terms.accepted is False and terms.license_text_link and terms.signature
    assert terms.id.endswith(f"/offerTypes/VirtualMachine/publishers/fortinet/offers/{plan['product']}/plans/"
                             f"{plan['name']}/agreements/current")
    terms.accepted = True
    accepted = agreements.create("virtualmachine", plan["publisher"], plan["product"], plan["name"], terms)
    assert accepted.accepted is True
    vm = _create(env, "fw1", "fortigate", plan)
    assert vm.provisioning_state == "Succeeded" and vm.plan.name == plan["name"]
    # another plan's terms are untouched
    other = plan_of("vmseries")
    assert agreements.get("virtualmachine", other["publisher"], other["product"], other["name"]).accepted is False


def test_terms_put_needs_the_signature_and_cancel_revokes(env: Env) -> None:
    plan = plan_of("c8000v")
    agreements = env.arm.marketplace_client(retry_total=0).marketplace_agreements
    terms = agreements.get("virtualmachine", plan["publisher"], plan["product"], plan["name"])
    terms.accepted, terms.signature = True, "FORGED"
    with pytest.raises(HttpResponseError) as info:
        agreements.create("virtualmachine", plan["publisher"], plan["product"], plan["name"], terms)
    assert info.value.status_code == 400
    assert agreements.sign(plan["publisher"], plan["product"], plan["name"]).state == "Active"
    assert agreements.get("virtualmachine", plan["publisher"], plan["product"], plan["name"]).accepted is True
    assert [a.name for a in agreements.list().value or []] == [plan["name"]]
    assert agreements.cancel(plan["publisher"], plan["product"], plan["name"]).state == "Canceled"
    assert agreements.get_agreement(plan["publisher"], plan["product"], plan["name"]).state == "Canceled"
    assert agreements.get("virtualmachine", plan["publisher"], plan["product"], plan["name"]).accepted is False
    with pytest.raises(ResourceNotFoundError):
        agreements.get("virtualmachine", "fortinet", "no-such-offer", "x")


def test_the_refused_create_is_in_the_activity_log_with_its_body_without_secrets(arm: Any) -> None:
    seeded = arm.seed("marketplace-terms")
    fw01 = seeded["refused_create"]
    events = list(arm.monitor_client().activity_logs.list(
        filter=f"eventTimestamp ge '2000-01-01T00:00:00Z' and resourceUri eq '{fw01}'"))
    failed = [e for e in events if e.status.value == "Failed"]
    assert [json.loads(e.properties["statusMessage"])["error"]["code"] for e in failed] == [
        "ResourcePurchaseValidationFailed"]
    started = next(e for e in events if e.status.value == "Started")
    body = json.loads(started.properties["requestbody"])
    assert body["plan"] == plan_of("fortigate")
    assert body["properties"]["storageProfile"]["imageReference"]["publisher"] == "fortinet"
    assert "adminPassword" not in body["properties"]["osProfile"]
    compute = arm.compute_client()
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get("rg-market", "fw-01")
    assert {vm.name for vm in compute.virtual_machines.list("rg-market")} == {"web-01", "vpn-01", "rtr-01"}


def test_marketplace_plan_scenario_refuses_each_case(arm: Any) -> None:
    seeded = arm.seed("marketplace-plan")
    compute = arm.compute_client()
    assert {vm.name for vm in compute.virtual_machines.list("rg-plan")} == {"web-11", "nva-14"}
    assert len(seeded["targets"]) == 3 and set(seeded["cases"]) == set(seeded["targets"])


def test_accepted_terms_survive_a_saved_world(tmp_path: Any) -> None:
    from armsim.state import World

    world = World()
    world.default.marketplace.set_accepted("fortinet", "fortinet_fortigate-vm_v5", "fortinet_fg-vm_payg_2023", True)
    world.save(tmp_path / "state.json")
    again = World()
    again.load(tmp_path / "state.json")
    assert again.default.marketplace.accepted("fortinet", "fortinet_fortigate-vm_v5", "fortinet_fg-vm_payg_2023")
    assert not again.default.marketplace.accepted("paloaltonetworks", "vmseries-flex", "byol")
