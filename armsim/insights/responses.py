"""Activity log query: ``GET /subscriptions/{s}/providers/Microsoft.Insights/eventtypes/management/values``
with ARM's ``$filter`` (``eventTimestamp ge '…' and eventTimestamp le '…' [and resourceGroupName eq '…'
| resourceUri eq '…' | correlationId eq '…' | resourceProvider eq '…' | caller eq '…' | status eq '…']``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from armsim.errors import BadRequest
from armsim.http import ArmRequest, ArmResponse
from armsim.responses import page
from armsim.state import World

_CLAUSE = re.compile(r"^\s*(\w+)\s+(eq|ge|le)\s+'([^']*)'\s*$", re.IGNORECASE)
_FIELDS = {
    "resourcegroupname": lambda e: e.get("resourceGroupName") or "",
    "resourceuri": lambda e: e.get("resourceId") or "",
    "resourceid": lambda e: e.get("resourceId") or "",
    "correlationid": lambda e: e.get("correlationId") or "",
    "resourceprovider": lambda e: e["resourceProviderName"]["value"],
    "caller": lambda e: e.get("caller") or "",
    "status": lambda e: e["status"]["value"],
}


def invalid_filter(detail: str) -> BadRequest:
    return BadRequest(f"The $filter query parameter value is invalid: {detail}", code="BadRequest")


def _time(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise invalid_filter(f"'{value}' is not a valid date/time.") from None


def list_events(world: World, req: ArmRequest, subscriptionId: str) -> ArmResponse:
    sub = world.sub(subscriptionId)
    raw = req.arg("$filter")
    if not raw:
        raise invalid_filter("it must contain 'eventTimestamp ge'.")
    since: float | None = None
    until = float("inf")
    equals: list[tuple[Any, str]] = []
    for clause in re.split(r"\s+and\s+", raw, flags=re.IGNORECASE):
        m = _CLAUSE.match(clause)
        if not m:
            raise invalid_filter(f"cannot parse '{clause.strip()}'.")
        name, op, value = m.group(1).lower(), m.group(2).lower(), m.group(3)
        if name == "eventtimestamp" and op == "ge":
            since = _time(value)
        elif name == "eventtimestamp" and op == "le":
            until = _time(value)
        elif name in _FIELDS and op == "eq":
            equals.append((_FIELDS[name], value.lower()))
        else:
            raise invalid_filter(f"'{m.group(1)} {op}' is not supported.")
    if since is None:
        raise invalid_filter("it must contain 'eventTimestamp ge'.")
    events = [e for e in reversed(sub.activity)
              if since <= e["_ts"] <= until + 1e-6 and all(get(e).lower() == v for get, v in equals)]
    return page(req, events, lambda e: {k: v for k, v in e.items() if k != "_ts"}, world.config.page_size)
