"""The Microsoft.Insights activity log: every write armsim runs, as Azure records it.

Each write request adds a ``Started`` event, then ``Succeeded``/``Failed`` (synchronous outcome) or
``Accepted``; an operation that finishes later adds its own ``Succeeded``/``Failed`` event with the
same correlation id. Failed events carry ``properties.statusCode`` and ``properties.statusMessage``
(the JSON error), the evidence a diagnosis quotes: "start at T failed with OperationNotAllowed".
"""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from armsim.http import ArmRequest, ArmResponse
from armsim.routing import Route

if TYPE_CHECKING:
    from armsim.lro import Operation
    from armsim.state import World

FRIENDLY = {
    "Microsoft.Compute/virtualMachines/write": "Create or Update Virtual Machine",
    "Microsoft.Compute/virtualMachines/delete": "Delete Virtual Machine",
    "Microsoft.Compute/virtualMachines/start/action": "Start Virtual Machine",
    "Microsoft.Compute/virtualMachines/powerOff/action": "Power Off Virtual Machine",
    "Microsoft.Compute/virtualMachines/deallocate/action": "Deallocate Virtual Machine",
    "Microsoft.Compute/virtualMachines/restart/action": "Restart Virtual Machine",
    "Microsoft.Compute/virtualMachines/redeploy/action": "Redeploy Virtual Machine",
    "Microsoft.Compute/virtualMachines/generalize/action": "Generalize Virtual Machine",
    "Microsoft.Compute/images/write": "Create or Update Image",
    "Microsoft.Compute/snapshots/write": "Create or Update Snapshot",
    "Microsoft.Compute/disks/write": "Create or Update Disk",
    "Microsoft.Compute/disks/delete": "Delete Disk",
    "Microsoft.MarketplaceOrdering/offertypes/publishers/offers/plans/agreements/write":
        "Save Agreement for virtual machine",
}


def _resource_id(path: str, action: str) -> str:
    path = path.rstrip("/")
    return path.rsplit("/", 1)[0] if action.endswith("/action") else path


def _event(world: World, *, subscription: str, resource_id: str, action: str, status: str, sub_status: str,
           correlation_id: str, caller: str, properties: dict[str, Any] | None = None,
           level: str = "Informational") -> dict[str, Any]:
    from armsim.responses import iso

    parts = resource_id.split("/")
    provider = parts[6] if len(parts) > 6 else "Microsoft.Resources"
    rtype = "/".join([provider, *parts[7::2]]) if len(parts) > 7 else "Microsoft.Resources/resourceGroups"
    event_id = str(uuid.uuid4())
    now = world.clock()
    stamp = iso(now)
    return {
        "authorization": {"action": action, "scope": resource_id},
        "caller": caller,
        "channels": "Operation",
        "correlationId": correlation_id,
        "eventDataId": event_id,
        "eventName": {"value": "BeginRequest" if status == "Started" else "EndRequest",
                      "localizedValue": "Begin request" if status == "Started" else "End request"},
        "category": {"value": "Administrative", "localizedValue": "Administrative"},
        "eventTimestamp": stamp,
        "id": f"{resource_id}/events/{event_id}/ticks/{int(now * 10**7)}",
        "level": level,
        "operationId": correlation_id,
        "operationName": {"value": action, "localizedValue": FRIENDLY.get(action, action)},
        "resourceGroupName": parts[4] if len(parts) > 4 else None,
        "resourceProviderName": {"value": provider, "localizedValue": provider},
        "resourceType": {"value": rtype, "localizedValue": rtype},
        "resourceId": resource_id,
        "status": {"value": status, "localizedValue": status},
        "subStatus": {"value": sub_status, "localizedValue": sub_status},
        "submissionTimestamp": stamp,
        "subscriptionId": subscription,
        "properties": properties or {},
        "_ts": now,
    }


_SECRET_KEYS = {"adminpassword", "customdata", "protectedsettings", "userdata"}


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items() if str(k).lower() not in _SECRET_KEYS}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _request_body(req: ArmRequest) -> dict[str, Any]:
    """A PUT or PATCH's body as the Started event's ``properties.requestbody`` (a JSON string, as the portal shows
    it), secrets left out: what a diagnosis reads to learn the size a refused resize asked for."""
    if req.method not in ("PUT", "PATCH") or not req.body:
        return {}
    try:
        body = json.loads(req.body)
    except ValueError:
        return {}
    return {"requestbody": json.dumps(_redacted(body), separators=(",", ":"))}


def record_request(world: World, req: ArmRequest, route: Route, response: ArmResponse | None) -> None:
    """Log a write: its Started event and its synchronous outcome (or Accepted for an LRO)."""
    parts = req.path.split("/")
    if len(parts) < 3 or parts[1].lower() != "subscriptions" or parts[2].lower() not in world.subscriptions:
        return
    sub = world.sub(parts[2])
    ctx = req.activity or {"correlationId": str(uuid.uuid4()), "caller": req.principal}
    common = {"subscription": sub.id, "resource_id": _resource_id(req.path, route.action), "action": route.action,
              "correlation_id": ctx["correlationId"], "caller": ctx["caller"]}
    sub.activity.append(_event(world, status="Started", sub_status="", properties=_request_body(req), **common))
    if response is None:
        return
    reason = HTTPStatus(response.status).phrase.replace(" ", "") if response.status in HTTPStatus._value2member_map_ \
        else str(response.status)
    if response.status >= 400:
        error = response.body.get("error") if isinstance(response.body, dict) else None
        props = {"statusCode": reason, "serviceRequestId": str(uuid.uuid4()),
                 "statusMessage": json.dumps({"error": error} if error else {})}
        sub.activity.append(_event(world, status="Failed", sub_status=reason, properties=props, level="Error",
                                   **common))
    elif "Azure-AsyncOperation" in response.headers or "Location" in response.headers:
        sub.activity.append(_event(world, status="Accepted", sub_status=reason,
                                   properties={"statusCode": reason}, **common))
    else:
        sub.activity.append(_event(world, status="Succeeded", sub_status=reason,
                                   properties={"statusCode": reason}, **common))


def record_operation_end(world: World, op: Operation) -> None:
    """Log the end of an asynchronous operation under the request's correlation id."""
    if op.internal or op.activity is None or op.subscription.lower() not in world.subscriptions:
        return
    sub = world.sub(op.subscription)
    common = {"subscription": sub.id, "resource_id": op.target, "action": op.activity.get("action", op.kind),
              "correlation_id": op.activity["correlationId"], "caller": op.activity["caller"]}
    if op.succeeded:
        sub.activity.append(_event(world, status="Succeeded", sub_status="", **common))
    else:
        props = {"statusCode": "Conflict" if (op.error or {}).get("code") == "OperationPreempted" else "InternalError",
                 "statusMessage": json.dumps({"status": "Failed", "error": op.error})}
        sub.activity.append(_event(world, status="Failed", sub_status="", properties=props, level="Error", **common))
