"""ARM's token buckets per subscription: reads 250 refilling 25/s, writes and deletes 200 refilling
10/s (learn.microsoft.com request-limits-and-throttling). Refill is sped up by 1/latency_scale so a
scaled run meets the same limits in proportion. An empty bucket answers 429 with a retry hint."""

from __future__ import annotations

import math
from dataclasses import dataclass

from armsim.errors import TooManyRequests
from armsim.http import ArmRequest, ArmResponse
from armsim.responses import retry_hint
from armsim.routing import Route
from armsim.state import World


@dataclass
class Bucket:
    capacity: float
    rate: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now


def _bucket(world: World, subscription: str, kind: str) -> Bucket:
    key = (subscription.lower(), kind)
    capacity, rate = world.config.buckets[kind]
    rate = rate / max(world.config.latency_scale, 1e-6)
    bucket = world.buckets.get(key)
    if not isinstance(bucket, Bucket) or bucket.capacity != capacity or bucket.rate != rate:
        bucket = world.buckets[key] = Bucket(capacity, rate, capacity, world.clock())
    return bucket


def _subscription_of(req: ArmRequest) -> str:
    parts = req.path.split("/")
    return parts[2] if len(parts) > 2 and parts[1].lower() == "subscriptions" else "-"


def check(world: World, req: ArmRequest, route: Route) -> None:
    """Take one token for this request, or refuse it with 429 and the time until one is back."""
    if not world.config.throttling:
        return
    bucket = _bucket(world, _subscription_of(req), route.kind)
    bucket.refill(world.clock())
    if bucket.tokens < 1:
        wait = (1 - bucket.tokens) / bucket.rate
        hint = retry_hint(world, wait) or {"Retry-After": str(max(1, math.ceil(wait)))}
        raise TooManyRequests(
            "The request was throttled because the subscription exceeded its limit of "
            f"{route.kind} requests. Please retry after the time given in the response headers.",
            headers=hint,
        )
    bucket.tokens -= 1


def decorate(world: World, req: ArmRequest, route: Route, response: ArmResponse) -> None:
    """Add ``x-ms-ratelimit-remaining-subscription-{reads|writes|deletes}`` as ARM does."""
    if not world.config.throttling:
        return
    bucket = _bucket(world, _subscription_of(req), route.kind)
    response.headers[f"x-ms-ratelimit-remaining-subscription-{route.kind}s"] = str(int(bucket.tokens))

