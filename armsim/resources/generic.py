"""Generic resource lists (``resources.list`` / ``resources.list_by_resource_group`` of azure-mgmt-resource):
every resource of the subscription (or group) as ``GenericResourceExpanded``: id, name, type, location, tags, and
sku and kind where the type has them. ``$filter`` supports ``resourceType eq '…'`` and ``name eq '…'``, joined
by ``and``; anything else is refused with 400 InvalidFilter (Azure supports more; armsim only what is used)."""

from __future__ import annotations

import re
from typing import Any

from armsim.errors import InvalidFilter
from armsim.http import ArmRequest, ArmResponse
from armsim.responses import page
from armsim.routing import Router
from armsim.state import Subscription, World

_CLAUSE = re.compile(r"^\s*(resourceType|name)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


def _filters(raw: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if not raw:
        return out
    for clause in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(clause)
        if m is None:
            raise InvalidFilter(f"Invalid $filter '{raw}' specified in the query string.")
        out[m.group(1).lower()] = m.group(2).lower()
    return out


def _generic(rtype: str, item: Any, *, sku: Any = None, kind: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": item.id, "name": item.name, "type": rtype, "location": item.location}
    if getattr(item, "tags", None):
        out["tags"] = item.tags
    if sku is not None:
        out["sku"] = sku
    if kind is not None:
        out["kind"] = kind
    return out


def _all(sub: Subscription, rg: str | None) -> list[dict[str, Any]]:
    c, n = sub.compute, sub.network
    out = [_generic("Microsoft.Compute/virtualMachines", v) for v in c.vms_in(rg)]
    for table, rtype in ((c.disks, "Microsoft.Compute/disks"), (c.snapshots, "Microsoft.Compute/snapshots"),
                         (c.images, "Microsoft.Compute/images")):
        out += [_generic(rtype, d) for d in c.items_in(table, rg)]
    for ntable, rtype in (("vnets", "Microsoft.Network/virtualNetworks"),
                          ("nics", "Microsoft.Network/networkInterfaces"),
                          ("pips", "Microsoft.Network/publicIPAddresses")):
        out += [_generic(rtype, x) for x in n.items_in(ntable, rg)]
    out += [_generic("Microsoft.Storage/storageAccounts", a, sku={"name": a.sku, "tier": a.tier}, kind=a.kind)
            for a in sub.storage.items_in(rg)]
    return sorted(out, key=lambda r: str(r["id"]).lower())


def list_resources(world: World, req: ArmRequest, subscriptionId: str,
                   resourceGroupName: str | None = None) -> ArmResponse:
    sub = world.sub(subscriptionId)
    if resourceGroupName is not None:
        sub.rg(resourceGroupName)
    wanted = _filters(req.arg("$filter"))
    items = [r for r in _all(sub, resourceGroupName)
             if all(str(r[{"resourcetype": "type", "name": "name"}[k]]).lower() == v for k, v in wanted.items())]
    return page(req, items, lambda r: r, world.config.page_size)


def register(router: Router) -> None:
    sub = "/subscriptions/{subscriptionId}"
    router.add("GET", sub + "/resources", list_resources, "Microsoft.Resources/subscriptions/resources/read")
    router.add("GET", sub + "/resourceGroups/{resourceGroupName}/resources", list_resources,
               "Microsoft.Resources/subscriptions/resourceGroups/resources/read")
