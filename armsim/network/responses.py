"""Microsoft.Network handlers (virtual networks, subnets, NICs, public IPs, operation status)."""

from __future__ import annotations

from typing import Any

from armsim.errors import NotFound, ParentResourceNotFound
from armsim.http import ArmRequest, ArmResponse, ok
from armsim.lro import completer
from armsim.network import nic_rules
from armsim.network.models import NetworkInterface, NetworkState, PublicIPAddress, VirtualNetwork
from armsim.responses import accepted, begin, operation_status, page
from armsim.state import World


def _net(world: World, subscription: str) -> NetworkState:
    return world.sub(subscription).network


def _render(net: NetworkState, item: Any) -> dict[str, Any]:
    return net.vnet_dict(item) if isinstance(item, VirtualNetwork) else item.to_dict()


def _resource(table: str, rtype: str) -> tuple[Any, Any, Any, Any]:
    put_fn = {"vnets": "put_vnet", "nics": "put_nic", "pips": "put_pip"}[table]

    def put(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
        net = _net(world, subscriptionId)
        if table == "nics":
            nic_rules.check_nic_write(net, resourceGroupName, name, req.json())
        item, created = getattr(net, put_fn)(resourceGroupName, name, req.json())
        if hasattr(item, "provisioning_state"):  # NICs and public IPs; a VNet is ready at once
            item.provisioning_state = "Updating"
        op = begin(world, req, subscription=net.sub.id, kind="network.create", target=item.id, namespace="network",
                   location=item.location, args={"table": table})
        return accepted(world, req, op, status=201 if created else 200, body=_render(net, item), location=False)

    def get(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
        net = _net(world, subscriptionId)
        net.sub.rg(resourceGroupName)
        return ok(_render(net, net.get(table, resourceGroupName, rtype, name)))

    def list_(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str | None = None) -> ArmResponse:
        net = _net(world, subscriptionId)
        items = sorted(net.items_in(table, resourceGroupName), key=lambda i: i.id.lower())
        return page(req, items, lambda i: _render(net, i), world.config.page_size)

    def delete(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
        net = _net(world, subscriptionId)
        net.sub.rg(resourceGroupName)
        item = getattr(net, table).get(net.rid(resourceGroupName, rtype, name).lower())
        if item is None:
            return ArmResponse(204)
        if isinstance(item, NetworkInterface):
            net.delete_nic(item)
        elif isinstance(item, PublicIPAddress):
            net.delete_pip(item)
        else:
            net.delete_vnet(item)
        op = begin(world, req, subscription=net.sub.id, kind="network.delete", target=item.id, namespace="network",
                   location=item.location)
        return accepted(world, req, op)

    return put, get, list_, delete


create_or_update_vnet, get_vnet, list_vnets, delete_vnet = _resource("vnets", "virtualNetworks")
create_or_update_nic, get_nic, list_nics, delete_nic = _resource("nics", "networkInterfaces")
create_or_update_pip, get_pip, list_pips, delete_pip = _resource("pips", "publicIPAddresses")


def _vnet(net: NetworkState, rg: str, vnet_name: str) -> VirtualNetwork:
    net.sub.rg(rg)
    vnet = net.vnets.get(net.rid(rg, "virtualNetworks", vnet_name).lower())
    if vnet is None:
        raise ParentResourceNotFound(vnet_name)
    return vnet


def create_or_update_subnet(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                            virtualNetworkName: str, subnetName: str) -> ArmResponse:
    net = _net(world, subscriptionId)
    vnet = _vnet(net, resourceGroupName, virtualNetworkName)
    body = req.json()
    subnets = [{"name": s["name"], "properties": {k: v for k, v in s.items() if k != "name"}}
               for k, s in vnet.subnets.items() if k != subnetName.lower()]
    subnets.append({"name": subnetName, "properties": body.get("properties") or {}})
    created = subnetName.lower() not in vnet.subnets
    net.put_vnet(resourceGroupName, virtualNetworkName, {
        "location": vnet.location, "tags": vnet.tags,
        "properties": {"addressSpace": {"addressPrefixes": vnet.address_prefixes}, "subnets": subnets}})
    op = begin(world, req, subscription=net.sub.id, kind="network.create", target=vnet.id, namespace="network",
               location=vnet.location)
    return accepted(world, req, op, status=201 if created else 200,
                    body=vnet.subnet_dict(subnetName.lower(), []), location=False)


def get_subnet(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
               virtualNetworkName: str, subnetName: str) -> ArmResponse:
    net = _net(world, subscriptionId)
    vnet = _vnet(net, resourceGroupName, virtualNetworkName)
    if subnetName.lower() not in vnet.subnets:
        raise NotFound(f"Resource {vnet.id}/subnets/{subnetName} not found.", code="NotFound")
    key = subnetName.lower()
    subnet_id = f"{vnet.id}/subnets/{vnet.subnets[key]['name']}"
    body = vnet.subnet_dict(key, net._subnet_users(subnet_id))
    if "ipconfigurations" in [e.strip().lower() for e in (req.arg("$expand") or "").split(",")]:
        # "$expand: Expands referenced resources" (REST reference); the expanded shape is armsim's reading of it
        # (each ipconfig with its address and allocation method), not verified against Azure
        configs = net.subnet_configs_expanded(subnet_id)
        if configs:
            body["properties"]["ipConfigurations"] = configs
    return ok(body)


def get_operation(world: World, req: ArmRequest, subscriptionId: str, location: str,
                  operationId: str) -> ArmResponse:
    op = world.operations.get(operationId)
    if op is None or op.namespace != "network":
        raise NotFound(f"The operation '{operationId}' was not found.", code="OperationNotFound")
    return operation_status(world, req, op)


@completer("network.create")
def _network_created(world: World, op: Any) -> None:
    net = world.sub(op.subscription).network
    table = op.args.get("table")
    item = getattr(net, table).get(op.target.lower()) if table else None
    if item is not None and hasattr(item, "provisioning_state"):
        item.provisioning_state = "Succeeded" if op.succeeded else "Failed"
