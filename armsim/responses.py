"""Response shapes shared by every provider: LRO acceptance headers, paging, operation status."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from armsim.errors import InvalidParameter
from armsim.http import ArmRequest, ArmResponse
from armsim.lro import Operation
from armsim.state import World

STATUS_PATHS = {
    "compute": "providers/Microsoft.Compute/locations/{loc}/operations/{id}",
    "disk": "providers/Microsoft.Compute/locations/{loc}/DiskOperations/{id}",
    "network": "providers/Microsoft.Network/locations/{loc}/operations/{id}",
    "resources": "operationresults/{id}",
    "storage": "providers/Microsoft.Storage/locations/{loc}/asyncoperations/{id}",
}


def begin(world: World, req: ArmRequest, **kwargs: Any) -> Operation:
    """Start an operation for this request; a matching ``async-failed`` fault makes it fail at the end."""
    op = world.operations.start(world, **kwargs)
    op.activity = req.activity
    if req.fault_async_error is not None:
        op.fail_with = req.fault_async_error
    world.dirty = True
    return op


# What ARM's providers answer an operation poll with, whatever the time left (seconds at Azure's pace): Compute's
# VM operations 10, its disk operations 2, Network's 3 (the measurements of real ARM; Storage's and the
# resource manager's are armsim's guess).
AZURE_POLL_HINTS_S = {"compute": 10.0, "disk": 2.0, "network": 3.0, "storage": 3.0, "resources": 5.0}


def retry_hint(world: World, seconds: float, namespace: str | None = None) -> dict[str, str]:
    """How long the client should wait before polling again, in the configured header style: ``ms`` and
    ``seconds`` give the exact time left (a flattering oracle no real ARM is), ``azure`` the provider's fixed hint
    scaled by the latency scale (as ARM sends, when ``namespace`` names the provider), ``none`` nothing."""
    style = world.config.retry_after
    if style == "none":
        return {}
    if style == "azure" and namespace in AZURE_POLL_HINTS_S:
        return {"retry-after-ms": str(max(1, math.ceil(AZURE_POLL_HINTS_S[namespace] * world.config.latency_scale
                                                       * 1000)))}
    if style == "seconds":
        return {"Retry-After": str(max(1, math.ceil(seconds)))}
    return {"retry-after-ms": str(max(1, math.ceil(seconds * 1000)))}


def status_url(req: ArmRequest, op: Operation, *, monitor: bool = False) -> str:
    path = STATUS_PATHS[op.namespace].format(loc=op.location, id=op.id)
    query = {"p": str(uuid.uuid5(uuid.NAMESPACE_URL, op.id)), "api-version": req.api_version or ""}
    if monitor:
        query["monitor"] = "true"
    return f"{req.base_url}/subscriptions/{op.subscription}/{path}?{urlencode(query)}"


def accepted(world: World, req: ArmRequest, op: Operation, *, status: int = 202, body: Any = None,
             location: bool = True) -> ArmResponse:
    """The initial response of an LRO: Azure-AsyncOperation (+ Location), and a retry hint."""
    headers = {"Azure-AsyncOperation": status_url(req, op)}
    if location:
        headers["Location"] = status_url(req, op, monitor=True)
    headers.update(retry_hint(world, op.end - op.start, op.namespace))
    return ArmResponse(status, body, headers)


def operation_status_body(world: World, op: Operation) -> dict[str, Any]:
    body: dict[str, Any] = {"status": op.status}
    if op.namespace in ("compute", "disk"):
        body.update(name=op.id, startTime=_iso(op.start))
        if op.done:
            body["endTime"] = _iso(op.end)
    if op.error is not None:
        body["error"] = op.error
    if op.succeeded and op.output is not None:
        body["properties"] = {"output": op.output}
    return body


def operation_status(world: World, req: ArmRequest, op: Operation) -> ArmResponse:
    """GET on the Azure-AsyncOperation URL (or, with ``monitor=true``, on the Location URL)."""
    remaining = max(0.0, op.end - world.clock())
    if req.flag("monitor") or op.namespace == "resources":
        if not op.done:
            return ArmResponse(202, None, {"Location": f"{req.base_url}{quote(req.path)}?{urlencode(req.query)}",
                                           **retry_hint(world, remaining, op.namespace)})
        if op.error is not None:
            return ArmResponse(200, {"status": op.status, "error": op.error})
        return ArmResponse(200, op.output if op.kind == "vm.capture" else None)
    headers = retry_hint(world, remaining, op.namespace) if not op.done else {}
    return ArmResponse(200, operation_status_body(world, op), headers)


def page(req: ArmRequest, items: Sequence[Any], render: Callable[[Any], dict[str, Any]],
         page_size: int) -> ArmResponse:
    """One page of a list, with an absolute ``nextLink`` on armsim's own host when more remain."""
    raw = req.arg("$skiptoken") or "0"
    if not raw.isdigit():
        raise InvalidParameter(f"The value '{raw}' of $skiptoken is not valid.", target="$skiptoken")
    start = int(raw)
    chunk = items[start : start + page_size]
    body: dict[str, Any] = {"value": [render(x) for x in chunk]}
    if start + page_size < len(items):
        query = {k: v for k, v in req.query.items() if k.lower() != "$skiptoken"}
        query["$skiptoken"] = str(start + page_size)
        body["nextLink"] = f"{req.base_url}{quote(req.path)}?{urlencode(query)}"
    return ArmResponse(200, body)


def _iso(t: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat().replace("+00:00", "Z")


iso = _iso
