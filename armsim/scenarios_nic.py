"""The nic-change playbook's world (``armsim.scenarios`` registers it): NIC changes of VMs that Azure refused,
written through armsim's own request pipeline so the activity log holds each refused write with its body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from armsim.app import App

NET_API = "2026-03-01"


def nic_change(app: App) -> dict[str, Any]:
    """rg-nic (eastus), each refused write's request body in the activity log:

    nic-01  Standard_D2s_v5, running, one NIC: adding a second NIC (nic-01-b) refused, the VM is running
            (AddingOrDeletingNetworkInterfacesOnARunningVirtualMachineNotSupported)
    nic-02  Standard_D2s_v5, running, one NIC: detaching its only NIC refused
            (VirtualMachineMustHaveAtLeastOneNetworkInterface)
    nic-03  Standard_D2s_v5 (2 NICs at most), deallocated: three NICs refused (NetworkInterfaceCountExceeded)
    nic-04  Standard_DS1_v2 (no accelerated networking), deallocated: a second NIC with accelerated networking
            (nic-04-fast) refused (VMSizeIsNotPermittedToEnableAcceleratedNetworking)
    nic-05  in availability set an-set beside an-01 (running, no accelerated networking), deallocated: a NIC with
            accelerated networking refused (ExistingAvailabilitySetWasNotDeployedOnAcceleratedNetworkingEnabledCluster)
    nic-06  in availability set web-b, deallocated: a NIC in the pool of Basic load balancer lb-web (whose members,
            web-01, are in web-a) refused (NetworkInterfaceAndLoadBalancerAreInDifferentAvailabilitySets)
    nic-07  distractor: deallocated, its second NIC added fine
    nic-08  distractor: Standard_D4s_v5 running with two NICs, healthy
    an-01, web-01: distractors (the members the refusals name), healthy
    """
    from armsim.scenarios import API, Builder, _avset, _ok, _post, call

    b = Builder(app)
    rg = "rg-nic"
    b.rg(rg)
    subnet = b.network(rg)
    net = f"/subscriptions/{b.sub.id}/resourceGroups/{rg}/providers/Microsoft.Network"

    def nic(name: str, **props: Any) -> str:
        ipconfig: dict[str, Any] = {"subnet": {"id": subnet}}
        if "pool" in props:
            ipconfig["loadBalancerBackendAddressPools"] = [{"id": props.pop("pool")}]
        _ok(call(app, "PUT", f"{net}/networkInterfaces/{name}", {
            "location": b.location, "properties": {**props, "ipConfigurations": [
                {"name": "ipconfig1", "properties": ipconfig}]}}, API["Microsoft.Network"]), f"nic {name}")
        return f"{net}/networkInterfaces/{name}"

    def ask(vm: str, nics: list[str]) -> None:
        """A PATCH of the VM's NICs (first primary), left in the activity log whether Azure takes it or not."""
        call(app, "PATCH", vm, {"properties": {"networkProfile": {"networkInterfaces": [
            {"id": n, "properties": {"primary": i == 0}} for i, n in enumerate(nics)]}}})
        app.world.settle()

    def own(name: str) -> str:
        return f"{net}/networkInterfaces/{name}-nic"

    nic01 = b.vm(rg, "nic-01", subnet=subnet, public_ip=False)
    ask(nic01, [own("nic-01"), nic("nic-01-b")])  # refused: running
    nic02 = b.vm(rg, "nic-02", subnet=subnet, public_ip=False)
    ask(nic02, [])  # refused: no NIC left
    nic03 = b.vm(rg, "nic-03", subnet=subnet, public_ip=False)
    _post(app, nic03, "deallocate")
    ask(nic03, [own("nic-03"), nic("nic-03-b"), nic("nic-03-c")])  # refused: 3 NICs on a 2-NIC size
    nic04 = b.vm(rg, "nic-04", subnet=subnet, public_ip=False, size="Standard_DS1_v2")
    _post(app, nic04, "deallocate")
    ask(nic04, [own("nic-04"), nic("nic-04-fast", enableAcceleratedNetworking=True)])  # refused: size without AN
    an_set = _avset(b, rg, "an-set")
    an01 = b.vm(rg, "an-01", subnet=subnet, public_ip=False, properties={"availabilitySet": {"id": an_set}})
    nic05 = b.vm(rg, "nic-05", subnet=subnet, public_ip=False, properties={"availabilitySet": {"id": an_set}})
    _post(app, nic05, "deallocate")
    ask(nic05, [own("nic-05"), nic("nic-05-fast", enableAcceleratedNetworking=True)])  # refused: set's cluster
    _ok(call(app, "PUT", f"{net}/loadBalancers/lb-web", {
        "location": b.location, "sku": {"name": "Basic"},
        "properties": {"backendAddressPools": [{"name": "web"}]}}, API["Microsoft.Network"]), "load balancer")
    app.world.settle()
    pool = f"{net}/loadBalancers/lb-web/backendAddressPools/web"
    web_a, web_b = _avset(b, rg, "web-a"), _avset(b, rg, "web-b")
    web01 = b.vm(rg, "web-01", subnet=subnet, public_ip=False, properties={"availabilitySet": {"id": web_a}},
                 ipconfig_properties={"loadBalancerBackendAddressPools": [{"id": pool}]})
    nic06 = b.vm(rg, "nic-06", subnet=subnet, public_ip=False, properties={"availabilitySet": {"id": web_b}})
    _post(app, nic06, "deallocate")
    ask(nic06, [own("nic-06"), nic("nic-06-lb", pool=pool)])  # refused: the pool serves web-a
    nic07 = b.vm(rg, "nic-07", subnet=subnet, public_ip=False)
    _post(app, nic07, "deallocate")
    ask(nic07, [own("nic-07"), nic("nic-07-b")])  # taken
    nic08 = b.vm(rg, "nic-08", subnet=subnet, public_ip=False, size="Standard_D4s_v5")
    _post(app, nic08, "deallocate")
    ask(nic08, [own("nic-08"), nic("nic-08-b")])
    _post(app, nic08, "start")
    return {"vms": [nic01, nic02, nic03, nic04, an01, nic05, web01, nic06, nic07, nic08],
            "targets": [nic01, nic02, nic03, nic04, nic05, nic06], "distractors": [nic07, nic08, an01, web01],
            "requested": {nic01: [own("nic-01"), f"{net}/networkInterfaces/nic-01-b"],
                          nic03: [own("nic-03"), f"{net}/networkInterfaces/nic-03-b",
                                  f"{net}/networkInterfaces/nic-03-c"],
                          nic04: [own("nic-04"), f"{net}/networkInterfaces/nic-04-fast"],
                          nic05: [own("nic-05"), f"{net}/networkInterfaces/nic-05-fast"],
                          nic06: [own("nic-06"), f"{net}/networkInterfaces/nic-06-lb"]}}
