"""Microsoft.Network/loadBalancers, minimal: a SKU, frontend IP configurations kept as given, and backend address
pools whose members are the NIC ip configurations that reference them (``backendIPConfigurations``). The rule a
Basic load balancer enforces on its members is in ``armsim.network.nic_rules``."""

from __future__ import annotations

from typing import Any

from armsim import schema as S
from armsim.errors import InvalidParameter
from armsim.http import ArmRequest, ArmResponse, ok
from armsim.network.lb_models import LoadBalancer
from armsim.network.models import NetworkState, _etag, _loc
from armsim.responses import accepted, begin, page
from armsim.routing import Router
from armsim.state import World

LOAD_BALANCER = S.tracked({"frontendIPConfigurations": [dict], "backendAddressPools": [{"name": str}]},
                          sku={"name": str, "tier": str})


def put_lb(net: NetworkState, rg: str, name: str, body: dict[str, Any]) -> tuple[LoadBalancer, bool]:
    rid = net.rid(rg, "loadBalancers", name)
    existing = net.lbs.get(rid.lower())
    location = _loc(body.get("location") or (existing.location if existing else ""))
    if not location:
        raise InvalidParameter("Required parameter 'location' is missing (null).", target="location")
    props = body.get("properties") or {}
    pools = [str(p.get("name")) for p in props.get("backendAddressPools") or [] if isinstance(p, dict)]
    if any(not p or p == "None" for p in pools):
        raise InvalidParameter("Each backend address pool needs a name.", target="backendAddressPools")
    sku = str((body.get("sku") or {}).get("name") or (existing.sku if existing else "Basic"))
    lb = existing or LoadBalancer(rid, name, net.sub.rg(rg).name, location, sku=sku)
    lb.backend_pools, lb.sku = pools, sku
    lb.frontends = [dict(f) for f in props.get("frontendIPConfigurations") or [] if isinstance(f, dict)]
    lb.tags, lb.etag = dict(body.get("tags") or {}), _etag()
    net.lbs[rid.lower()] = lb
    return lb, existing is None


def create_or_update(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                     name: str) -> ArmResponse:
    net = world.sub(subscriptionId).network
    lb, created = put_lb(net, resourceGroupName, name, req.json())
    lb.provisioning_state = "Updating"
    op = begin(world, req, subscription=net.sub.id, kind="network.create", target=lb.id, namespace="network",
               location=lb.location, args={"table": "lbs"})
    return accepted(world, req, op, status=201 if created else 200, body=lb.to_dict(net), location=False)


def get(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
    net = world.sub(subscriptionId).network
    net.sub.rg(resourceGroupName)
    lb: LoadBalancer = net.get("lbs", resourceGroupName, "loadBalancers", name)
    return ok(lb.to_dict(net))


def list_(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str | None = None) -> ArmResponse:
    net = world.sub(subscriptionId).network
    items = sorted(net.items_in("lbs", resourceGroupName), key=lambda i: i.id.lower())
    return page(req, items, lambda i: i.to_dict(net), world.config.page_size)


def delete(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
    net = world.sub(subscriptionId).network
    net.sub.rg(resourceGroupName)
    lb = net.lbs.pop(net.rid(resourceGroupName, "loadBalancers", name).lower(), None)
    if lb is None:
        return ArmResponse(204)
    op = begin(world, req, subscription=net.sub.id, kind="network.delete", target=lb.id, namespace="network",
               location=lb.location)
    return accepted(world, req, op)


def register(router: Router) -> None:
    sub, ns, action = "/subscriptions/{subscriptionId}", "/providers/Microsoft.Network", "Microsoft.Network/"
    one = sub + "/resourceGroups/{resourceGroupName}" + ns + "/loadBalancers/{name}"
    router.add("PUT", one, create_or_update, action + "loadBalancers/write", schema=LOAD_BALANCER)
    router.add("GET", one, get, action + "loadBalancers/read")
    router.add("DELETE", one, delete, action + "loadBalancers/delete")
    router.add("GET", sub + "/resourceGroups/{resourceGroupName}" + ns + "/loadBalancers", list_,
               action + "loadBalancers/read")
    router.add("GET", sub + ns + "/loadBalancers", list_, action + "loadBalancers/read")
