"""Pacing within ARM's request limits: an azure-core pipeline policy that keeps a client out of 429s.

ARM answers every request with ``x-ms-ratelimit-remaining-subscription-{reads|writes|deletes}``: the tokens
left in the subscription's bucket for that kind of request. ``ThrottlePacer`` keeps an estimate of each
bucket (the last value ARM reported, minus what this client spent since, plus the refill) and, once the
estimate would fall below a reserve, delays the next request until the bucket has refilled enough.

The refill rate is ARM's documented one (reads 25/s, writes and deletes 10/s) until it is measured from
successive headers — faster when the bucket refills faster, slower when another client shares it. A 429
that still happens is retried by azure-core's RetryPolicy, which honours Retry-After / retry-after-ms. With
such a hint ARM has said when to come back: other requests of that bucket wait until then too, no longer,
and the estimate is forgotten until the next answer reports the bucket again (one 429 costs what its hint
says, no more). A 429 without a
hint empties the estimate and halves the refill rate (back off, since nothing better is known). One pacer
serves every client and thread of a connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

DOCUMENTED_REFILL = {"reads": 25.0, "writes": 10.0, "deletes": 10.0}  # tokens per second
HEADER = "x-ms-ratelimit-remaining-subscription-{}"
MEASURE_WINDOW_S = 0.2  # shortest span over which a refill rate is measured (the header is an integer)
SAY_WAITS_FROM_S = 1.0  # a pacing delay this long is said (``report``): no wait is silent


def request_kind(method: str) -> str:
    """Which of ARM's buckets a request draws from."""
    method = method.upper()
    return "reads" if method in ("GET", "HEAD") else "deletes" if method == "DELETE" else "writes"


@dataclass
class BucketEstimate:
    """What this client believes about one of ARM's token buckets."""

    refill: float
    tokens: float | None = None  # None until ARM has reported the bucket once
    stamp: float = 0.0  # when ``tokens`` was true (may lie ahead: requests booked for later)
    capacity: float = 0.0  # the largest value seen + 1 (a report is made after the request's own token)
    in_flight: int = 0
    anchor: tuple[float, int] | None = None  # (time, remaining) the refill is measured from
    answered_since_anchor: int = 0
    hold_until: float = 0.0  # after a 429 with a hint: no request before then (ARM's word), then no estimate

    def book(self, now: float, reserve: float) -> float:
        """Take a token for a request; returns how long to wait before sending it so ``reserve`` is kept."""
        self.in_flight += 1
        if self.tokens is None:
            return max(0.0, self.hold_until - now)
        at = max(now, self.stamp)
        tokens = min(self.capacity, self.tokens + self.refill * (at - self.stamp))
        if tokens - 1 < reserve:
            at += (reserve + 1 - tokens) / self.refill
            tokens = reserve + 1
        self.tokens, self.stamp = tokens - 1, at
        return at - now

    def observe(self, remaining: int, now: float) -> None:
        """ARM reported ``remaining`` tokens after one of our requests."""
        self.in_flight = max(0, self.in_flight - 1)
        self.capacity = max(self.capacity, remaining + 1.0)
        self.answered_since_anchor += 1
        if self.anchor is not None and remaining < self.capacity - 1:
            since, before = self.anchor
            if now - since >= MEASURE_WINDOW_S:
                measured = (remaining - before + self.answered_since_anchor) / (now - since)
                self.refill = max(0.5 * self.refill + 0.5 * measured, 0.1)
                self.anchor, self.answered_since_anchor = (now, remaining), 0
        elif remaining < self.capacity - 1:
            self.anchor, self.answered_since_anchor = (now, remaining), 0
        else:
            self.anchor = None  # a full bucket says nothing about its refill rate
        # Every other request booked and not yet answered (waiting for its slot or on the wire) may or may
        # not be counted in ``remaining`` yet: assume not (the safe side).
        self.tokens, self.stamp = remaining - self.in_flight, now

    def throttled(self, now: float, hint_s: float | None = None) -> None:
        """ARM refused a request with 429. With a retry hint (the retry waits it out): nothing is known of the
        bucket until ARM reports it again. Without one: the bucket is empty and refills slower than thought."""
        self.in_flight = max(0, self.in_flight - 1)
        self.anchor = None
        if hint_s is not None:  # every request of this bucket waits out the hint; the retried one already has
            self.tokens, self.hold_until = None, max(self.hold_until, now + hint_s)
            return
        self.tokens, self.stamp = -float(self.in_flight), now
        self.refill = max(self.refill * 0.5, 0.1)


def retry_hint_s(headers: object) -> float | None:
    """The wait a 429 or 503 asks for, in seconds: ``retry-after-ms`` / ``x-ms-retry-after-ms``, or
    ``Retry-After`` in seconds; None when it gives none (or an HTTP date, which ARM does not send)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = get(name)
        if raw is not None:
            try:
                return max(0.0, float(raw) * scale)
            except ValueError:
                continue
    return None


@dataclass
class ThrottlePacer(SansIOHTTPPolicy):
    """Delays requests so each ARM bucket keeps ``max(min_reserve, reserve_fraction * capacity)`` tokens.

    Counts what it did: ``waited_s`` (total delay imposed), ``throttled`` (429 answers seen). ``enabled=False``
    only observes and counts (for comparisons). ``report(line)``, when set, is told of every delay of a second
    or more before it starts.
    """

    enabled: bool = True
    min_reserve: int = 10
    reserve_fraction: float = 0.1
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    buckets: dict[str, BucketEstimate] = field(
        default_factory=lambda: {k: BucketEstimate(rate) for k, rate in DOCUMENTED_REFILL.items()})
    waited_s: float = 0.0
    throttled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    report: Callable[[str], None] | None = None

    def on_request(self, request: PipelineRequest) -> None:
        kind = request_kind(request.http_request.method)
        bucket = self.buckets[kind]
        with self.lock:
            reserve = max(self.min_reserve, self.reserve_fraction * bucket.capacity)
            wait = bucket.book(self.clock(), reserve)
            if not self.enabled:
                wait = 0.0
            self.waited_s += wait
        if wait >= SAY_WAITS_FROM_S and self.report is not None:
            self.report(f"    … waiting {wait:.1f}s: the subscription's ARM {kind} budget is nearly spent (paced)")
        if wait > 0:
            self.sleep(wait)

    def on_response(self, request: PipelineRequest, response: PipelineResponse) -> None:
        kind = request_kind(request.http_request.method)
        bucket = self.buckets[kind]
        http = response.http_response
        raw = http.headers.get(HEADER.format(kind))
        with self.lock:
            if http.status_code == 429:
                self.throttled += 1
                bucket.throttled(self.clock(), retry_hint_s(http.headers))
            elif raw is not None and raw.strip().lstrip("-").isdigit():
                bucket.observe(int(raw), self.clock())
            else:
                bucket.in_flight = max(0, bucket.in_flight - 1)

    def on_exception(self, request: PipelineRequest) -> None:
        with self.lock:
            bucket = self.buckets[request_kind(request.http_request.method)]
            bucket.in_flight = max(0, bucket.in_flight - 1)
