"""Per-token rate limits for bureau routes: a token bucket per token id, in process.

Each token may burst up to ``per_minute`` requests and then gets ``per_minute /
60`` per second back. The buckets live in this process only: with N server
processes a token may make up to N times the rate (run one process per host
behind the load balancer's sticky routing, or divide the setting by N).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable

from registry.errors import Unavailable


class RateLimited(Unavailable):
    """Too many requests for this token; retry after ``retry_after`` seconds."""

    status = 429
    title = "Too many requests"
    type_slug = "rate-limited"


class RateLimiter:
    def __init__(self, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._now = now
        self._buckets: dict[uuid.UUID, tuple[float, float]] = {}
        self.refused = 0  # requests answered 429 (a metric)

    def check(self, token_id: uuid.UUID) -> None:
        """Take one request from the token's bucket, or raise RateLimited (nothing taken)."""
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        now = self._now()
        tokens, since = self._buckets.get(token_id, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - since) * rate)
        if tokens < 1.0:
            self._buckets[token_id] = (tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / rate))
            self.refused += 1
            raise RateLimited(
                f"this token may make {self.per_minute} requests per minute; retry in {wait} s",
                retry_after=wait,
            )
        self._buckets[token_id] = (tokens - 1.0, now)
