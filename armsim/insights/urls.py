"""Microsoft.Insights routes: the activity log."""

from __future__ import annotations

from armsim.insights import responses as r
from armsim.routing import Router


def register(router: Router) -> None:
    router.add("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Insights/eventtypes/management/values",
               r.list_events, "Microsoft.Insights/eventtypes/values/read")
