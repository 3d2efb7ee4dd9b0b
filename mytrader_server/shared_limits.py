"""Rate limits shared by every API process through Redis (scale-out mode).

Per-process buckets let a client spread its attempts over the processes behind a load balancer:
with three processes, three times the login limit. With Redis configured, each limit is one
Generic Cell Rate Algorithm (GCRA) cell per key in Redis, updated by a Lua script, so the count
is shared. GCRA is the token bucket of ``RateLimiter`` stored as a single timestamp (the
"theoretical arrival time"): the same burst, the same refill rate, one key with a TTL, and one
atomic round trip per request. The script reads Redis's own clock, so processes whose clocks
disagree still share one limit.

Why a script of our own rather than a library: the well-kept Python limiters either need a
second Redis client (``limits``' async storage is built on ``coredis``) or offer windows rather
than this bucket's semantics; the script is twelve lines and tests/server/test_shared_limits.py
shows the shared count against a real Redis.

While this process is cut off from Redis (``RedisBus.cut_off_reason``), or when Redis does not
answer within ``TIMEOUT_S``, the process falls back to its own bucket for that request (logged
at most once a minute): a Redis outage must not lock every user out, and the limit is then per
process, as without Redis. The timeout is generous because a busy machine delays Redis's answer
(0.25 s fell back in 4 of 60 benchmark rounds at a load of 6 on two cores); a Redis that is
really gone is known from the bus at once and costs no wait.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Final

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from mytrader_server.ratelimit import RateLimiter

log = logging.getLogger(__name__)

TIMEOUT_S: Final = 1.0

# KEYS[1] the cell; ARGV[1] emission interval in microseconds (one token's refill time);
# ARGV[2] the burst (capacity). Returns 0 when allowed, else microseconds until it would be.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - now - interval * burst
if wait > 0 then return wait end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000))
return 0
"""


class RedisRateLimiter:
    """The same limit as ``RateLimiter(rate_per_minute)``, counted once for all processes."""

    def __init__(
        self,
        client: Callable[[], aioredis.Redis | None],
        prefix: str,
        name: str,
        rate_per_minute: int,
        cut_off: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._client = client
        self._cut_off = cut_off
        self._script: AsyncScript | None = None
        self._prefix = f"{prefix}:ratelimit:{name}:"
        self._interval_us = math.ceil(60_000_000 / rate_per_minute)
        self._burst = rate_per_minute
        self.local = RateLimiter(rate_per_minute)  # used while Redis does not answer
        self._warned_at = -math.inf

    def _gcra(self, redis: aioredis.Redis) -> AsyncScript:
        """The script bound to this client: EVALSHA, not the script's text, on every request."""
        if self._script is None or self._script.registered_client is not redis:
            self._script = redis.register_script(_GCRA)
        return self._script

    async def acquire(self, key: str) -> float:
        """Spend one token for ``key``; 0 if allowed, else whole seconds until one is free."""
        redis = self._client()
        if redis is None or self._cut_off() is not None:
            return self.local.take(key)
        try:
            async with asyncio.timeout(TIMEOUT_S):
                wait_us = int(
                    await self._gcra(redis)(
                        keys=[self._prefix + key], args=[self._interval_us, self._burst]
                    )
                )
        except Exception as exc:  # Redis down or slow: this process's own bucket decides
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning(
                    "shared rate limit unavailable, limiting per process: %s", type(exc).__name__
                )
            return self.local.take(key)
        return 0.0 if wait_us <= 0 else float(math.ceil(wait_us / 1_000_000))
