"""Azure's rules for the NICs of a VM, checked before a VM write (PUT/PATCH) or a NIC write changes anything.

- NICs are added to or removed from a VM only while it is deallocated (an allocated VM keeps its NIC set);
- a VM keeps at least one NIC (the one-primary rule is ``NetworkState.plan_vm_nics``'s);
- a VM has at most ``MaxNetworkInterfaces`` NICs of its size: on create, resize and NIC change;
- a NIC with accelerated networking needs a size that supports it (capability AcceleratedNetworkingEnabled),
  on a VM write and on a NIC write of an attached NIC;
- an availability set whose allocated members have no accelerated-networking NIC was placed on a cluster without
  it: it refuses a new member (or a NIC change) with such NICs;
- a Basic load balancer serves one availability set: a VM (or a NIC of it) joining a backend pool of a load
  balancer whose other pool members are VMs of another availability set (or of none) is refused.

Sources of the codes and messages are given at each error below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from armsim.compute import catalog
from armsim.errors import BadRequest

if TYPE_CHECKING:
    from armsim.compute.models import ComputeState, VirtualMachine
    from armsim.network.models import NetworkInterface, NetworkState


# --- errors ----------------------------------------------------------------------------------------------


def nics_changed_while_running(vm_id: str) -> BadRequest:
    """azure-powershell #4565 (Update-AzureRmVM adding a NIC to a running VM): 400 with this code and message.
    Azure words it for the single ↔ multiple change; armsim gives it for any change of the NIC set."""
    return BadRequest(f"Virtual machine {vm_id} with a single network interface must be stop-deallocated before it "
                      "can be updated to have multiple network interfaces and vice-versa.",
                      code="AddingOrDeletingNetworkInterfacesOnARunningVirtualMachineNotSupported")


def network_interface_required(vm_name: str) -> BadRequest:
    # wording from memory, not verified: azure-cli #7683 quotes "Virtual machine X must have at least one network
    # interface"; the wire code is armsim's guess from the RCA article's name
    return BadRequest(f"Virtual machine {vm_name} must have at least one network interface.",
                      code="VirtualMachineMustHaveAtLeastOneNetworkInterface")


def nic_count_exceeded(vm_name: str, size: str, count: int, limit: int) -> BadRequest:
    """azure-sdk-for-java #15425: 400 ``NetworkInterfaceCountExceeded`` with this message (its trailing space too)."""
    return BadRequest(f"The number of network interfaces for virtual machine {vm_name} exceeds the maximum allowed for "
                      f"the virtual machine size {size}. The number of network interfaces is {count} and the maximum "
                      f"allowed is {limit}. ", code="NetworkInterfaceCountExceeded")


def size_without_accelerated_networking(vm_id: str, size: str) -> BadRequest:
    """azure-cli #12858 (az vm create --accelerated-networking --size Standard_DS1_v2): 400
    ``VMSizeIsNotPermittedToEnableAcceleratedNetworking`` with this message; the list is armsim's catalogue."""
    compatible = ", ".join(s.name for s in catalog.SIZES.values() if s.accelerated_networking)
    return BadRequest(f"Virtual machine {vm_id} has size {size}, which is not compatible with enabling accelerated "
                      f"networking on network interface(s) on the VM. Compatible VM sizes: {compatible}",
                      code="VMSizeIsNotPermittedToEnableAcceleratedNetworking")


def avset_not_on_accelerated_cluster(vm_id: str, avset_id: str) -> BadRequest:
    """terraform-provider-azurerm #782: 400 ``ExistingAvailabilitySetWasNotDeployedOnAcceleratedNetworkingEnabled
    Cluster`` with this message (gardener-extension-provider-azure #100 quotes a later wording of the same rule)."""
    return BadRequest(f"Cannot add Virtual Machine with accelerated networking-enabled nics ({vm_id}) on an existing "
                      f"non-accelerated networking AvailabilitySet ({avset_id}).",
                      code="ExistingAvailabilitySetWasNotDeployedOnAcceleratedNetworkingEnabledCluster")


def lb_in_other_availability_set(vm_id: str, lb_name: str) -> BadRequest:
    """The code is the one azure-docs' "Troubleshoot common Azure deployment errors with Azure Load Balancer" lists
    for a Basic load balancer; the message is the one azure-xplat-cli #2598 quotes for a VM PUT (400)."""
    return BadRequest(f"Virtual Machine {vm_id} is using different Availability Set than other Virtual Machines "
                      f"connected to the Load Balancer(s) {lb_name}.",
                      code="NetworkInterfaceAndLoadBalancerAreInDifferentAvailabilitySets")


# --- helpers ---------------------------------------------------------------------------------------------


def _ref(obj: Any) -> str | None:
    ref = obj.get("id") if isinstance(obj, dict) else None
    return ref if isinstance(ref, str) and ref else None


def _accelerated(nic: NetworkInterface | None, body: dict[str, Any] | None = None) -> bool:
    if body is not None:
        return bool((body.get("properties") or {}).get("enableAcceleratedNetworking"))
    return nic is not None and bool(nic.extra.get("enableAcceleratedNetworking"))


def _avset(props: dict[str, Any]) -> str | None:
    ref = _ref(props.get("availabilitySet"))
    return ref.lower() if ref else None


def _vm_nics(net: NetworkState, vm: VirtualMachine) -> list[NetworkInterface]:
    return [n for r in vm.nics if (n := net.nics.get(str(r.get("id", "")).lower())) is not None]


def _pools(configs: list[dict[str, Any]]) -> set[str]:
    return {str(p.get("id", "")).lower() for c in configs
            for p in (c.get("properties") or {}).get("loadBalancerBackendAddressPools") or [] if isinstance(p, dict)}


def _lb_of(pool_id: str) -> str:
    return pool_id.rpartition("/backendaddresspools/")[0]


def check_lb_sets(state: ComputeState, vm_id: str, avset: str | None, pools: set[str]) -> None:
    """A VM (of ``avset``) whose NICs join ``pools``: every other VM in a backend pool of the same Basic load
    balancer must be in the same availability set."""
    net = state.sub.network
    for lb_id in {_lb_of(p) for p in pools}:
        lb = net.lbs.get(lb_id)
        if lb is None or lb.sku != "Basic":
            continue
        for nic in net.nics.values():
            other = nic.virtual_machine
            if not other or other.lower() == vm_id.lower():
                continue
            if not any(_lb_of(p) == lb_id for p in _pools(nic.ip_configurations)):
                continue
            other_vm = state.vms.get(other.lower())
            other_set = _avset(other_vm.properties) if other_vm is not None else None
            if other_set != avset:
                raise lb_in_other_availability_set(vm_id, lb.name)


def _check_avset_accelerated(state: ComputeState, vm_id: str, avset: str | None) -> None:
    if avset is None:
        return
    from armsim.compute.capacity import avset_of, cluster_of

    net = state.sub.network
    others = [v for v in state.vms.values() if (avset_of(v) or "").lower() == avset and v.id.lower() != vm_id.lower()
              and cluster_of(state, v) is not None]
    if others and not any(_accelerated(n) for v in others for n in _vm_nics(net, v)):
        raise avset_not_on_accelerated_cluster(vm_id, avset_of(others[0]) or avset)


# --- the checks ------------------------------------------------------------------------------------------


def check_vm_write(state: ComputeState, rg: str, name: str, body: Any, *, patch: bool = False) -> None:
    """A PUT/PATCH of a VM: its NIC set (held while allocated, never empty), the NIC count and accelerated
    networking of its size, the availability set's cluster and the load balancers its NICs join."""
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        return
    props: dict[str, Any] = body["properties"]
    rid = state.rid(rg, "virtualMachines", name)
    existing = state.vms.get(rid.lower())
    if existing is None and patch:
        return
    net = state.sub.network
    profile = props.get("networkProfile")
    refs = profile.get("networkInterfaces") if isinstance(profile, dict) else None
    if existing is None and not refs:
        return  # NetworkState.plan_vm_nics names what is missing
    size_name = (props.get("hardwareProfile") or {}).get("vmSize")
    if existing is not None:
        size_name = size_name or (existing.properties.get("hardwareProfile") or {}).get("vmSize")
    size = catalog.size(str(size_name or ""))
    vm_id = existing.id if existing is not None else rid
    if existing is not None and isinstance(refs, list):  # null is absent, as ARM reads it
        if not refs:
            raise network_interface_required(existing.name)
        old = {str(r.get("id", "")).lower() for r in existing.nics}
        new = {str(r.get("id", "")).lower() for r in refs if isinstance(r, dict)}
        if old != new and existing.host is not None:
            raise nics_changed_while_running(existing.id)
    if refs is None:
        if existing is None:
            return
        refs = existing.nics
        if size is None or size.name.lower() == str(
                (existing.properties.get("hardwareProfile") or {}).get("vmSize") or "").lower():
            return  # neither the NICs nor the size change
    nics = [n for r in refs if isinstance(r, dict) and (n := net.nics.get(str(r.get("id", "")).lower())) is not None]
    if size is not None:
        if len(refs) > size.max_nics:
            raise nic_count_exceeded(name, size.name, len(refs), size.max_nics)
        if not size.accelerated_networking and any(_accelerated(n) for n in nics):
            raise size_without_accelerated_networking(vm_id, size.name)
    avset = _avset(existing.properties if existing is not None else props)
    if any(_accelerated(n) for n in nics):
        _check_avset_accelerated(state, vm_id, avset)
    pools = set().union(*(_pools(n.ip_configurations) for n in nics)) if nics else set()
    if pools:
        check_lb_sets(state, vm_id, avset, pools)


def check_nic_write(net: NetworkState, rg: str, name: str, body: Any) -> None:
    """A PUT of a NIC attached to a VM: accelerated networking needs the VM's size to support it; a backend pool
    it joins must not mix availability sets on a Basic load balancer."""
    if not isinstance(body, dict):
        return
    nic = net.nics.get(net.rid(rg, "networkInterfaces", name).lower())
    if nic is None or not nic.virtual_machine:
        return
    state = net.sub.compute
    vm = state.vms.get(nic.virtual_machine.lower())
    if vm is None:
        return
    size = catalog.size(str((vm.properties.get("hardwareProfile") or {}).get("vmSize") or ""))
    if size is not None and not size.accelerated_networking and _accelerated(None, body) and not _accelerated(nic):
        raise size_without_accelerated_networking(vm.id, size.name)
    configs = (body.get("properties") or {}).get("ipConfigurations")
    pools = _pools(configs) if isinstance(configs, list) else set()
    if pools:
        check_lb_sets(state, vm.id, _avset(vm.properties), pools)
