"""Feed fencing by lease epoch (issue 13, defect 4), in process against the machine's Redis.

A process that lost the feed lease while cut off from Redis used to publish its private ticks
when it reconnected, and its higher sequence numbers made every process drop the real feed's.
Now a feed step is published only by the lease holder (checked inside Redis), ticks carry the
lease epoch, and every process orders them by (epoch, seq).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import pytest
import redis.asyncio as aioredis

from mytrader_server.events import Tick
from mytrader_server.hubs.scaleout import FeedLeader, RedisBus, encode_batch
from mytrader_server.market.feed import SimulatedFeed
from mytrader_server.market.service import MarketService

pytestmark = pytest.mark.redis


@dataclass
class Process:
    """What one API process holds for the feed: its bus, its market, its leader election."""

    bus: RedisBus
    market: MarketService
    leader: FeedLeader
    seen: list[Tick] = field(default_factory=list)  # ticks delivered to this process's hubs


async def _process(redis_url: str, prefix: str) -> Process:
    bus = RedisBus(redis_url, prefix)
    market = MarketService(SimulatedFeed(7, 0.1), bus, 0.1)
    market.runs_feed = False
    proc = Process(bus, market, FeedLeader(bus, market))
    bus.subscribe(lambda e: proc.seen.append(e) if isinstance(e, Tick) else None)

    async def sink(ticks: list[Tick]) -> None:
        await market.apply(ticks, publish=False)

    await bus.start(sink)
    market.commit = proc.leader.commit
    return proc


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[Process, Process, str]]:
    prefix = f"mytrader-test-{uuid.uuid4().hex[:12]}"
    a = await _process(redis_url, prefix)
    b = await _process(redis_url, prefix)
    try:
        yield a, b, prefix
    finally:
        for p in (a, b):
            await p.leader.stop()
            await p.market.stop()
            await p.bus.stop()


async def _settle() -> None:
    await asyncio.sleep(0.3)  # Redis pub/sub delivery on loopback takes well under a millisecond


def _step(market: MarketService, seq: int) -> list[Tick]:
    """A feed step for AAPL at a price no real step would produce."""
    state = market.get("AAPL")
    assert state is not None
    return [
        Tick(
            "AAPL",
            "1.00",
            "0.99",
            "1.01",
            state.volume + 1,
            state.trade_count + 1,
            "2026-01-02T15:00:00Z",
            seq,
        )
    ]


async def test_a_former_leader_publishes_nothing_once_the_lease_moved(
    pair: tuple[Process, Process, str],
) -> None:
    a, b, prefix = pair
    assert await a.leader.elect()
    assert a.leader.epoch >= 1
    await a.market.stop()  # the test drives feed steps by hand
    # a's lease expires while it is cut off, and b takes it
    await a.bus.redis.delete(f"{prefix}:feed-leader")
    assert await b.leader.elect()
    await b.market.stop()
    assert b.leader.epoch == a.leader.epoch + 1

    stale = await a.leader.commit(_step(a.market, 10**6))  # a still believes it leads
    assert stale is None
    fresh = await b.leader.commit(_step(b.market, 5))
    assert fresh is not None
    assert fresh[0].epoch == b.leader.epoch
    await _settle()
    assert [t.price for t in a.seen] == ["1.00"]  # b's step reached a; a's reached nobody
    assert [t.epoch for t in a.seen] == [b.leader.epoch]
    assert b.seen == []  # its own step is applied by its feed loop, not echoed back
    # the next election tells a it lost the lease: its feed stops, it follows
    assert not await a.leader.elect()
    assert not a.market.runs_feed


async def test_ticks_of_an_older_epoch_never_reach_clients_or_the_quotes(
    pair: tuple[Process, Process, str], redis_url: str
) -> None:
    """Even a stale tick that got onto the channel (an older version's process, a replay)
    is dropped by the receiver, whatever its sequence number."""
    a, _, prefix = pair
    raw = aioredis.from_url(redis_url)

    async def send(epoch: int, seq: int, price: str) -> None:
        tick = replace(_step(a.market, seq)[0], price=price, epoch=epoch)
        await raw.publish(f"{prefix}:events", encode_batch("other", [tick]))
        await _settle()

    try:
        await send(5, 100, "2.00")
        await send(4, 10**6, "3.00")  # a former leader, far ahead in sequence: dropped
        await send(5, 99, "4.00")  # a replay within the epoch: dropped
        await send(6, 1, "5.00")  # the next leader may start its sequence anywhere
    finally:
        await raw.aclose()
    assert [t.price for t in a.seen] == ["2.00", "5.00"]
    quote = a.market.get("AAPL")
    assert quote is not None
    assert (str(quote.price), quote.epoch, quote.seq) == ("5.00", 6, 1)


async def test_the_quote_cache_orders_ticks_by_epoch_then_sequence() -> None:
    from mytrader_server.events import LocalBus

    market = MarketService(SimulatedFeed(7, 0.1), LocalBus(), 0.1)
    applied: list[tuple[int, int]] = []

    async def listener(ticks: list[Tick]) -> None:
        applied.extend((t.epoch, t.seq) for t in ticks)

    market.add_listener(listener)
    base = _step(market, 0)[0]
    for epoch, seq in [(2, 10), (1, 50), (2, 10), (2, 11), (3, 1)]:
        await market.apply([replace(base, epoch=epoch, seq=seq)], publish=False)
    assert applied == [(2, 10), (2, 11), (3, 1)]  # the order sweep sees only applied ticks
