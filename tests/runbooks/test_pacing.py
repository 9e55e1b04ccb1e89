"""The pacer's answer to a 429: a hint is ARM's word on when to come back, so the pacer adds no wait of its own;
without a hint it backs off (empty bucket, slower refill). Pure: a fake clock, no sleeping."""

from __future__ import annotations

import pytest

from runbooks.pacing import BucketEstimate, retry_hint_s


def _busy_bucket() -> BucketEstimate:
    bucket = BucketEstimate(refill=10.0)
    bucket.book(0.0, reserve=10)
    bucket.observe(150, 0.0)  # ARM reported 150 tokens left
    return bucket


def test_a_429_with_a_hint_costs_no_more_than_the_hint() -> None:
    bucket = _busy_bucket()
    bucket.book(1.0, reserve=10)
    bucket.book(1.0, reserve=10)  # another request of the bucket, in flight
    bucket.throttled(1.0, hint_s=0.5)
    assert bucket.book(1.1, reserve=10) == pytest.approx(0.4)  # others wait out the hint, no longer
    assert bucket.book(1.5, reserve=10) == 0.0  # the retry goes after the hint azure-core waited, not later
    assert bucket.refill == 10.0  # nothing learnt about the refill rate
    bucket.observe(11, 1.55)  # the next answer reports the bucket again (nearly at the reserve): pacing resumes
    assert bucket.book(1.55, reserve=10) > 0.0


def test_a_429_without_a_hint_backs_off() -> None:
    bucket = _busy_bucket()
    bucket.book(1.0, reserve=10)
    bucket.throttled(1.0, hint_s=None)
    assert bucket.refill == 5.0
    assert bucket.book(1.0, reserve=10) > 2.0  # waits for the reserve to refill at the halved rate


def test_retry_hints_are_read_from_arms_headers() -> None:
    assert retry_hint_s({"retry-after-ms": "20"}) == 0.02
    assert retry_hint_s({"Retry-After": "3"}) is None  # a plain dict is case-sensitive; azure-core's is not
    assert retry_hint_s({"retry-after": "3"}) == 3.0
    assert retry_hint_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_hint_s({}) is None


def test_a_pacing_delay_of_a_second_or_more_is_said_before_it_starts() -> None:
    from types import SimpleNamespace

    from runbooks.pacing import ThrottlePacer

    said: list[str] = []
    slept: list[float] = []
    pacer = ThrottlePacer(clock=lambda: 0.0, sleep=slept.append, report=said.append)
    pacer.buckets["writes"].observe(11, 0.0)  # ARM reported 11 write tokens left: at the reserve
    request = SimpleNamespace(http_request=SimpleNamespace(method="PUT"))
    for _ in range(14):  # at 10 tokens/s, each request waits 0.1 s longer than the one before
        pacer.on_request(request)  # type: ignore[arg-type]
    assert len(slept) == 13 and slept[0] == pytest.approx(0.1) and slept[-1] == pytest.approx(1.3)
    assert len(said) == len([s for s in slept if s >= 1.0]) == 3  # a short delay is not news; a long one is
    assert "writes budget" in said[-1] and said[-1].startswith("    … waiting ") and len(said[-1]) <= 100
