"""Handlers for resource SKUs, VM sizes, usages, availability sets and proximity placement groups."""

from __future__ import annotations

from typing import Any

from armsim.compute import capacity
from armsim.compute.models import ComputeState, norm_id, norm_location
from armsim.errors import InvalidFilter, ResourceNotFound
from armsim.http import ArmRequest, ArmResponse, ok
from armsim.responses import page
from armsim.state import World


def _state(world: World, subscription: str) -> ComputeState:
    return world.sub(subscription).compute


def list_skus(world: World, req: ArmRequest, subscriptionId: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    flt = (req.arg("$filter") or "").strip()
    location = None
    if flt:
        parts = flt.split()
        if len(parts) != 3 or parts[0].lower() != "location" or parts[1].lower() != "eq":
            raise InvalidFilter(f"The filter '{flt}' is not valid. Only \"location eq '<location>'\" is supported.")
        location = norm_location(parts[2].strip("'\""))
    return ok({"value": capacity.sku_entries(state, location)})


def list_location_sizes(world: World, req: ArmRequest, subscriptionId: str, location: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    return ok({"value": [s.vm_size() for s in capacity.region_sizes(state, norm_location(location))]})


def list_usages(world: World, req: ArmRequest, subscriptionId: str, location: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    return page(req, capacity.usages(state, norm_location(location)), lambda u: u, world.config.page_size)


def vm_sizes(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, vmName: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    vm = state.vm(resourceGroupName, vmName)
    return ok({"value": [s.vm_size() for s in capacity.available_sizes(state, vm=vm)]})


# --- availability sets and proximity placement groups -------------------------------------------------------


def _group(table: str, rtype: str) -> tuple[Any, Any, Any, Any, Any]:
    def find(state: ComputeState, rg: str, name: str) -> Any:
        item = getattr(state, table).get(state.rid(rg, rtype, name).lower())
        if item is None:
            raise ResourceNotFound(f"Microsoft.Compute/{rtype}", name, rg)
        return item

    def render(state: ComputeState, item: Any) -> dict[str, Any]:
        if table == "availability_sets":
            return item.to_dict([v.id for v in capacity.members(state, "availabilitySet", item.id)])
        sets = [a.id for a in state.availability_sets.values() if (a.proximity_group or "").lower() == item.id.lower()]
        return item.to_dict([v.id for v in capacity.members(state, "proximityPlacementGroup", item.id)], sets)

    def put(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
        state = _state(world, subscriptionId)
        body = req.json()
        rid = state.rid(resourceGroupName, rtype, name)
        existing = getattr(state, table).get(rid.lower())
        props: dict[str, Any] = body["properties"] if isinstance(body.get("properties"), dict) else {}
        location = norm_location(str(body.get("location") or (existing.location if existing else "")))
        if not location:
            from armsim.compute import exceptions as cx

            raise cx.missing_param("location")
        common: dict[str, Any] = {"id": rid, "name": name, "resource_group": state.sub.rg(resourceGroupName).name,
                  "location": location, "tags": dict(body.get("tags") or {})}
        if table == "availability_sets":
            sku = (body.get("sku") or {}).get("name") if isinstance(body.get("sku"), dict) else None
            ppg = capacity._ref(props.get("proximityPlacementGroup"))
            item: Any = capacity.AvailabilitySet(
                **common, fault_domains=int(props.get("platformFaultDomainCount") or 2),
                update_domains=int(props.get("platformUpdateDomainCount") or 5), sku=str(sku or "Aligned"),
                proximity_group=norm_id(ppg) if ppg else None)
        else:
            item = capacity.ProximityPlacementGroup(**common, group_type=str(
                props.get("proximityPlacementGroupType") or "Standard"))
        getattr(state, table)[rid.lower()] = item
        world.dirty = True
        # Availability sets and proximity placement groups answer 200 on create too (their REST spec has no 201)
        return ok(render(state, item))

    def get(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
        state = _state(world, subscriptionId)
        return ok(render(state, find(state, resourceGroupName, name)))

    def delete(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str, name: str) -> ArmResponse:
        state = _state(world, subscriptionId)
        state.sub.rg(resourceGroupName)
        item = getattr(state, table).pop(state.rid(resourceGroupName, rtype, name).lower(), None)
        world.dirty = True
        return ArmResponse(200 if item is not None else 204)

    def list_(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str | None = None) -> ArmResponse:
        state = _state(world, subscriptionId)
        items = sorted(state.items_in(getattr(state, table), resourceGroupName), key=lambda i: i.id.lower())
        return page(req, items, lambda i: render(state, i), world.config.page_size)

    return put, get, delete, list_, find


(put_availability_set, get_availability_set, delete_availability_set, list_availability_sets,
 _find_set) = _group("availability_sets", "availabilitySets")
(put_proximity_group, get_proximity_group, delete_proximity_group, list_proximity_groups,
 _) = _group("proximity_groups", "proximityPlacementGroups")


def availability_set_sizes(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                           name: str) -> ArmResponse:
    state = _state(world, subscriptionId)
    avset = _find_set(state, resourceGroupName, name)
    sizes = capacity.available_sizes(state, avset=avset.id, location=avset.location)
    return ok({"value": [s.vm_size() for s in sizes]})
