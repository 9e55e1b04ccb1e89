"""Microsoft.Network routes and their RBAC actions."""

from __future__ import annotations

from armsim import schema as S
from armsim.network import load_balancers
from armsim.network import responses as r
from armsim.routing import Router

SUB = "/subscriptions/{subscriptionId}"
RG = SUB + "/resourceGroups/{resourceGroupName}"
NS = "/providers/Microsoft.Network"
A = "Microsoft.Network/"


def register(router: Router) -> None:
    add = router.add
    for rtype, put, get, lst, delete, shape in (
        ("virtualNetworks", r.create_or_update_vnet, r.get_vnet, r.list_vnets, r.delete_vnet, S.VIRTUAL_NETWORK),
        ("networkInterfaces", r.create_or_update_nic, r.get_nic, r.list_nics, r.delete_nic, S.NETWORK_INTERFACE),
        ("publicIPAddresses", r.create_or_update_pip, r.get_pip, r.list_pips, r.delete_pip, S.PUBLIC_IP),
    ):
        one = f"{RG}{NS}/{rtype}/{{name}}"
        add("PUT", one, put, f"{A}{rtype}/write", schema=shape)
        add("GET", one, get, f"{A}{rtype}/read")
        add("DELETE", one, delete, f"{A}{rtype}/delete")
        add("GET", f"{RG}{NS}/{rtype}", lst, f"{A}{rtype}/read")
        add("GET", f"{SUB}{NS}/{rtype}", lst, f"{A}{rtype}/read")
    subnet = RG + NS + "/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}"
    add("PUT", subnet, r.create_or_update_subnet, A + "virtualNetworks/subnets/write", schema=S.SUBNET)
    add("GET", subnet, r.get_subnet, A + "virtualNetworks/subnets/read")
    add("GET", SUB + NS + "/locations/{location}/operations/{operationId}", r.get_operation,
        A + "locations/operations/read", lro_poll=True)
    load_balancers.register(router)
