"""Resource Health of VMs, as ``Microsoft.ResourceHealth/availabilityStatuses`` shows it.

The *current* status is derived from the VM (running → Available; deallocated or stopped at a user's request →
Unavailable, customer initiated; a faulty host → Degraded) unless an availability event is still going on.
*Events* are what the platform records: a reboot, a host failure, a guest OS crash, maintenance. Each carries the
``articleId`` of the self-help RCA article that explains it, as Resource Health's own statuses do (the field the
portal's troubleshoot blade reads); tests and scenarios add them through the control API, since only the
platform can cause them. The history lists the current status first, then each event, newest first (Azure keeps
about 30 days).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from armsim.errors import BadRequest, NotFound
from armsim.state import Collections

if TYPE_CHECKING:
    from armsim.compute.models import VirtualMachine
    from armsim.state import Subscription

HISTORY_DAYS = 30
STATES = ("Available", "Unavailable", "Degraded", "Unknown")
TYPE = "Microsoft.ResourceHealth/AvailabilityStatuses"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class AvailabilityEvent:
    """One availability event of a VM: unavailable (or degraded) from ``occurred`` until ``resolved`` (None: still
    going on)."""

    id: str
    vm_id: str
    occurred: float
    resolved: float | None
    availability_state: str = "Unavailable"
    title: str = ""
    summary: str = ""
    detailed_status: str = ""
    reason_type: str = "Unplanned"  # Unplanned, Planned, Customer Initiated
    context: str = "Platform Initiated"  # Platform Initiated, Customer Initiated
    category: str = "Unplanned"
    article_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def properties(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "availabilityState": self.availability_state, "title": self.title or self.availability_state,
            "summary": self.summary, "reasonType": self.reason_type, "context": self.context,
            "category": self.category, "reasonChronicity": "Transient", "detailedStatus": self.detailed_status,
            "occuredTime": _iso(self.occurred), "reportedTime": _iso(self.resolved or self.occurred),
            "rootCauseAttributionTime": _iso(self.occurred + 60),
        }
        if self.article_id:
            out["articleId"] = self.article_id
        if self.resolved is not None:
            out["resolutionETA"] = _iso(self.resolved)
        return out


class HealthState(Collections):
    MODELS = {"events": AvailabilityEvent}

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.events: dict[str, AvailabilityEvent] = {}

    def of(self, vm_id: str) -> list[AvailabilityEvent]:
        """The VM's events of the last ``HISTORY_DAYS``, newest first."""
        since = time.time() - HISTORY_DAYS * 86400
        return sorted((e for e in self.events.values() if e.vm_id == vm_id.lower() and e.occurred >= since),
                      key=lambda e: e.occurred, reverse=True)

    def add(self, body: dict[str, Any]) -> AvailabilityEvent:
        """An event from the control API: ``{"vm", "articleId", "minutes_ago"?, "duration_minutes"? (null: still
        going on), "availabilityState"?, "title"?, "summary"?, "detailedStatus"?, "reasonType"?, "context"?,
        "category"?}``."""
        vm_id = str(body.get("vm") or "")
        if self.sub.compute.vms.get(vm_id.lower()) is None:
            raise NotFound(f"No VM '{vm_id}'.")
        state = body.get("availabilityState", "Unavailable")
        if state not in STATES[1:]:
            raise BadRequest(f"'availabilityState' must be one of {', '.join(STATES[1:])}.")
        ago, duration = body.get("minutes_ago", 60), body.get("duration_minutes", 10)
        if not isinstance(ago, (int, float)) or ago < 0 or (duration is not None and (
                not isinstance(duration, (int, float)) or duration < 0)):
            raise BadRequest("'minutes_ago' and 'duration_minutes' must be non-negative numbers (duration null: "
                             "the event is still going on).")
        occurred = time.time() - ago * 60
        resolved = None if duration is None else min(time.time(), occurred + duration * 60)
        event = AvailabilityEvent(
            id=f"{vm_id.lower()}@{occurred:.3f}", vm_id=vm_id.lower(), occurred=occurred, resolved=resolved,
            availability_state=state, title=str(body.get("title") or ""), summary=str(body.get("summary") or ""),
            detailed_status=str(body.get("detailedStatus") or ""), reason_type=str(body.get("reasonType") or
                                                                                   "Unplanned"),
            context=str(body.get("context") or "Platform Initiated"), category=str(body.get("category") or
                                                                                  "Unplanned"),
            article_id=str(body.get("articleId") or ""))
        self.events[event.id] = event
        return event

    def current(self, vm: VirtualMachine) -> dict[str, Any]:
        """The VM's status now: an event still going on, else what its state says."""
        ongoing = next((e for e in self.of(vm.id) if e.resolved is None), None)
        if ongoing is not None:
            return ongoing.properties()
        now = _iso(time.time())
        fault = self.sub.compute.host_fault(vm.host) if vm.host else None
        if vm.power_state == "deallocated" or vm.power_state == "stopped":
            # wording is armsim's (Azure's says the VM was stopped or deallocated at a user's request)
            what = "stopped and deallocated" if vm.power_state == "deallocated" else "stopped"
            return {"availabilityState": "Unavailable", "title": "Unavailable",
                    "summary": f"This virtual machine is {what} as requested by an authorized user or process",
                    "reasonType": "Customer Initiated", "context": "Customer Initiated", "category": "Not Applicable",
                    "reasonChronicity": "Persistent", "occuredTime": now, "reportedTime": now}
        if fault is not None:
            return {"availabilityState": "Degraded", "title": "Degraded",
                    "summary": "The host of this virtual machine is impaired; the VM agent does not report",
                    "reasonType": "Unplanned", "context": "Platform Initiated", "category": "Unplanned",
                    "reasonChronicity": "Persistent", "occuredTime": now, "reportedTime": now}
        return {"availabilityState": "Available", "title": "Available",
                "summary": "This virtual machine is running normally", "reasonChronicity": "Persistent",
                "detailedStatus": "There aren't any known Azure platform problems affecting this virtual machine",
                "occuredTime": now, "reportedTime": now}

    def statuses(self, vm: VirtualMachine) -> list[dict[str, Any]]:
        """``current`` first, then each past (resolved) event, newest first."""
        base = f"{vm.id}/providers/Microsoft.ResourceHealth/availabilityStatuses"
        out = [{"id": f"{base}/current", "name": "current", "type": TYPE, "location": vm.location,
                "properties": self.current(vm)}]
        for e in self.of(vm.id):
            if e.resolved is None:
                continue
            name = _iso(e.occurred).replace(":", "%3a").replace("T", "+")
            out.append({"id": f"{base}/{name}", "name": name, "type": TYPE, "location": vm.location,
                        "properties": e.properties()})
        return out
