"""Token-bucket rate limits keyed by account and by client address (bounded memory)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict


class RateLimiter:
    """``rate_per_minute`` tokens refill continuously; a burst of the same size is allowed."""

    def __init__(self, rate_per_minute: int, max_keys: int = 100_000) -> None:
        self.capacity = float(rate_per_minute)
        self.refill_per_s = rate_per_minute / 60.0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_keys = max_keys

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one token for ``key``; return 0 if allowed, else seconds until one is free."""
        now = time.monotonic() if now is None else now
        tokens, stamp = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.refill_per_s)
        if tokens >= 1.0:
            self._store(key, tokens - 1.0, now)
            return 0.0
        self._store(key, tokens, now)
        return math.ceil((1.0 - tokens) / self.refill_per_s)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    async def acquire(self, key: str) -> float:
        """``take`` behind the interface the Redis-shared limiter also offers."""
        return self.take(key)
