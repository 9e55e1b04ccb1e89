"""Seeded worlds. Small scenarios are built through armsim's own request pipeline (so the activity log
holds real evidence, such as the failed start); the fleet generator writes models directly.

    healthy                      rg-web/web-01, running, agent Ready
    generalized-after-capture    rg-demo/app-01: guest sysprepped, VM generalized, image app-01-image
    generalized-without-sysprep  rg-demo/api-01: guest still specialized, VM generalized (capture misused)
    generalized-vm               both of the above in rg-demo, plus rg-demo/app-02 healthy (the playbook's world)
    redeploy-vm                  rg-redeploy: web-01 provisioning timed out on a faulty host, web-02's agent cannot
                                 reach its host; distractors web-03 (healthy), web-04 (start failed AllocationFailed)
    generalized-with-links       rg-demo/db-01: like api-01 (guest specialized, VM generalized), no public IP; its NIC
                                 in an NSG, an ASG, a load-balancer pool and NAT rule, an app-gateway pool; a
                                 user-assigned identity besides the system one (those in rg-shared, on trust)
    allocation-failure           rg-alloc: starts of app-01 (standalone) and web-01 (in a set) failed AllocationFailed;
                                 shop-02's start failed in shop-avset, pinned by shop-01 to a cluster without room
                                 (``set_members``: 2…50 members in that set)
    size-not-in-cluster          rg-resize: api-01's resize out of its availability set's cluster refused, and api-05's
                                 (standalone, running) out of its own
    quota-exceeded               rg-quota: batch-03 create and batch-02 resize refused by the DSv5 family quota
    sku-not-available            rg-sku: Standard_E4s_v5 restricted; db-01 resize and db-02 create refused
    iops-limit                   rg-iops: io-01 (D2s_v5) has two P30 disks, more IOPS than its size's cap; distractors
                                 io-02 (one P10) and io-03 (D16s_v5, same disks)
    platform-event,              rg-events: VMs with Resource Health availability events, each with the article
    customer-initiated-event,    that explains it (host disk failure, storage I/O timeout still going on, redeploy
    guest-os-crash               at the owner's request, Windows and Ubuntu guest crashes); targets per playbook
    image-preparation            rg-img: img-02's provisioning from image img-base timed out (image not prepared)
    policy-denied                rg-policy: pol-01's resize refused by a deny assignment (allowed VM sizes)
    subscription-billing         rg-billing: the subscription disabled, bill-01's start refused (read-only)
    out-of-scope-failure         rg-ade: ade-01's disk encryption refused for want of memory (extension error)
    fleet                        N VMs across M resource groups, a fraction generalized, mixed deleteOptions
    bootdiag-storage             rg-bootdiag: diag-01's start failed StorageAccountNotFound (its boot-diagnostics
                                 account was deleted), diag-02's StorageAccountTypeNotSupported (Premium); distractors
                                 diag-03 (Standard account, running), diag-04 (managed, deallocated), diag-05 (disabled)
    resource-locked              rg-locked: lk-01's start refused ScopeLocked by a ReadOnly lock on its group;
                                 rg-lockvm: lk-02's deallocate refused by a ReadOnly lock on the VM; distractors lk-03
                                 (CanNotDelete lock, no failure), lk-04 (restart refused, then lock removed, restarted)
    nic-change                   rg-nic: NIC changes Azure refused (running VM, no NIC left, too many NICs for the
                                 size, accelerated networking on a size or set without it, a Basic load balancer
                                 of another set); distractors nic-07 (change taken) and nic-08 (healthy, two NICs)
    provisioning-failure         rg-prov: app-01 (Windows) and api-01 (Linux) created from images captured without
                                 Sysprep/deprovision timed out (agent ran); distractors web-01 (faulty host), app-02
    marketplace-terms            rg-market: fw-01's create refused ResourcePurchaseValidationFailed (FortiGate terms not
                                 accepted); distractors web-01, vpn-01, rtr-01 (armsim.marketplaceordering.scenarios)
    marketplace-plan             rg-plan: creates of fw-11, web-12, nva-13 refused VMMarketplaceInvalidInput (plan
                                 missing / not needed / wrong); distractors web-11, nva-14
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from armsim import faults
from armsim.compute import capacity
from armsim.errors import BadRequest
from armsim.http import ArmRequest, ArmResponse
from armsim.identity import make_token
from armsim.marketplaceordering.scenarios import marketplace_plan, marketplace_terms
from armsim.scenarios_nic import nic_change
from armsim.storage.scenario import bootdiag_storage

if TYPE_CHECKING:
    from armsim.app import App

API = {"Microsoft.Compute/disks": "2026-03-02", "Microsoft.Network": "2026-03-01",
       "Microsoft.Resources": "2025-04-01"}
COMPUTE_API = "2026-04-01"
SEED_PRINCIPAL = "armsim-seed"


def call(app: App, method: str, path: str, body: dict[str, Any] | None = None, api: str = COMPUTE_API) -> ArmResponse:
    """Run one request through the pipeline in-process; an error response raises."""
    import json

    token, _ = make_token(SEED_PRINCIPAL, app.world.default.tenant_id)
    sep = "&" if "?" in path else "?"
    req = ArmRequest.build(method, f"{path}{sep}api-version={api}",
                           {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                           json.dumps(body).encode() if body is not None else b"", "https://armsim.local")
    outcome = app.handle(req)
    assert outcome.response is not None
    return outcome.response


def _ok(resp: ArmResponse, what: str) -> ArmResponse:
    if resp.status >= 400:
        raise BadRequest(f"Seeding failed at {what}: {resp.body}")
    return resp


class Builder:
    """Creates realistic VMs (network, disks, extensions, identity) in one subscription."""

    def __init__(self, app: App, location: str = "eastus") -> None:
        self.app, self.world = app, app.world
        self.sub = app.world.default
        self.location = location

    def rg(self, name: str) -> str:
        _ok(call(self.app, "PUT", f"/subscriptions/{self.sub.id}/resourceGroups/{name}",
                 {"location": self.location}, API["Microsoft.Resources"]), f"resource group {name}")
        return f"/subscriptions/{self.sub.id}/resourceGroups/{name}"

    def network(self, rg: str, vnet: str = "vnet") -> str:
        base = f"/subscriptions/{self.sub.id}/resourceGroups/{rg}/providers/Microsoft.Network"
        _ok(call(self.app, "PUT", f"{base}/virtualNetworks/{vnet}", {
            "location": self.location, "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                                                      "subnets": [{"name": "default",
                                                                   "properties": {"addressPrefix": "10.0.0.0/24"}}]}},
                 API["Microsoft.Network"]), "vnet")
        return f"{base}/virtualNetworks/{vnet}/subnets/default"

    def vm(self, rg: str, name: str, *, subnet: str, os_type: str = "Windows", public_ip: bool = True,
           os_delete: str = "Delete", data_disks: list[dict[str, Any]] | None = None, nic_delete: str = "Delete",
           pip_delete: str = "Delete", extensions: bool = True, identity: bool = True,
           nic_properties: dict[str, Any] | None = None, ipconfig_properties: dict[str, Any] | None = None,
           user_assigned: list[str] | None = None, size: str = "Standard_D2s_v5",
           properties: dict[str, Any] | None = None, check: bool = True) -> str:
        """``nic_properties``/``ipconfig_properties`` are merged into the NIC's and its ipconfig's properties
        (e.g. an NSG, application security groups, backend pools); ``user_assigned`` adds those identities;
        ``properties`` are merged into the VM's (e.g. an availability set). ``check=False``: a refused VM PUT is
        left as evidence instead of failing the seeding."""
        sub = self.sub.id
        net = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network"
        ipconfig: dict[str, Any] = {"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic",
                                    **(ipconfig_properties or {})}
        if public_ip:
            _ok(call(self.app, "PUT", f"{net}/publicIPAddresses/{name}-ip", {
                "location": self.location, "sku": {"name": "Standard"},
                "properties": {"publicIPAllocationMethod": "Static"}}, API["Microsoft.Network"]), "public ip")
            ipconfig["publicIPAddress"] = {"id": f"{net}/publicIPAddresses/{name}-ip",
                                           "properties": {"deleteOption": pip_delete}}
        _ok(call(self.app, "PUT", f"{net}/networkInterfaces/{name}-nic", {
            "location": self.location, "properties": {**(nic_properties or {}), "ipConfigurations": [
                {"name": "ipconfig1", "properties": ipconfig}]}}, API["Microsoft.Network"]), "nic")
        linux = os_type == "Linux"
        image = ({"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
                 if linux else {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                                "sku": "2022-datacenter-azure-edition", "version": "latest"})
        os_profile: dict[str, Any] = {"computerName": name[:15], "adminUsername": "azureuser"}
        if linux:
            os_profile["linuxConfiguration"] = {"disablePasswordAuthentication": True, "ssh": {"publicKeys": [
                {"path": "/home/azureuser/.ssh/authorized_keys", "keyData": "ssh-rsa AAAAB3Nza armsim-demo"}]}}
        else:
            os_profile["adminPassword"] = "Seed-Only-Passw0rd!"
        body: dict[str, Any] = {
            "location": self.location, "tags": {"env": "prod", "owner": "payments"},
            "properties": {
                "hardwareProfile": {"vmSize": size},
                "storageProfile": {"imageReference": image, "osDisk": {
                    "name": f"{name}_OsDisk", "createOption": "FromImage", "caching": "ReadWrite",
                    "deleteOption": os_delete, "managedDisk": {"storageAccountType": "Premium_LRS"}},
                    "dataDisks": [{"lun": d.get("lun", i), "createOption": "Empty", "diskSizeGB": d.get("size", 64),
                                   "name": f"{name}_data{i}", "caching": d.get("caching", "ReadOnly"),
                                   "deleteOption": d.get("delete", "Detach"),
                                   "managedDisk": {"storageAccountType": "Premium_LRS"}}
                                  for i, d in enumerate(data_disks or [])]},
                "osProfile": os_profile,
                "networkProfile": {"networkInterfaces": [{
                    "id": f"{net}/networkInterfaces/{name}-nic",
                    "properties": {"primary": True, "deleteOption": nic_delete}}]},
                "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
                "userData": "IyEvYmluL3NoCmVjaG8gaGVsbG8K",
                **(properties or {}),
            },
        }
        if identity:
            body["identity"] = {"type": "SystemAssigned"}
        if user_assigned:
            body["identity"] = {"type": "SystemAssigned, UserAssigned" if identity else "UserAssigned",
                                "userAssignedIdentities": {i: {} for i in user_assigned}}
        vm_path = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
        resp = call(self.app, "PUT", vm_path, body)
        if not check:
            return vm_path
        _ok(resp, f"vm {name}")
        self.world.settle()
        if extensions:
            ext = ({"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1"}
                   if linux else {"publisher": "Microsoft.Compute", "type": "CustomScriptExtension",
                                  "typeHandlerVersion": "1.10"})
            _ok(call(self.app, "PUT", f"{vm_path}/extensions/bootstrap", {"location": self.location, "properties": {
                **ext, "autoUpgradeMinorVersion": True, "settings": {"commandToExecute": "echo ready"},
                "protectedSettings": {"storageAccountKey": "seed-secret"}}}), "extension")
            self.world.settle()
        return vm_path

    def generalize(self, vm_path: str, *, sysprep: bool, capture: str | None, failed_start: bool = True) -> None:
        from armsim.control import guest_action

        if sysprep:
            guest_action(self.app, "sysprep", {"vm": vm_path})
        _ok(call(self.app, "POST", f"{vm_path}/deallocate"), "deallocate")
        self.world.settle()
        _ok(call(self.app, "POST", f"{vm_path}/generalize"), "generalize")
        if capture:
            rg_path = vm_path.split("/providers/")[0]
            _ok(call(self.app, "PUT", f"{rg_path}/providers/Microsoft.Compute/images/{capture}", {
                "location": self.location, "properties": {"sourceVirtualMachine": {"id": vm_path}}}), "image")
            self.world.settle()
        if failed_start:
            call(self.app, "POST", f"{vm_path}/start")  # refused: the evidence in the activity log


def healthy(app: App) -> dict[str, Any]:
    b = Builder(app)
    b.rg("rg-web")
    vm = b.vm("rg-web", "web-01", subnet=b.network("rg-web"), data_disks=[{"size": 32}])
    return {"vms": [vm]}


def generalized_after_capture(app: App) -> dict[str, Any]:
    b = Builder(app)
    b.rg("rg-demo")
    vm = b.vm("rg-demo", "app-01", subnet=b.network("rg-demo"), data_disks=[{"size": 64, "delete": "Delete"},
                                                                           {"size": 128, "delete": "Detach"}])
    b.generalize(vm, sysprep=True, capture="app-01-image")
    return {"vms": [vm], "image": vm.split("/providers/")[0] + "/providers/Microsoft.Compute/images/app-01-image"}


def generalized_without_sysprep(app: App) -> dict[str, Any]:
    b = Builder(app)
    b.rg("rg-demo")
    vm = b.vm("rg-demo", "api-01", os_type="Linux", subnet=b.network("rg-demo"),
              data_disks=[{"size": 64, "delete": "Delete"}])
    b.generalize(vm, sysprep=False, capture="api-01-image")
    return {"vms": [vm], "image": vm.split("/providers/")[0] + "/providers/Microsoft.Compute/images/api-01-image"}


def generalized_vm(app: App) -> dict[str, Any]:
    """The generalized-vm playbook's world: the two generalized VMs (sysprepped and captured; generalized without
    sysprep), each with its refused start in the activity log, and a healthy VM beside them."""
    b = Builder(app)
    b.rg("rg-demo")
    subnet = b.network("rg-demo")
    app01 = b.vm("rg-demo", "app-01", subnet=subnet, data_disks=[{"size": 64, "delete": "Delete"},
                                                                 {"size": 128, "delete": "Detach"}])
    b.generalize(app01, sysprep=True, capture="app-01-image")
    api01 = b.vm("rg-demo", "api-01", os_type="Linux", subnet=subnet, data_disks=[{"size": 64, "delete": "Delete"}])
    b.generalize(api01, sysprep=False, capture="api-01-image")
    app02 = b.vm("rg-demo", "app-02", subnet=subnet, data_disks=[{"size": 64}])
    images = [vm.split("/providers/")[0] + f"/providers/Microsoft.Compute/images/{name}-image"
              for vm, name in ((app01, "app-01"), (api01, "api-01"))]
    return {"vms": [app01, api01, app02], "targets": [app01, api01], "distractors": [app02], "images": images}


def generalized_with_links(app: App) -> dict[str, Any]:
    """rg-demo/db-01 (Linux), generalized without sysprep like api-01, whose rebuild writes every kind of linked
    reference: its NIC (deleted with the VM, no public IP, so the rebuild is its first write) is in an NSG, an
    application security group, a load-balancer backend pool and inbound NAT rule and an application-gateway
    backend pool, and the VM has a user-assigned identity besides its system one. Those are in rg-shared; armsim
    does not model them and takes a reference to one on trust once its resource group exists (docs/armsim.md)."""
    b = Builder(app)
    b.rg("rg-demo")
    shared = b.rg("rg-shared")
    net = f"{shared}/providers/Microsoft.Network"
    nsg, asg = f"{net}/networkSecurityGroups/db-nsg", f"{net}/applicationSecurityGroups/db-asg"
    pool = f"{net}/loadBalancers/db-lb/backendAddressPools/db-pool"
    nat = f"{net}/loadBalancers/db-lb/inboundNatRules/db-ssh"
    gateway_pool = f"{net}/applicationGateways/db-agw/backendAddressPools/db-agw-pool"
    uami = f"{shared}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/db-identity"
    vm = b.vm("rg-demo", "db-01", os_type="Linux", subnet=b.network("rg-demo"), public_ip=False,
              data_disks=[{"size": 64, "delete": "Delete"}], nic_properties={"networkSecurityGroup": {"id": nsg}},
              ipconfig_properties={"applicationSecurityGroups": [{"id": asg}],
                                   "loadBalancerBackendAddressPools": [{"id": pool}],
                                   "loadBalancerInboundNatRules": [{"id": nat}],
                                   "applicationGatewayBackendAddressPools": [{"id": gateway_pool}]},
              user_assigned=[uami])
    b.generalize(vm, sysprep=False, capture=None)
    return {"vms": [vm], "nsg": nsg, "application_security_group": asg, "backend_pool": pool, "inbound_nat_rule": nat,
            "application_gateway_pool": gateway_pool, "identity": uami}


def redeploy_vm(app: App) -> dict[str, Any]:
    """The redeploy-vm playbook's world, in rg-redeploy (evidence written through the pipeline):

    web-01  its deployment landed on a host where provisioning cannot finish: the create failed with
            OSProvisioningTimedOut (activity log), it runs with the agent Not Ready ("VM Agent is unresponsive.")
    web-02  (Linux) created fine, then its host lost the agent: Not Ready, provisioningState still Succeeded
    web-03  distractor: healthy, running, agent Ready
    web-04  distractor: deallocated, its start failed with AllocationFailed (a capacity problem, not a host one)
    """
    from armsim.compute import exceptions as cx
    from armsim.control import host_fault

    b = Builder(app)
    b.rg("rg-redeploy")
    subnet = b.network("rg-redeploy")
    vm_path = f"/subscriptions/{b.sub.id}/resourceGroups/rg-redeploy/providers/Microsoft.Compute/virtualMachines"
    host_fault(app, {"vm": f"{vm_path}/web-01", "kind": "provisioning-timeout"})  # armed: its create lands there
    web01 = b.vm("rg-redeploy", "web-01", subnet=subnet, extensions=False)  # extensions never came
    web02 = b.vm("rg-redeploy", "web-02", subnet=subnet, os_type="Linux")
    host_fault(app, {"vm": web02, "kind": "agent-unreachable"})
    web03 = b.vm("rg-redeploy", "web-03", subnet=subnet, data_disks=[{"size": 32}])
    web04 = b.vm("rg-redeploy", "web-04", subnet=subnet)
    _ok(call(app, "POST", f"{web04}/deallocate"), "deallocate")
    app.world.settle()
    rule = faults.validate({"method": "POST", "path": "/virtualMachines/web-04/start$", "action": "async-failed",
                            "error": cx.allocation_failed()})
    app.world.faults.append(rule)
    try:
        _ok(call(app, "POST", f"{web04}/start"), "start")
    finally:
        app.world.faults.remove(rule)
    app.world.settle()
    return {"vms": [web01, web02, web03, web04], "targets": [web01, web02], "distractors": [web03, web04]}


def _avset(b: Builder, rg: str, name: str) -> str:
    path = f"/subscriptions/{b.sub.id}/resourceGroups/{rg}/providers/Microsoft.Compute/availabilitySets/{name}"
    _ok(call(b.app, "PUT", path, {"location": b.location, "sku": {"name": "Aligned"}, "properties": {
        "platformFaultDomainCount": 2, "platformUpdateDomainCount": 5}}), f"availability set {name}")
    return path


def _post(app: App, path: str, action: str) -> None:
    _ok(call(app, "POST", f"{path}/{action}"), action)
    app.world.settle()


MAX_SET_MEMBERS = 50


def allocation_failure(app: App, set_members: int = 2) -> dict[str, Any]:
    """rg-alloc (eastus), starts that failed AllocationFailed in the activity log:

    app-01  standalone Standard_E4s_v5, deallocated; eastus has no Standard_E4s_v5 capacity left (a capacity limit
            of 0 that stays until lifted: ``arm.set_capacity("eastus", None, size="Standard_E4s_v5")``)
    web-01  in availability set web-avset with web-02 (Standard_D2s_v5), every member deallocated; its start
            failed once (a one-off allocation failure), so a retry or a start of the whole set succeeds
    app-02  distractor: healthy, running;  app-03  distractor: deallocated, never started
    shop-02 in availability set shop-avset (Standard_D4s_v5, deallocated) beside shop-01 (Standard_D2s_v5, running),
            which pins the set to its cluster; that cluster has no Standard_D4s_v5 room (a cluster-scoped limit
            of 0, lifted with ``arm.set_capacity("eastus", None, size="Standard_D4s_v5", cluster=<cluster>)``)
            while the region's other v5 clusters have room. Its start failed with the availability-set variant
            of AllocationFailed; it keeps failing while any other member holds an allocation. Deallocating the
            rest of the set lets shop-02 start on another cluster, and the others follow it there.

    ``set_members`` (2…50): shop-avset's size; shop-03 … shop-NN are more running Standard_D2s_v5 members.
    Returns the existing keys plus ``pinned_set`` (shop-avset's id), ``set_cluster`` (the cluster it is pinned
    to), ``set_targets`` (shop-02) and ``set_members`` (every shop VM, in name order).
    """
    if isinstance(set_members, bool) or not isinstance(set_members, int) or not 2 <= set_members <= MAX_SET_MEMBERS:
        raise BadRequest(f"allocation-failure needs an integer set_members between 2 and {MAX_SET_MEMBERS}; "
                         f"got {set_members!r}.")
    b = Builder(app)
    b.rg("rg-alloc")
    subnet = b.network("rg-alloc")
    avset = _avset(b, "rg-alloc", "web-avset")
    app01 = b.vm("rg-alloc", "app-01", subnet=subnet, size="Standard_E4s_v5")
    web01 = b.vm("rg-alloc", "web-01", subnet=subnet, properties={"availabilitySet": {"id": avset}})
    web02 = b.vm("rg-alloc", "web-02", subnet=subnet, properties={"availabilitySet": {"id": avset}})
    app02 = b.vm("rg-alloc", "app-02", subnet=subnet, data_disks=[{"size": 32}])
    app03 = b.vm("rg-alloc", "app-03", subnet=subnet)
    for vm in (app01, web01, web02, app03):
        _post(app, vm, "deallocate")
    compute = app.world.default.compute
    capacity.set_capacity(compute, {"location": "eastus", "size": "Standard_E4s_v5", "limit": 0})
    capacity.set_capacity(compute, {"location": "eastus", "size": "Standard_D2s_v5", "fail_next": 1})
    _post(app, app01, "start")  # accepted; the operation fails AllocationFailed
    _post(app, web01, "start")
    shop_set, cluster, shop = _pinned_set(b, subnet, set_members)
    return {"vms": [app01, web01, web02, app02, app03], "targets": [app01, web01], "distractors": [app02, app03],
            "availability_set": avset, "pinned_set": shop_set, "set_cluster": cluster, "set_targets": [shop[1]],
            "set_members": shop}


def _pinned_set(b: Builder, subnet: str, count: int) -> tuple[str, str, list[str]]:
    """shop-avset in rg-alloc: shop-01 (running) pins it; shop-02 (Standard_D4s_v5) cannot start on that cluster."""
    app = b.app
    compute = app.world.default.compute
    shop_set = _avset(b, "rg-alloc", "shop-avset")
    member = {"availabilitySet": {"id": shop_set}}
    shop01 = b.vm("rg-alloc", "shop-01", subnet=subnet, properties=member)
    shop02 = b.vm("rg-alloc", "shop-02", subnet=subnet, size="Standard_D4s_v5", properties=member)
    _post(app, shop02, "deallocate")
    others = [b.vm("rg-alloc", f"shop-{i:02d}", subnet=subnet, properties=member) for i in range(3, count + 1)]
    cluster = capacity.cluster_of(compute, compute.vms[shop01.lower()])
    if cluster is None:
        raise BadRequest("Seeding failed: shop-01 holds no allocation.")
    capacity.set_capacity(compute, {"location": "eastus", "size": "Standard_D4s_v5", "cluster": cluster, "limit": 0})
    _post(app, shop02, "start")  # accepted; fails AllocationFailed: the set is pinned to a cluster with no room
    return shop_set, cluster, [shop01, shop02, *others]


def size_not_in_cluster(app: App) -> dict[str, Any]:
    """rg-resize (eastus): api-01 and api-02 (Standard_D2s_v5) run in availability set api-avset, pinned to a
    v5-hardware cluster; a resize of api-01 to Standard_F4s_v2 (compute hardware) was refused (409
    OperationNotAllowed, "… is not available in the current hardware cluster …"). api-05 (standalone, running,
    Standard_D2s_v5) got the same refusal: a running VM is pinned to its own cluster; once deallocated it may be
    resized and starts on compute hardware. Distractors: api-03 (standalone, resized to Standard_D4s_v5 fine) and
    api-04 (healthy)."""
    b = Builder(app)
    b.rg("rg-resize")
    subnet = b.network("rg-resize")
    avset = _avset(b, "rg-resize", "api-avset")
    api01 = b.vm("rg-resize", "api-01", subnet=subnet, properties={"availabilitySet": {"id": avset}})
    api02 = b.vm("rg-resize", "api-02", subnet=subnet, properties={"availabilitySet": {"id": avset}})
    api03 = b.vm("rg-resize", "api-03", subnet=subnet)
    api04 = b.vm("rg-resize", "api-04", subnet=subnet)
    call(app, "PATCH", api01, {"properties": {"hardwareProfile": {"vmSize": "Standard_F4s_v2"}}})  # refused
    _ok(call(app, "PATCH", api03, {"properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}}}), "resize")
    app.world.settle()
    api05 = b.vm("rg-resize", "api-05", subnet=subnet)
    call(app, "PATCH", api05, {"properties": {"hardwareProfile": {"vmSize": "Standard_F4s_v2"}}})  # refused
    return {"vms": [api01, api02, api03, api04, api05], "targets": [api01, api05],
            "distractors": [api02, api03, api04], "availability_set": avset, "requested_size": "Standard_F4s_v2"}


def quota_exceeded(app: App) -> dict[str, Any]:
    """rg-quota (eastus), standardDSv5Family quota 8 vCPUs: batch-01 (Standard_D4s_v5) and batch-02
    (Standard_D2s_v5) use 6; the create of batch-03 (Standard_D4s_v5) and a resize of batch-02 to Standard_D8s_v5
    were refused (409 OperationNotAllowed, "… exceeding approved standardDSv5Family Cores quota …"). Distractor:
    batch-04 (Standard_E2s_v5, another family), healthy."""
    b = Builder(app)
    b.rg("rg-quota")
    subnet = b.network("rg-quota")
    capacity.set_quota(app.world.default.compute, {"location": "eastus", "name": "standardDSv5Family", "limit": 8})
    batch01 = b.vm("rg-quota", "batch-01", subnet=subnet, size="Standard_D4s_v5")
    batch02 = b.vm("rg-quota", "batch-02", subnet=subnet)
    batch04 = b.vm("rg-quota", "batch-04", subnet=subnet, size="Standard_E2s_v5")
    batch03 = b.vm("rg-quota", "batch-03", subnet=subnet, size="Standard_D4s_v5", check=False)  # refused
    call(app, "PATCH", batch02, {"properties": {"hardwareProfile": {"vmSize": "Standard_D8s_v5"}}})  # refused
    return {"vms": [batch01, batch02, batch04], "refused_create": batch03, "targets": [batch02, batch03],
            "distractors": [batch01, batch04]}


def sku_not_available(app: App) -> dict[str, Any]:
    """rg-sku (eastus): Standard_E4s_v5 is restricted for the subscription in eastus (NotAvailableForSubscription).
    db-01 (Standard_E2s_v5, deallocated): its resize to Standard_E4s_v5 was refused 409 SkuNotAvailable; the create of
    db-02 (Standard_E4s_v5) too. Distractor: db-03 (Standard_E2s_v5), healthy."""
    b = Builder(app)
    b.rg("rg-sku")
    subnet = b.network("rg-sku")
    capacity.restrict_sku(app.world.default.compute, {"size": "Standard_E4s_v5", "location": "eastus"})
    db01 = b.vm("rg-sku", "db-01", subnet=subnet, size="Standard_E2s_v5")
    db03 = b.vm("rg-sku", "db-03", subnet=subnet, size="Standard_E2s_v5")
    _post(app, db01, "deallocate")
    call(app, "PATCH", db01, {"properties": {"hardwareProfile": {"vmSize": "Standard_E4s_v5"}}})  # refused
    db02 = b.vm("rg-sku", "db-02", subnet=subnet, size="Standard_E4s_v5", check=False)  # refused
    return {"vms": [db01, db03], "refused_create": db02, "targets": [db01, db02], "distractors": [db03],
            "restricted_size": "Standard_E4s_v5"}


def iops_limit(app: App) -> dict[str, Any]:
    """rg-iops (eastus), the VM-IOPS-limit reboot RCAs (VMA_RCA_IO_Timeout_NodeReboot_VM_IOPS_Limit_*): the platform
    rebooted a VM after IO timeouts because its disks can do more IOPS than its size allows.

    io-01  target: Standard_D2s_v5 (uncached cap 3750 IOPS / 85 MB/s), running, two Premium_LRS 1024 GiB data disks
           (P30: 5000 IOPS / 200 MB/s each, host caching None) and its OS disk (127 GiB, P10): 10 500 IOPS > 3750
    io-02  distractor: Standard_D2s_v5, running, one 128 GiB data disk (P10, 500 IOPS): within the cap
    io-03  distractor: Standard_D16s_v5 (25 600 IOPS / 600 MB/s), running, the same two P30 disks: within the cap

    armsim records no availability event (Resource Health, platform reboot) for io-01: the activity log only holds
    writes, so the reboot itself is not part of the seeded evidence."""
    b = Builder(app)
    b.rg("rg-iops")
    subnet = b.network("rg-iops")
    p30 = [{"size": 1024, "caching": "None"}, {"size": 1024, "caching": "None"}]
    io01 = b.vm("rg-iops", "io-01", subnet=subnet, data_disks=p30)
    io02 = b.vm("rg-iops", "io-02", subnet=subnet, data_disks=[{"size": 128, "caching": "None"}])
    io03 = b.vm("rg-iops", "io-03", subnet=subnet, size="Standard_D16s_v5", data_disks=p30)
    return {"vms": [io01, io02, io03], "targets": [io01], "distractors": [io02, io03]}


def fleet(app: App, vms: int = 1000, resource_groups: int = 10, generalized_fraction: float = 0.1,
          seed: int = 7) -> dict[str, Any]:
    """N VMs over M resource groups, written straight into the models (fast enough for 10 000)."""
    if not (isinstance(vms, int) and isinstance(resource_groups, int) and vms >= 0 and resource_groups >= 1
            and 0 <= float(generalized_fraction) <= 1):
        raise BadRequest("fleet needs vms >= 0, resource_groups >= 1 and 0 <= generalized_fraction <= 1.")
    rnd = random.Random(seed)
    world = app.world
    sub = world.default
    generalized: list[str] = []
    for g in range(resource_groups):
        rg = f"rg-fleet-{g:03d}"
        sub.ensure_rg(rg, "eastus")
        sub.network.put_vnet(rg, "vnet", {"location": "eastus", "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/8"]},
            "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/16"}}]}})
    for i in range(vms):
        rg = f"rg-fleet-{i % resource_groups:03d}"
        name = f"vm-{i:05d}"
        nic, _ = sub.network.put_nic(rg, f"{name}-nic", {"location": "eastus", "properties": {"ipConfigurations": [
            {"name": "ipconfig1", "properties": {"subnet": {
                "id": f"{sub.network.rid(rg, 'virtualNetworks', 'vnet')}/subnets/default"}}}]}})
        vm, _, _ = sub.compute.put_vm(rg, name, {"location": "eastus", "properties": {
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                  "sku": "server", "version": "latest"},
                               "osDisk": {"createOption": "FromImage", "name": f"{name}_OsDisk",
                                          "deleteOption": rnd.choice(["Delete", "Detach"])}},
            "osProfile": {"computerName": name, "adminUsername": "azureuser", "adminPassword": "Fleet-Passw0rd!",
                          "linuxConfiguration": {"disablePasswordAuthentication": False}},
            "networkProfile": {"networkInterfaces": [{"id": nic.id, "properties": {
                "deleteOption": rnd.choice(["Delete", "Detach"])}}]}}})
        vm.provisioning_state, vm.busy, vm.agent_ready = "Succeeded", None, True
        if rnd.random() < generalized_fraction:
            vm.power_state, vm.generalized, vm.agent_ready = "deallocated", True, False
            generalized.append(vm.id)
        else:
            vm.power_state = rnd.choice(["running", "running", "running", "deallocated"])
        if vm.power_state == "deallocated":
            sub.compute.release(vm)
    world.dirty = True
    return {"vms": vms, "resource_groups": resource_groups, "generalized": len(generalized),
            "generalized_ids": generalized[:50]}


# The availability-event worlds (Resource Health), one per explaining playbook; all seed rg-events:
#   ev-01 running, a host disk failure rebooted it 2 h ago (12 min)     platform-event
#   ev-02 running, a storage (XStore) I/O timeout rebooted it 30 min ago and Resource Health still reports it
#         unavailable (an event with no end)                            platform-event
#   ev-03 healthy, no event                                             distractor of all
#   ev-04 running, redeployed at its owner's request yesterday         customer-initiated-event
#   ev-05 Windows guest crashed (stop error) 3 h ago, boot diagnostics on   guest-os-crash
#   ev-06 Linux guest (Ubuntu) kernel panic 5 h ago, boot diagnostics off   guest-os-crash
_EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "ev-01": ("VMA_RCA_Hardware_NodeReboot_Disk_Failure", {"minutes_ago": 120, "duration_minutes": 12}),
    "ev-02": ("VMA_RCA_IO_Timeout_NodeReboot_XStore_IO_Failures_e17_noend",
              {"minutes_ago": 30, "duration_minutes": None}),
    "ev-04": ("VMA_RCA_CustomerInitiated_NodeReboot_Redeploy", {"minutes_ago": 1440, "duration_minutes": 6,
                                                                "context": "Customer Initiated",
                                                                "reasonType": "Customer Initiated"}),
    "ev-05": ("VMA_RCA_Software_NodeCrash_GuestOS_Windows", {"minutes_ago": 180, "duration_minutes": 4}),
    "ev-06": ("VMA_RCA_Software_NodeCrash_GuestOS_UBUNTU", {"minutes_ago": 300, "duration_minutes": 5}),
}
_EVENT_TARGETS = {"platform-event": ["ev-01", "ev-02"], "customer-initiated-event": ["ev-04"],
                  "guest-os-crash": ["ev-05", "ev-06"]}


def availability_events(app: App, playbook: str) -> dict[str, Any]:
    """rg-events: VMs with Resource Health availability events (table above); targets are the playbook's."""
    from armsim.control import health_event

    b = Builder(app)
    b.rg("rg-events")
    subnet = b.network("rg-events")
    vms = {}
    for name in ("ev-01", "ev-02", "ev-03", "ev-04", "ev-05", "ev-06"):
        linux = name == "ev-06"
        diagnostics = {"diagnosticsProfile": {"bootDiagnostics": {"enabled": not linux}}}
        vms[name] = b.vm("rg-events", name, subnet=subnet, os_type="Linux" if linux else "Windows", public_ip=False,
                         extensions=False, properties=diagnostics)
    for name, (article, fields) in _EVENTS.items():
        health_event(app, {"vm": vms[name], "articleId": article, "summary": "armsim availability event",
                           **fields})
    targets = [vms[n] for n in _EVENT_TARGETS[playbook]]
    return {"vms": list(vms.values()), "targets": targets,
            "distractors": [v for v in vms.values() if v not in targets]}


def image_preparation(app: App) -> dict[str, Any]:
    """rg-img: img-02 was created from image img-base, whose guest never finished setup: its provisioning timed out
    with the catalogue's "… make sure the image has been properly prepared (generalized)" (armsim's guest cannot
    get stuck in setup by itself: the failure is injected as the platform's verdict). Distractors: img-01 (the
    image's healthy source, generalized and deallocated by its capture: another playbook's) and img-03 healthy."""
    from armsim.compute.exceptions import os_provisioning_timed_out_unprepared

    b = Builder(app)
    b.rg("rg-img")
    subnet = b.network("rg-img")
    src = b.vm("rg-img", "img-01", subnet=subnet, public_ip=False, extensions=False)
    b.generalize(src, sysprep=True, capture="img-base", failed_start=False)
    image = src.split("/providers/")[0] + "/providers/Microsoft.Compute/images/img-base"
    rule = faults.validate({"method": "PUT", "path": "/virtualMachines/img-02$", "action": "async-failed",
                            "times": 1, "error": os_provisioning_timed_out_unprepared("img-02")})
    app.world.faults.append(rule)
    try:
        bad = b.vm("rg-img", "img-02", subnet=subnet, public_ip=False, extensions=False, check=False,
                   properties={"storageProfile": {"imageReference": {"id": image}, "osDisk": {
                       "createOption": "FromImage", "name": "img-02_OsDisk", "managedDisk": {
                           "storageAccountType": "Premium_LRS"}}}})
        app.world.settle()
    finally:
        if rule in app.world.faults:
            app.world.faults.remove(rule)
    ok = b.vm("rg-img", "img-03", subnet=subnet, public_ip=False, extensions=False)
    return {"vms": [src, bad, ok], "targets": [bad], "distractors": [src, ok], "image": image}


def policy_denied(app: App) -> dict[str, Any]:
    """rg-policy under assignment 'allowed-vm-sizes' (deny any VM size but Standard_D2s_v5 and Standard_D4s_v5):
    pol-01's resize to Standard_E8s_v5 was refused RequestDisallowedByPolicy. Distractors: pol-02 resized to
    Standard_D4s_v5 (allowed), pol-03 healthy."""
    b = Builder(app)
    rg = b.rg("rg-policy")
    subnet = b.network("rg-policy")
    vms = [b.vm("rg-policy", f"pol-0{i}", subnet=subnet, public_ip=False, extensions=False) for i in (1, 2, 3)]
    definition = f"/subscriptions/{b.sub.id}/providers/Microsoft.Authorization/policyDefinitions/allowed-vm-sizes"
    b.sub.policy.put_definition("allowed-vm-sizes", {"properties": {
        "displayName": "Allowed virtual machine size SKUs", "parameters": {"listOfAllowedSKUs": {"type": "Array"}},
        "policyRule": {"if": {"allOf": [
            {"field": "type", "equals": "Microsoft.Compute/virtualMachines"},
            {"not": {"field": "Microsoft.Compute/virtualMachines/sku.name",
                     "in": "[parameters('listOfAllowedSKUs')]"}}]}, "then": {"effect": "deny"}}}})
    b.sub.policy.put_assignment(rg, "allowed-vm-sizes", {"properties": {
        "displayName": "Only D2s/D4s v5 in rg-policy", "policyDefinitionId": definition,
        "parameters": {"listOfAllowedSKUs": {"value": ["Standard_D2s_v5", "Standard_D4s_v5"]}}}})
    call(app, "PATCH", vms[0], {"properties": {"hardwareProfile": {"vmSize": "Standard_E8s_v5"}}})  # refused
    _ok(call(app, "PATCH", vms[1], {"properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}}}), "resize")
    return {"vms": vms, "targets": vms[:1], "distractors": vms[1:]}


def subscription_billing(app: App) -> dict[str, Any]:
    """rg-billing: bill-01 deallocated; then the subscription was disabled (billing), and bill-01's start was
    refused ReadOnlyDisabledSubscription. Distractor: bill-02, running (reads still work; it has no failure)."""
    b = Builder(app)
    b.rg("rg-billing")
    subnet = b.network("rg-billing")
    vms = [b.vm("rg-billing", f"bill-0{i}", subnet=subnet, public_ip=False, extensions=False) for i in (1, 2)]
    _ok(call(app, "POST", f"{vms[0]}/deallocate"), "deallocate")
    app.world.settle()
    b.sub.state = "Disabled"
    call(app, "POST", f"{vms[0]}/start")  # refused: the evidence
    return {"vms": vms, "targets": vms[:1], "distractors": vms[1:]}


def out_of_scope_failure(app: App) -> dict[str, Any]:
    """rg-ade: ade-01 (Linux, 2 vCPUs / 8 GB… but the guest is judged too small) failed to enable Azure Disk
    Encryption for want of memory (the extension's VMExtensionProvisioningError). Distractor: ade-02 healthy."""
    b = Builder(app)
    b.rg("rg-ade")
    subnet = b.network("rg-ade")
    vms = [b.vm("rg-ade", f"ade-0{i}", subnet=subnet, os_type="Linux", public_ip=False, extensions=False)
           for i in (1, 2)]
    rule = faults.validate({"method": "PUT", "path": "/ade-01/extensions/AzureDiskEncryptionForLinux$",
                            "action": "error", "status": 400, "times": 1, "error": {
                                "code": "VMExtensionProvisioningError",
                                "message": "VM has reported a failure when processing extension "
                                           "'AzureDiskEncryptionForLinux'. Error message: \"Not enough memory for "
                                           "enabling encryption on the OS volume\"."}})
    app.world.faults.append(rule)
    try:
        call(app, "PUT", f"{vms[0]}/extensions/AzureDiskEncryptionForLinux", {"location": b.location, "properties": {
            "publisher": "Microsoft.Azure.Security", "type": "AzureDiskEncryptionForLinux",
            "typeHandlerVersion": "1.1", "settings": {"EncryptionOperation": "EnableEncryption",
                                                      "VolumeType": "All"}}})
    finally:
        if rule in app.world.faults:
            app.world.faults.remove(rule)
    return {"vms": vms, "targets": vms[:1], "distractors": vms[1:]}
LOCKS_API = "2020-05-01"


def _lock(app: App, scope: str, name: str, level: str, notes: str | None = None,
          owners: list[dict[str, str]] | None = None) -> str:
    props: dict[str, Any] = {"level": level}
    if notes:
        props["notes"] = notes
    if owners:
        props["owners"] = owners
    path = f"{scope}/providers/Microsoft.Authorization/locks/{name}"
    _ok(call(app, "PUT", path, {"properties": props}, LOCKS_API), f"lock {name}")
    return path


def _refused(resp: ArmResponse, what: str) -> None:
    if resp.status != 409:
        raise BadRequest(f"Seeding expected {what} to be refused ScopeLocked, got {resp.status}: {resp.body}")


def resource_locked(app: App) -> dict[str, Any]:
    """The resource-locked playbook's world (DeploymentFailure_RCA-resource-locked), refusals written through the
    pipeline so the activity log holds them as Failed with ScopeLocked:

    lk-01  rg-locked: deallocated; ReadOnly lock ``change-freeze`` on the resource group (notes, two owners);
           its start was refused
    lk-02  rg-lockvm: running; ReadOnly lock ``audit-hold`` on the VM itself (notes, one owner); its deallocate was
           refused
    lk-03  distractor, rg-lockvm: running; CanNotDelete lock ``keep`` on the VM, nothing refused
    lk-04  distractor, rg-lockvm: running, no lock now; its restart was refused by a ReadOnly lock that was removed
           since, and the restart then succeeded (the failure no longer stands)

    Returns ``locks``: VM name → the id of the lock that refused it (lk-01, lk-02) or covers it (lk-03)."""
    b = Builder(app)
    locked_rg = b.rg("rg-locked")
    lk01 = b.vm("rg-locked", "lk-01", subnet=b.network("rg-locked"), extensions=False)
    _post(app, lk01, "deallocate")
    b.rg("rg-lockvm")
    subnet = b.network("rg-lockvm")
    lk02 = b.vm("rg-lockvm", "lk-02", subnet=subnet, extensions=False)
    lk03 = b.vm("rg-lockvm", "lk-03", subnet=subnet, extensions=False)
    lk04 = b.vm("rg-lockvm", "lk-04", subnet=subnet, extensions=False)
    owners = [{"applicationId": "7c1f0e0a-4c57-4d4e-9a57-0e1b7f3a0001"},
              {"applicationId": "7c1f0e0a-4c57-4d4e-9a57-0e1b7f3a0002"}]
    freeze = _lock(app, locked_rg, "change-freeze", "ReadOnly", "Quarter-end change freeze: ask the finance team",
                   owners)
    hold = _lock(app, lk02, "audit-hold", "ReadOnly", "Held for a security audit",
                 [{"applicationId": "5d0b2d7e-1111-4e8a-b7c2-3f0d9a6c0003"}])
    keep = _lock(app, lk03, "keep", "CanNotDelete", "Production: never delete")
    _refused(call(app, "POST", f"{lk01}/start"), "lk-01 start")  # the evidence in the activity log
    _refused(call(app, "POST", f"{lk02}/deallocate"), "lk-02 deallocate")
    maintenance = _lock(app, lk04, "maintenance", "ReadOnly")
    _refused(call(app, "POST", f"{lk04}/restart"), "lk-04 restart")
    _ok(call(app, "DELETE", maintenance, api=LOCKS_API), "lock maintenance")
    _post(app, lk04, "restart")
    return {"vms": [lk01, lk02, lk03, lk04], "targets": [lk01, lk02], "distractors": [lk03, lk04],
            "locks": {"lk-01": freeze, "lk-02": hold, "lk-03": keep}}


def _specialized_image(b: Builder, rg: str, subnet: str, name: str, os_type: str) -> str:
    """A managed image captured from a VM whose guest was never generalized (the VM is deleted afterwards, as
    capture workflows do): deploying it as an image (FromImage + osProfile) times out in OS provisioning."""
    vm = b.vm(rg, name, subnet=subnet, os_type=os_type, public_ip=False, extensions=False, identity=False)
    b.generalize(vm, sysprep=False, capture=f"{name}-image", failed_start=False)
    _ok(call(b.app, "DELETE", vm), f"delete {name}")
    b.world.settle()
    return vm.split("/providers/")[0] + f"/providers/Microsoft.Compute/images/{name}-image"


def _from_image_storage(name: str, image: str, data_disks: int) -> dict[str, Any]:
    return {"storageProfile": {
        "imageReference": {"id": image},
        "osDisk": {"name": f"{name}_OsDisk", "createOption": "FromImage", "caching": "ReadWrite",
                   "deleteOption": "Delete", "managedDisk": {"storageAccountType": "Premium_LRS"}},
        "dataDisks": [{"lun": i, "createOption": "Empty", "diskSizeGB": 64, "name": f"{name}_data{i}",
                       "caching": "ReadOnly", "deleteOption": "Detach" if i == 0 else "Delete",
                       "managedDisk": {"storageAccountType": "Premium_LRS"}} for i in range(data_disks)]}}


def provisioning_failure(app: App) -> dict[str, Any]:
    """The provisioning-failure playbook's world, in rg-prov (evidence written through the pipeline):

    app-01  (Windows) created from image golden-win-image, captured without Sysprep: the create failed with
            OSProvisioningTimedOut "the VM guest agent was detected running…"; Failed, running, agent Ready;
            two data disks (one deleted with the VM, one kept) and a public IP
    api-01  (Linux) the same from golden-lnx-image (captured without the agent's deprovision); one data disk
    web-01  distractor: its create landed on a host where provisioning cannot finish (plain OSProvisioningTimedOut,
            agent Not Ready): a host problem redeploy-vm fixes
    app-02  distractor: healthy, running, agent Ready
    """
    from armsim.control import host_fault

    b = Builder(app)
    b.rg("rg-prov")
    subnet = b.network("rg-prov")
    win = _specialized_image(b, "rg-prov", subnet, "golden-win", "Windows")
    lnx = _specialized_image(b, "rg-prov", subnet, "golden-lnx", "Linux")
    app01 = b.vm("rg-prov", "app-01", subnet=subnet, extensions=False,
                 properties=_from_image_storage("app-01", win, 2))
    api01 = b.vm("rg-prov", "api-01", subnet=subnet, os_type="Linux", public_ip=False, extensions=False,
                 properties=_from_image_storage("api-01", lnx, 1))
    vm_path = f"/subscriptions/{b.sub.id}/resourceGroups/rg-prov/providers/Microsoft.Compute/virtualMachines"
    host_fault(app, {"vm": f"{vm_path}/web-01", "kind": "provisioning-timeout"})  # armed: its create lands there
    web01 = b.vm("rg-prov", "web-01", subnet=subnet, extensions=False)
    app02 = b.vm("rg-prov", "app-02", subnet=subnet, data_disks=[{"size": 32}])
    return {"vms": [app01, api01, web01, app02], "targets": [app01, api01], "distractors": [web01, app02],
            "images": [win, lnx]}


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "healthy": healthy,
    "generalized-after-capture": generalized_after_capture,
    "generalized-without-sysprep": generalized_without_sysprep,
    "generalized-vm": generalized_vm,
    "redeploy-vm": redeploy_vm,
    "generalized-with-links": generalized_with_links,
    "allocation-failure": allocation_failure,
    "size-not-in-cluster": size_not_in_cluster,
    "quota-exceeded": quota_exceeded,
    "sku-not-available": sku_not_available,
    "iops-limit": iops_limit,
    "platform-event": lambda app: availability_events(app, "platform-event"),
    "customer-initiated-event": lambda app: availability_events(app, "customer-initiated-event"),
    "guest-os-crash": lambda app: availability_events(app, "guest-os-crash"),
    "image-preparation": image_preparation,
    "policy-denied": policy_denied,
    "subscription-billing": subscription_billing,
    "out-of-scope-failure": out_of_scope_failure,
    "fleet": fleet,
    "bootdiag-storage": bootdiag_storage,
    "resource-locked": resource_locked,
    "nic-change": nic_change,
    "provisioning-failure": provisioning_failure,
    "marketplace-terms": marketplace_terms,
    "marketplace-plan": marketplace_plan,
}


def seed(app: App, name: str, **params: Any) -> dict[str, Any]:
    """Seed a scenario into the world (throttling and RBAC do not apply to seeding)."""
    fn = SCENARIOS.get(name)
    if fn is None:
        raise BadRequest(f"Unknown scenario '{name}'. Known: {', '.join(sorted(SCENARIOS))}.")
    cfg = app.world.config
    saved = (cfg.throttling, cfg.rbac)
    cfg.throttling, cfg.rbac = False, False
    try:
        with app.world.lock:
            try:
                result = fn(app, **params)
            except TypeError as e:
                raise BadRequest(f"Bad parameters for scenario '{name}': {e}") from None
            app.world.settle()
            return {"scenario": name, **result}
    finally:
        cfg.throttling, cfg.rbac = saved
