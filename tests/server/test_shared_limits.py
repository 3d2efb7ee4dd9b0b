"""Login and order limits shared across processes through Redis (issue 13, defect 5).

Each limiter here has its own Redis connection, as separate processes do; they share a limit only
through the GCRA cell in Redis. Without Redis (or when it does not answer) each falls back to
its own per-process bucket.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from mytrader_server.app import create_app
from mytrader_server.shared_limits import RedisRateLimiter
from tests.conftest import make_settings


def _limiter(client: aioredis.Redis | None, prefix: str, rate: int) -> RedisRateLimiter:
    return RedisRateLimiter(lambda: client, prefix, "login", rate)


async def _takes(limiters: list[RedisRateLimiter], key: str, n: int) -> list[float]:
    """n acquisitions of one key, round-robin over the limiters."""
    return [await limiters[i % len(limiters)].acquire(key) for i in range(n)]


def test_two_processes_share_one_count(redis_url: str) -> None:
    async def run() -> tuple[list[float], list[float]]:
        prefix = f"test-{uuid.uuid4().hex[:8]}"
        a, b = aioredis.from_url(redis_url), aioredis.from_url(redis_url)
        try:
            shared = await _takes([_limiter(a, prefix, 5), _limiter(b, prefix, 5)], "user:x", 7)
            # the same traffic with a cell per process: nothing is refused
            apart = await _takes(
                [_limiter(a, prefix + "-a", 5), _limiter(b, prefix + "-b", 5)], "user:x", 7
            )
            return shared, apart
        finally:
            await a.aclose()
            await b.aclose()

    shared, apart = asyncio.run(run())
    assert shared[:5] == [0.0] * 5
    assert shared[5:] == [12.0, 12.0]  # 5 a minute: the next token in 12 s
    assert apart == [0.0] * 7


def test_keys_are_independent_and_the_cell_expires(redis_url: str) -> None:
    async def run() -> tuple[list[float], float, int]:
        prefix = f"test-{uuid.uuid4().hex[:8]}"
        client = aioredis.from_url(redis_url)
        try:
            limiter = _limiter(client, prefix, 60)  # one a second, burst 60
            first = await _takes([limiter], "ip:1", 61)
            other = await limiter.acquire("ip:2")
            ttl = int(await client.pttl(f"{prefix}:ratelimit:login:ip:1"))
            return first, other, ttl
        finally:
            await client.aclose()

    first, other, ttl = asyncio.run(run())
    assert first[:60] == [0.0] * 60
    assert first[60] == 1.0
    assert other == 0.0
    assert 0 < ttl <= 61_000  # the cell never outlives the time to refill the bucket


def test_an_unreachable_redis_falls_back_to_a_per_process_limit() -> None:
    async def run() -> list[float]:
        dead = aioredis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
        try:
            return await _takes([_limiter(dead, "p", 2)], "user:y", 3)
        finally:
            await dead.aclose()

    assert asyncio.run(run()) == [0.0, 0.0, 30.0]


def test_a_cut_off_process_counts_on_its_own_without_waiting_for_redis(redis_url: str) -> None:
    """The bus already knows Redis is gone: no round trip, no timeout to wait out."""

    async def run() -> list[float]:
        prefix = f"test-{uuid.uuid4().hex[:8]}"
        client = aioredis.from_url(redis_url)
        try:
            cut = RedisRateLimiter(lambda: client, prefix, "login", 2, lambda: "redis unreachable")
            results = await _takes([cut], "user:z", 3)
            assert await client.exists(f"{prefix}:ratelimit:login:user:z") == 0
            return results
        finally:
            await client.aclose()

    assert asyncio.run(run()) == [0.0, 0.0, 30.0]


@pytest.fixture
def two_apps(redis_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two API instances on one database and one Redis prefix (as two processes would be)."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        tmp_path, redis_url=redis_url, redis_prefix=prefix, login_rate_per_minute=3
    )
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        yield a, b


def test_a_login_limit_used_up_on_one_process_holds_on_the_other(
    two_apps: tuple[TestClient, TestClient],
) -> None:
    a, b = two_apps
    assert (
        a.post("/api/auth/register", json={"username": "lim", "password": "pw-123456"}).status_code
        == 201
    )
    bad = {"username": "lim", "password": "wrong-password"}
    assert [a.post("/api/auth/login", json=bad).status_code for _ in range(2)] == [401, 401]
    refused = b.post("/api/auth/login", json=bad)
    assert refused.status_code == 429
    assert refused.json()["code"] == 42900001
    assert int(refused.headers["Retry-After"]) >= 1
