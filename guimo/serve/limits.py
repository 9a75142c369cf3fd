"""Rate limits: token buckets per (key, model) for requests/min and tokens/min, and a cap on
concurrent requests per key. All in memory, per server process.

With ``uvicorn --workers N`` each worker keeps its own buckets, so a key can reach up to N times
its rpm/tpm and concurrency across a host (documented in `guimo serve --help`); the monthly quota
is exact across workers and replicas because it is a sum over the shared ledger.

Everything here runs on the event loop thread without awaiting in between, so no locks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """``capacity`` units that refill continuously at ``capacity`` per minute."""

    capacity: float
    level: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.capacity

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.capacity / 60.0)
            self.stamp = now

    def try_take(self, n: float, now: float | None = None) -> float:
        """Take ``n`` (at most the capacity) and return 0, or return the seconds until it fits."""
        now = time.monotonic() if now is None else now
        self._refill(now)
        n = min(n, self.capacity)  # a request larger than a minute's budget waits for a full bucket
        if self.level >= n:
            self.level -= n
            return 0.0
        return (n - self.level) * 60.0 / self.capacity

    def give_back(self, n: float) -> None:
        self.level = min(self.capacity, self.level + n)

    def reset_s(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.capacity - self.level) * 60.0 / self.capacity


class RateLimited(Exception):
    def __init__(self, message: str, retry_after: float, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.retry_after, self.headers = retry_after, headers


@dataclass
class Grant:
    """What one admitted request holds: release it when the request ends."""

    limiter: "Limiter"
    key_id: int
    model: str
    tokens_taken: float
    headers: dict[str, str]
    released: bool = False

    def settle(self, actual_tokens: int) -> None:
        """Return unused estimated tokens to the tokens/min bucket."""
        bucket = self.limiter.tpm.get((self.key_id, self.model))
        if bucket is not None and actual_tokens < self.tokens_taken:
            bucket.give_back(self.tokens_taken - actual_tokens)
            self.tokens_taken = actual_tokens

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.limiter.active[self.key_id] -= 1


class Limiter:
    def __init__(self, default_max_concurrent: int) -> None:
        self.default_max_concurrent = default_max_concurrent
        self.rpm: dict[tuple[int, str], TokenBucket] = {}
        self.tpm: dict[tuple[int, str], TokenBucket] = {}
        self.active: dict[int, int] = {}

    def admit(self, *, key_id: int, model: str, rpm: int | None, tpm: int | None, max_concurrent: int | None, tokens: int) -> Grant:
        """Admit one request estimated at ``tokens`` tokens, or raise ``RateLimited``."""
        now = time.monotonic()
        limit = max_concurrent or self.default_max_concurrent
        if self.active.get(key_id, 0) >= limit:
            raise RateLimited(f"Too many concurrent requests for this key (limit {limit}).", 1.0,
                              {"x-ratelimit-limit-concurrent": str(limit)})
        rb = self._bucket(self.rpm, key_id, model, rpm)
        tb = self._bucket(self.tpm, key_id, model, tpm)
        if rb is not None:
            wait = rb.try_take(1, now)
            if wait > 0:
                raise RateLimited(f"Rate limit reached for {model}: {rpm} requests per minute.", wait, self._headers(rb, tb))
        if tb is not None:
            wait = tb.try_take(tokens, now)
            if wait > 0:
                if rb is not None:
                    rb.give_back(1)
                raise RateLimited(f"Rate limit reached for {model}: {tpm} tokens per minute (this request needs ~{tokens}).",
                                  wait, self._headers(rb, tb))
        self.active[key_id] = self.active.get(key_id, 0) + 1
        taken = min(tokens, tb.capacity) if tb is not None else tokens
        return Grant(self, key_id, model, taken, self._headers(rb, tb))

    @staticmethod
    def _bucket(table: dict, key_id: int, model: str, capacity: int | None) -> TokenBucket | None:
        if capacity is None:
            return None
        b = table.get((key_id, model))
        if b is None or b.capacity != capacity:  # a changed limit takes effect at once
            b = table[(key_id, model)] = TokenBucket(float(capacity))
        return b

    @staticmethod
    def _headers(rb: TokenBucket | None, tb: TokenBucket | None) -> dict[str, str]:
        h: dict[str, str] = {}
        for kind, b in (("requests", rb), ("tokens", tb)):
            if b is not None:
                h[f"x-ratelimit-limit-{kind}"] = str(int(b.capacity))
                h[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(b.level)))
                h[f"x-ratelimit-reset-{kind}"] = f"{b.reset_s():.3f}s"
        return h
