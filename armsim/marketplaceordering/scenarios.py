"""The marketplace playbooks' worlds, written through armsim's request pipeline so the activity log holds the refused
creates with their request bodies (secrets stripped).

    marketplace-terms  rg-market: fw-01's create (FortiGate, plan right) refused ResourcePurchaseValidationFailed (the
                       plan's terms were never accepted). Distractors: web-01 (Ubuntu, no plan), vpn-01 (Palo Alto,
                       terms accepted before its create), rtr-01 (Cisco: refused for terms once, then the terms were
                       accepted and it was created: the failure no longer stands)
    marketplace-plan   rg-plan: creates refused VMMarketplaceInvalidInput: fw-11 (FortiGate, no plan), web-12 (Ubuntu,
                       a plan given), nva-13 (Palo Alto, plan name 'bundle2' instead of 'byol'). Distractors: web-11
                       (Ubuntu), nva-14 (Palo Alto, right plan, terms accepted)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from armsim.compute import vmimages

if TYPE_CHECKING:
    from armsim.app import App
    from armsim.scenarios import Builder

IMAGES = {
    "ubuntu": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
               "version": "latest"},
    "fortigate": {"publisher": "fortinet", "offer": "fortinet_fortigate-vm_v5", "sku": "fortinet_fg-vm_payg_2023",
                  "version": "latest"},
    "vmseries": {"publisher": "paloaltonetworks", "offer": "vmseries-flex", "sku": "byol", "version": "latest"},
    "c8000v": {"publisher": "cisco", "offer": "cisco-c8000v-byol", "sku": "17_15_01a-byol", "version": "latest"},
}


def plan_of(image: str) -> dict[str, str]:
    """The plan block an image of IMAGES is sold under."""
    ref = IMAGES[image]
    found = vmimages.find(ref["publisher"], ref["offer"], ref["sku"])
    assert found is not None and found.plan_block is not None
    return dict(found.plan_block)


def vm_body(b: Builder, rg: str, name: str, subnet: str, image: str, plan: dict[str, str] | None) -> dict[str, Any]:
    """A VM body as a template would send it (a NIC is created first). Appliances log in with a password (stripped
    from the activity log like every secret); Ubuntu with an SSH key."""
    from armsim.scenarios import API, _ok, call

    net = f"/subscriptions/{b.sub.id}/resourceGroups/{rg}/providers/Microsoft.Network"
    _ok(call(b.app, "PUT", f"{net}/networkInterfaces/{name}-nic", {
        "location": b.location, "properties": {"ipConfigurations": [
            {"name": "ipconfig1", "properties": {"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic"}}]}},
        API["Microsoft.Network"]), "nic")
    os_profile: dict[str, Any] = {"computerName": name, "adminUsername": "azureuser"}
    if image == "ubuntu":
        os_profile["linuxConfiguration"] = {"disablePasswordAuthentication": True, "ssh": {"publicKeys": [
            {"path": "/home/azureuser/.ssh/authorized_keys", "keyData": "ssh-rsa AAAAB3Nza armsim-demo"}]}}
    else:
        os_profile["adminPassword"] = "Seed-Only-Passw0rd!"
    body: dict[str, Any] = {
        "location": b.location, "tags": {"env": "prod", "owner": "netops"},
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {"imageReference": dict(IMAGES[image]), "osDisk": {
                "name": f"{name}_OsDisk", "createOption": "FromImage", "deleteOption": "Delete",
                "managedDisk": {"storageAccountType": "Premium_LRS"}}},
            "osProfile": os_profile,
            "networkProfile": {"networkInterfaces": [{"id": f"{net}/networkInterfaces/{name}-nic",
                                                      "properties": {"primary": True, "deleteOption": "Delete"}}]},
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
        },
    }
    if plan is not None:
        body["plan"] = plan
    return body


def _vm(b: Builder, rg: str, name: str, subnet: str, image: str, plan: dict[str, str] | None, *,
        refused: str | None = None) -> str:
    """Create the VM; ``refused``: the error code its create must be refused with (left as evidence)."""
    from armsim.scenarios import _ok, call

    path = f"/subscriptions/{b.sub.id}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
    resp = call(b.app, "PUT", path, vm_body(b, rg, name, subnet, image, plan))
    if refused is None:
        _ok(resp, f"vm {name}")
    else:
        got = resp.body.get("error", {}).get("code") if isinstance(resp.body, dict) else None
        assert got == refused, f"seeding {name}: expected {refused}, got {resp.status} {resp.body}"
    b.world.settle()
    return path


def accept_terms(b: Builder, image: str) -> None:
    ref = IMAGES[image]
    b.sub.marketplace.set_accepted(ref["publisher"], ref["offer"], ref["sku"], True)


def _world(app: App, rg: str, web: str, nva: str) -> tuple[Builder, str, str, str]:
    """A resource group with a network, an Ubuntu VM and a Palo Alto VM-Series whose terms were accepted before its
    create (both healthy): the builder, the subnet and the two VM ids."""
    from armsim.scenarios import Builder

    b = Builder(app)
    b.rg(rg)
    subnet = b.network(rg)
    healthy = _vm(b, rg, web, subnet, "ubuntu", None)
    accept_terms(b, "vmseries")
    return b, subnet, healthy, _vm(b, rg, nva, subnet, "vmseries", plan_of("vmseries"))


def marketplace_terms(app: App) -> dict[str, Any]:
    b, subnet, web01, vpn01 = _world(app, "rg-market", "web-01", "vpn-01")
    _vm(b, "rg-market", "rtr-01", subnet, "c8000v", plan_of("c8000v"), refused="ResourcePurchaseValidationFailed")
    accept_terms(b, "c8000v")
    rtr01 = _vm(b, "rg-market", "rtr-01", subnet, "c8000v", plan_of("c8000v"))
    fw01 = _vm(b, "rg-market", "fw-01", subnet, "fortigate", plan_of("fortigate"),
               refused="ResourcePurchaseValidationFailed")
    return {"vms": [web01, vpn01, rtr01], "refused_create": fw01, "targets": [fw01],
            "distractors": [web01, vpn01, rtr01], "plan": plan_of("fortigate")}


def marketplace_plan(app: App) -> dict[str, Any]:
    b, subnet, web11, nva14 = _world(app, "rg-plan", "web-11", "nva-14")
    refused = "VMMarketplaceInvalidInput"
    fw11 = _vm(b, "rg-plan", "fw-11", subnet, "fortigate", None, refused=refused)
    web12 = _vm(b, "rg-plan", "web-12", subnet, "ubuntu", plan_of("vmseries"), refused=refused)
    nva13 = _vm(b, "rg-plan", "nva-13", subnet, "vmseries", {**plan_of("vmseries"), "name": "bundle2"},
                refused=refused)
    return {"vms": [web11, nva14], "targets": [fw11, web12, nva13], "distractors": [web11, nva14],
            "cases": {fw11: "plan-missing", web12: "plan-not-needed", nva13: "plan-mismatch"}}
