"""Storage accounts and boot diagnostics in armsim, through the real SDK (azure-mgmt-resource's generic client for
storage accounts, azure-mgmt-compute for VMs)."""

from __future__ import annotations

from typing import Any

import pytest
from armsim_env import Env, error_body
from azure.core.exceptions import HttpResponseError

from armsim import ArmSim

API = "2024-01-01"


def _account_id(env: Env, rg: str, name: str) -> str:
    return f"{env.rg_id(rg)}/providers/Microsoft.Storage/storageAccounts/{name}"


def _create(env: Env, rg: str, name: str, sku: str = "Standard_LRS", kind: str = "StorageV2",
            location: str = "eastus") -> Any:
    body = {"location": location, "sku": {"name": sku}, "kind": kind}
    return env.resources.resources.begin_create_or_update_by_id(_account_id(env, rg, name), body,
                                                                api_version=API).result()


def _boot(uri: str | None, enabled: bool = True) -> dict[str, Any]:
    bd: dict[str, Any] = {"enabled": enabled}
    if uri:
        bd["storageUri"] = uri
    return {"properties": {"diagnosticsProfile": {"bootDiagnostics": bd}}}


def _deallocated(env: Env, name: str, uri: str | None) -> None:
    body = env.vm_body("rg", name)
    body["properties"].update(_boot(uri)["properties"])
    env.compute.virtual_machines.begin_create_or_update("rg", name, body).result()
    env.compute.virtual_machines.begin_deallocate("rg", name).result()


def test_create_is_an_lro_with_location_then_get_and_list_show_sku_kind_and_blob_endpoint(env: Env) -> None:
    env.rg("rg")
    raw = env.raw("PUT", _account_id(env, "rg", "diagstore01"), api=API,
                  json={"location": "eastus", "sku": {"name": "Standard_GRS"}, "kind": "StorageV2"})
    assert raw.status_code == 202 and raw.content == b""
    assert "/providers/Microsoft.Storage/locations/eastus/asyncoperations/" in raw.headers["Location"]
    assert "Azure-AsyncOperation" not in raw.headers
    env.settle()
    got = env.resources.resources.get_by_id(_account_id(env, "rg", "diagstore01"), api_version=API)
    assert got.sku.name == "Standard_GRS" and got.sku.tier == "Standard" and got.kind == "StorageV2"
    assert got.properties["primaryEndpoints"]["blob"] == "https://diagstore01.blob.core.windows.net/"
    assert got.properties["provisioningState"] == "Succeeded"
    again = env.raw("PUT", _account_id(env, "rg", "diagstore01"), api=API,
                    json={"location": "eastus", "sku": {"name": "Standard_GRS"}, "kind": "StorageV2"})
    assert again.status_code == 200 and again.json()["name"] == "diagstore01"
    premium = _create(env, "rg", "diagprem01", sku="Premium_LRS")  # the SDK polls the Location to the end
    assert premium.sku.tier == "Premium"
    by_rg = env.raw("GET", f"{env.rg_id('rg')}/providers/Microsoft.Storage/storageAccounts", api=API).json()
    assert sorted(a["name"] for a in by_rg["value"]) == ["diagprem01", "diagstore01"]
    by_sub = env.raw("GET", f"/subscriptions/{env.sub}/providers/Microsoft.Storage/storageAccounts", api=API).json()
    assert len(by_sub["value"]) == 2
    generic = list(env.resources.resources.list(filter="resourceType eq 'Microsoft.Storage/storageAccounts'"))
    assert {(r.name, r.sku.name, r.kind, r.location) for r in generic} == {
        ("diagstore01", "Standard_GRS", "StorageV2", "eastus"), ("diagprem01", "Premium_LRS", "StorageV2", "eastus")}
    in_rg = list(env.resources.resources.list_by_resource_group("rg", filter="name eq 'diagprem01'"))
    assert [r.type for r in in_rg] == ["Microsoft.Storage/storageAccounts"]


def test_names_are_validated_and_globally_unique_and_delete_is_synchronous(env: Env) -> None:
    env.rg("rg")
    env.rg("rg2")
    bad = env.raw("PUT", _account_id(env, "rg", "Bad_Name"), api=API,
                  json={"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"})
    assert bad.status_code == 400 and error_body(bad)["code"] == "AccountNameInvalid"
    _create(env, "rg", "uniquename01")
    taken = env.raw("PUT", _account_id(env, "rg2", "uniquename01"), api=API,
                    json={"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"})
    assert taken.status_code == 409 and error_body(taken)["code"] == "StorageAccountAlreadyTaken"
    assert env.raw("DELETE", _account_id(env, "rg", "uniquename01"), api=API).status_code == 200
    assert env.raw("DELETE", _account_id(env, "rg", "uniquename01"), api=API).status_code == 204
    gone = env.raw("GET", _account_id(env, "rg", "uniquename01"), api=API)
    assert gone.status_code == 404 and error_body(gone)["code"] == "ResourceNotFound"


@pytest.mark.parametrize(("sku", "kind", "location", "code", "text"), [
    (None, None, None, "StorageAccountNotFound", "Storage account 'bootgone01' not found."),
    ("Premium_LRS", "StorageV2", "eastus", "StorageAccountTypeNotSupported", "is of Premium_LRS type"),
    ("Standard_LRS", "BlobStorage", "eastus", "StorageAccountTypeNotSupported", "is a Blob storage account"),
    ("Standard_LRS", "StorageV2", "westus", "StorageAccountLocationMismatch", "for boot diagnostics"),
])
def test_a_start_fails_on_a_bad_boot_diagnostics_account_and_is_logged(
        env: Env, sku: str | None, kind: str | None, location: str | None, code: str, text: str) -> None:
    env.rg("rg")
    if sku is not None:
        _create(env, "rg", "bootgone01", sku=sku, kind=str(kind), location=str(location))
    _deallocated(env, "vm1", None)
    # point the deallocated VM at the account: the update itself fails the same way (async, like Azure)
    poller = env.compute.virtual_machines.begin_update("rg", "vm1", _boot("https://bootgone01.blob.core.windows.net/"))
    with pytest.raises(HttpResponseError):  # a PATCH is polled through provisioningState: it ends Failed
        poller.result()
    assert env.compute.virtual_machines.get("rg", "vm1").provisioning_state == "Failed"
    with pytest.raises(HttpResponseError) as err:
        env.compute.virtual_machines.begin_start("rg", "vm1").result()
    assert err.value.error is not None and err.value.error.code == code and text in err.value.error.message
    assert "PowerState/deallocated" in env.statuses("rg", "vm1")
    monitor = env.arm.monitor_client(retry_total=0)
    failed = [e for e in monitor.activity_logs.list(filter="eventTimestamp ge '2020-01-01T00:00:00Z'")
              if e.status.value == "Failed" and e.operation_name.value.endswith("/start/action")]
    assert len(failed) == 1 and code in failed[0].properties["statusMessage"]


def test_a_create_with_a_missing_account_fails_and_leaves_the_vm_deallocated(env: Env) -> None:
    env.rg("rg")
    body = env.vm_body("rg", "vm1")
    body["properties"].update(_boot("https://nosuchaccount1.blob.core.windows.net/")["properties"])
    with pytest.raises(HttpResponseError) as err:
        env.compute.virtual_machines.begin_create_or_update("rg", "vm1", body).result()
    assert err.value.error is not None and err.value.error.code == "StorageAccountNotFound"
    assert "PowerState/deallocated" in env.statuses("rg", "vm1")


def test_managed_or_standard_boot_diagnostics_start_and_retrieve_boot_diagnostics_data(env: Env) -> None:
    env.rg("rg")
    _create(env, "rg", "bootok01")
    _deallocated(env, "vm1", "https://bootok01.blob.core.windows.net/")
    _deallocated(env, "vm2", None)
    for name in ("vm1", "vm2"):
        env.compute.virtual_machines.begin_start("rg", name).result()
        assert "PowerState/running" in env.statuses("rg", name)
    custom = env.compute.virtual_machines.retrieve_boot_diagnostics_data("rg", "vm1")
    assert custom.console_screenshot_blob_uri.startswith("https://bootok01.blob.core.windows.net/bootdiagnostics-")
    assert ".serialconsole.log?" in custom.serial_console_log_blob_uri and "sig=" in custom.serial_console_log_blob_uri
    managed = env.compute.virtual_machines.retrieve_boot_diagnostics_data("rg", "vm2",
                                                                         sas_uri_expiration_time_in_minutes=60)
    assert ".blob.storage.azure.net/" in managed.console_screenshot_blob_uri
    assert managed.console_screenshot_blob_uri.split("?")[0].endswith(".screenshot.bmp")


def test_retrieve_boot_diagnostics_data_is_refused_when_disabled(env: Env) -> None:
    env.rg("rg")
    body = env.vm_body("rg", "vm1")
    body["properties"].update(_boot(None, enabled=False)["properties"])
    env.compute.virtual_machines.begin_create_or_update("rg", "vm1", body).result()
    with pytest.raises(HttpResponseError) as err:
        env.compute.virtual_machines.retrieve_boot_diagnostics_data("rg", "vm1")
    assert err.value.status_code == 409 and err.value.error is not None
    assert err.value.error.code == "OperationNotAllowed"


def test_the_scenario_seeds_failed_starts_for_the_targets_only(arm: ArmSim, env: Env) -> None:
    seeded = arm.seed("bootdiag-storage")
    monitor = arm.monitor_client(retry_total=0)
    failed = {}
    for e in monitor.activity_logs.list(filter="eventTimestamp ge '2020-01-01T00:00:00Z'"):
        if e.status.value == "Failed" and e.operation_name.value.endswith("/start/action"):
            failed[e.resource_id.lower()] = e.properties["statusMessage"]
    assert sorted(failed) == sorted(t.lower() for t in seeded["targets"])
    assert "StorageAccountNotFound" in failed[seeded["targets"][0].lower()]
    assert "StorageAccountTypeNotSupported" in failed[seeded["targets"][1].lower()]
    states = {n: env.statuses("rg-bootdiag", n) for n in ("diag-03", "diag-04", "diag-05")}
    assert "PowerState/running" in states["diag-03"] and "PowerState/deallocated" in states["diag-04"]
    assert "PowerState/running" in states["diag-05"]


def test_control_seeds_an_account_that_exists_at_once(env: Env) -> None:
    env.rg("rg")
    import requests

    resp = requests.post(f"{env.arm.endpoint}/_armsim/storage/accounts", json={
        "resource_group": "rg", "name": "seeded01", "location": "westus", "sku": "Premium_LRS"},
        verify=env.arm.ca_bundle, timeout=30)
    assert resp.status_code == 201, resp.text
    got = env.resources.resources.get_by_id(_account_id(env, "rg", "seeded01"), api_version=API)
    assert got.location == "westus" and got.sku.name == "Premium_LRS"
    assert got.properties["provisioningState"] == "Succeeded"


def test_accounts_survive_a_saved_state(arm: ArmSim, env: Env) -> None:
    from armsim.state import World

    env.rg("rg")
    _create(env, "rg", "keptstore01", sku="Standard_RAGRS")
    with arm.world.lock:
        saved = arm.world.to_state()
    world = World()
    world.load_state(saved)
    account = world.sub(env.sub).storage.named("keptstore01")
    assert account is not None and account.sku == "Standard_RAGRS" and account.provisioning_state == "Succeeded"
