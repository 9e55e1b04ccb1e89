"""Test helpers: build resources in armsim through the real SDK clients (network + compute)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from armsim import ArmSim

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
LOCATION = "eastus"
WINDOWS_IMAGE = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                 "sku": "2022-datacenter-azure-edition", "version": "latest"}
OS_PROFILE = {"computerName": "vm", "adminUsername": "azureuser", "adminPassword": "Test-Passw0rd!"}


def error_body(resp: requests.Response) -> dict[str, Any]:
    """The ARM error object of a raw response; fails the test if the envelope is not ARM's."""
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert isinstance(body["error"].get("code"), str) and isinstance(body["error"].get("message"), str), body
    return body["error"]


class Env:
    """One test's view of armsim: SDK clients plus builders for resource groups, NICs, disks and VMs."""

    def __init__(self, arm: ArmSim) -> None:
        self.arm = arm
        self.sub = arm.subscription_id
        self.compute = arm.compute_client(retry_total=0)
        self.network = arm.network_client(retry_total=0)
        self.resources = arm.resource_client(retry_total=0)
        self._subnets: dict[str, str] = {}

    # --- ids ----------------------------------------------------------------------------------------
    def rg_id(self, rg: str) -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{rg}"

    def vm_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/Microsoft.Compute/virtualMachines/{name}"

    def disk_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/Microsoft.Compute/disks/{name}"

    def nic_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/Microsoft.Network/networkInterfaces/{name}"

    def pip_id(self, rg: str, name: str) -> str:
        return f"{self.rg_id(rg)}/providers/Microsoft.Network/publicIPAddresses/{name}"

    def url(self, path: str, api: str = "2026-04-01") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.arm.endpoint}{path}{sep}api-version={api}"

    def raw(self, method: str, path: str, *, api: str | None = "2026-04-01", json: Any = None,
            data: bytes | None = None, token: bool = True, headers: dict[str, str] | None = None,
            ) -> requests.Response:
        """A raw HTTPS request to armsim (TLS verified against its CA)."""
        hdrs = dict(headers or {})
        if token:
            hdrs.setdefault("Authorization", f"Bearer {self.arm.credential().get_token().token}")
        url = self.url(path, api) if api else f"{self.arm.endpoint}{path}"
        return requests.request(method, url, json=json, data=data, headers=hdrs, verify=self.arm.ca_bundle,
                                timeout=30)

    # --- builders -----------------------------------------------------------------------------------
    def rg(self, name: str, location: str = LOCATION) -> str:
        self.resources.resource_groups.create_or_update(name, {"location": location})
        return self.rg_id(name)

    def subnet(self, rg: str, location: str = LOCATION) -> str:
        key = f"{rg.lower()}/{location}"
        if key not in self._subnets:
            vnet = self.network.virtual_networks.begin_create_or_update(rg, f"vnet-{location}", {
                "location": location, "properties": {
                    "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                    "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}]}}).result()
            self._subnets[key] = vnet.subnets[0].id
        return self._subnets[key]

    def nic(self, rg: str, name: str, *, public_ip: bool = False, pip_delete: str = "Detach",
            location: str = LOCATION) -> str:
        ipconfig: dict[str, Any] = {"subnet": {"id": self.subnet(rg, location)}}
        if public_ip:
            self.network.public_ip_addresses.begin_create_or_update(rg, f"{name}-ip", {
                "location": location, "sku": {"name": "Standard"},
                "properties": {"publicIPAllocationMethod": "Static"}}).result()
            ipconfig["publicIPAddress"] = {"id": self.pip_id(rg, f"{name}-ip"),
                                           "properties": {"deleteOption": pip_delete}}
        self.network.network_interfaces.begin_create_or_update(rg, name, {
            "location": location, "properties": {"ipConfigurations": [{"name": "ipconfig1",
                                                                       "properties": ipconfig}]}}).result()
        return self.nic_id(rg, name)

    def empty_disk(self, rg: str, name: str, *, size: int = 32, **props: Any) -> Any:
        body: dict[str, Any] = {"location": props.pop("location", LOCATION),
                                "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": size, **props}}
        if "zones" in props:
            body["zones"] = body["properties"].pop("zones")
        return self.compute.disks.begin_create_or_update(rg, name, body).result()

    def vm_body(self, rg: str, name: str, *, os_delete: str = "Detach", nic_delete: str = "Detach",
                public_ip: bool = False, pip_delete: str = "Detach", data_disks: list[dict[str, Any]] | None = None,
                security_type: str | None = None, image_id: str | None = None,
                os_profile: dict[str, Any] | None = None, location: str = LOCATION) -> dict[str, Any]:
        nic = self.nic(rg, f"{name}-nic", public_ip=public_ip, pip_delete=pip_delete, location=location)
        props: dict[str, Any] = {
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {
                "imageReference": {"id": image_id} if image_id else WINDOWS_IMAGE,
                "osDisk": {"name": f"{name}_OsDisk", "createOption": "FromImage", "deleteOption": os_delete,
                           "managedDisk": {"storageAccountType": "Premium_LRS"}},
                "dataDisks": [{"lun": i, "createOption": "Empty", "diskSizeGB": 32, "name": f"{name}_data{i}",
                               "deleteOption": d.get("delete", "Detach")} for i, d in enumerate(data_disks or [])],
            },
            "osProfile": {**OS_PROFILE, "computerName": name[:15], **(os_profile or {})},
            "networkProfile": {"networkInterfaces": [{"id": nic, "properties": {"primary": True,
                                                                               "deleteOption": nic_delete}}]},
        }
        if security_type:
            props["securityProfile"] = {"securityType": security_type}
            if security_type == "TrustedLaunch":
                props["securityProfile"]["uefiSettings"] = {"secureBootEnabled": True, "vTpmEnabled": True}
        return {"location": location, "properties": props}

    def vm(self, rg: str, name: str, **kw: Any) -> Any:
        """Create a running VM from a platform image (agent Ready once booted) and return the SDK model."""
        return self.compute.virtual_machines.begin_create_or_update(rg, name, self.vm_body(rg, name, **kw)).result()

    def settle(self) -> None:
        self.arm.settle()

    def statuses(self, rg: str, name: str) -> list[str]:
        view = self.compute.virtual_machines.instance_view(rg, name)
        return [s.code for s in view.statuses or []]

    def agent_status(self, rg: str, name: str) -> str | None:
        view = self.compute.virtual_machines.instance_view(rg, name)
        agent = view.vm_agent
        return None if agent is None or not agent.statuses else agent.statuses[0].display_status

    def guest(self, action: str, vm_id: str) -> dict[str, Any]:
        resp = requests.post(f"{self.arm.endpoint}/_armsim/guest/{action}", json={"vm": vm_id},
                             verify=self.arm.ca_bundle, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def disk_facts(self, resource_id: str) -> dict[str, Any]:
        resp = requests.get(f"{self.arm.endpoint}/_armsim/disks/content", params={"id": resource_id},
                            verify=self.arm.ca_bundle, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def host_fault(self, vm_id: str, kind: str) -> dict[str, Any]:
        """Make the VM's host node faulty through the control API (``agent-unreachable``/``provisioning-timeout``)."""
        resp = requests.post(f"{self.arm.endpoint}/_armsim/vms/host-fault", json={"vm": vm_id, "kind": kind},
                             verify=self.arm.ca_bundle, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def vm_facts(self, vm_id: str) -> dict[str, Any]:
        """Hidden VM facts: ``host``, ``host_fault``, ``armed_fault``, ``temp_disk``."""
        resp = requests.get(f"{self.arm.endpoint}/_armsim/vms/facts", params={"id": vm_id},
                            verify=self.arm.ca_bundle, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()
