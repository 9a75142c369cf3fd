"""Token buckets and the concurrency cap: exact arithmetic with explicit clocks."""

from __future__ import annotations

import pytest

from guimo.serve.limits import Limiter, RateLimited, TokenBucket


def test_token_bucket_refills_at_capacity_per_minute():
    b = TokenBucket(60.0, stamp=100.0)
    assert b.try_take(60, now=100.0) == 0.0 and b.level == 0.0
    assert b.try_take(1, now=100.0) == pytest.approx(1.0)  # 60/min = one per second
    assert b.try_take(1, now=100.5) == pytest.approx(0.5)
    assert b.try_take(1, now=101.0) == 0.0
    assert b.try_take(1000, now=101.0) == pytest.approx(60.0)  # larger than capacity: waits for a full bucket
    b.give_back(100)
    assert b.level == 60.0 and b.reset_s() == 0.0
    assert b.try_take(5, now=50.0) == 0.0 and b.level == 55.0  # a clock reading older than the stamp never drains


def test_limiter_headers_refund_and_concurrency():
    lim = Limiter(default_max_concurrent=2)
    g = lim.admit(key_id=1, model="m", rpm=10, tpm=100, max_concurrent=None, tokens=40)
    assert g.headers["x-ratelimit-remaining-requests"] == "9" and g.headers["x-ratelimit-remaining-tokens"] == "60"
    g.settle(10)  # used 10 of the 40 estimated
    assert int(lim.tpm[(1, "m")].level) == 90
    g2 = lim.admit(key_id=1, model="m", rpm=10, tpm=100, max_concurrent=None, tokens=1)
    with pytest.raises(RateLimited, match="concurrent"):
        lim.admit(key_id=1, model="m", rpm=10, tpm=100, max_concurrent=None, tokens=1)
    g.release()
    g.release()  # idempotent
    lim.admit(key_id=1, model="other", rpm=10, tpm=100, max_concurrent=None, tokens=1)
    g2.release()
    lim.admit(key_id=2, model="m", rpm=None, tpm=5, max_concurrent=5, tokens=5)
    with pytest.raises(RateLimited) as e:
        lim.admit(key_id=2, model="m", rpm=None, tpm=5, max_concurrent=5, tokens=5)
    assert e.value.retry_after == pytest.approx(60.0, rel=0.01) and e.value.headers["x-ratelimit-remaining-tokens"] == "0"
