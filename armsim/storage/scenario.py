"""The ``bootdiag-storage`` scenario (the bootdiag-storage playbook's world), seeded through the pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from armsim.app import App

RG = "rg-bootdiag"
ACCOUNTS = {"gone": "bootdiaggone01", "premium": "bootdiagprem01", "healthy": "bootdiagok01",
            "west": "bootdiagwest01"}


def blob_uri(name: str) -> str:
    return f"https://{name}.blob.core.windows.net/"


def bootdiag_storage(app: App) -> dict[str, Any]:
    """rg-bootdiag (eastus), VMs whose boot-diagnostics storage account stops them from starting:

    diag-01  its account bootdiaggone01 was deleted while it was deallocated; its start failed StorageAccountNotFound
    diag-02  (deallocated) pointed at bootdiagprem01, a Premium_LRS account: the update failed and so did its start,
             StorageAccountTypeNotSupported
    diag-03  distractor: boot diagnostics on bootdiagok01 (Standard_LRS, eastus), running
    diag-04  distractor: managed boot diagnostics, deallocated by choice, no failure
    diag-05  distractor: boot diagnostics disabled, running (not this family's problem: nothing stops it)

    Spare accounts: bootdiagok01 is a Standard account a VM may be pointed at; bootdiagwest01 (Standard_LRS) is in
    westus, another region than the VMs.
    """
    from armsim.scenarios import Builder, _ok, _post, call
    from armsim.storage.responses import seed_account

    b = Builder(app)
    b.rg(RG)
    subnet = b.network(RG)
    world, sub = app.world, app.world.default.id
    for key, sku, location in (("gone", "Standard_LRS", "eastus"), ("premium", "Premium_LRS", "eastus"),
                               ("healthy", "Standard_LRS", "eastus"), ("west", "Standard_LRS", "westus")):
        seed_account(world, sub, RG, ACCOUNTS[key], location=location, sku=sku)

    def custom(key: str) -> dict[str, Any]:
        return {"diagnosticsProfile": {"bootDiagnostics": {"enabled": True, "storageUri": blob_uri(ACCOUNTS[key])}}}

    diag01 = b.vm(RG, "diag-01", subnet=subnet, properties=custom("gone"))
    diag02 = b.vm(RG, "diag-02", subnet=subnet)
    diag03 = b.vm(RG, "diag-03", subnet=subnet, properties=custom("healthy"))
    diag04 = b.vm(RG, "diag-04", subnet=subnet, os_type="Linux")
    diag05 = b.vm(RG, "diag-05", subnet=subnet,
                  properties={"diagnosticsProfile": {"bootDiagnostics": {"enabled": False}}})
    for vm in (diag01, diag02, diag04):
        _post(app, vm, "deallocate")
    storage = f"/subscriptions/{sub}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts"
    _ok(call(app, "DELETE", f"{storage}/{ACCOUNTS['gone']}", api="2024-01-01"), "delete the account")
    _ok(call(app, "PATCH", diag02, {"properties": custom("premium")}), "point diag-02 at the Premium account")
    world.settle()  # the update fails StorageAccountTypeNotSupported
    _post(app, diag01, "start")  # accepted; fails StorageAccountNotFound
    _post(app, diag02, "start")  # accepted; fails StorageAccountTypeNotSupported
    return {"vms": [diag01, diag02, diag03, diag04, diag05], "targets": [diag01, diag02],
            "distractors": [diag03, diag04, diag05], "accounts": {k: f"{storage}/{v}" for k, v in ACCOUNTS.items()}}
