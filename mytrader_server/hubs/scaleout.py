"""Scale-out across API processes through Redis: one shared feed, hub events everywhere.

With ``MYTRADER_REDIS_URL`` set, every process builds a ``RedisBus``:

- ``publish`` delivers to this process's handlers at once (hubs, engine) and queues the event
  for Redis; one publisher task sends queued events in batches to ``{prefix}:events``.
- one subscriber task per process receives the other processes' batches: ticks are applied to
  the local quote cache with ``market.apply(ticks, publish=False)`` (which also runs the order
  sweep) and every event is then delivered to the local handlers, so a client on process A gets
  the OrderUpdate for an order placed through process B.

``FeedLeader`` elects the one process that runs the market-data feed: ``SET key id NX PX ttl``,
renewed at a third of the TTL with a compare-and-expire script. Followers keep
``market.runs_feed`` False. If Redis is unreachable each process keeps serving its own clients
(local delivery never depends on Redis); it does not start a second feed unless it held or wins
the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import redis.asyncio as aioredis

from mytrader_server.context import ComponentHealth, ServerContext
from mytrader_server.events import Event, Handler, JSONValue, LocalBus, Tick, UserEvent
from mytrader_server.market.service import MarketService

log = logging.getLogger(__name__)

LEASE_MS: Final = 3000
RENEW_S: Final = LEASE_MS / 3000
RETRY_S: Final = 1.0
MAX_BATCH: Final = 500
MAX_OUTBOX: Final = 100_000
SUBSCRIBE_WAIT_S: Final = 3.0

TickSink = Callable[[list[Tick]], Awaitable[None]]

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


# ---- wire format -----------------------------------------------------------------------------


def encode_batch(origin: str, events: list[Event]) -> str:
    """One Redis message: the sending process and its events, in order."""
    items: list[JSONValue] = []
    for event in events:
        if isinstance(event, Tick):
            items.append(
                {
                    "k": "tick",
                    "symbol": event.symbol,
                    "price": event.price,
                    "bid": event.bid,
                    "ask": event.ask,
                    "volume": event.volume,
                    "trade_count": event.trade_count,
                    "timestamp": event.timestamp,
                    "seq": event.seq,
                }
            )
        else:
            items.append(
                {
                    "k": "user",
                    "user_id": event.user_id,
                    "target": event.target,
                    "payload": event.payload,
                }
            )
    return json.dumps({"origin": origin, "events": items}, separators=(",", ":"))


def decode_batch(raw: str | bytes) -> tuple[str, list[Event]]:
    """The inverse of ``encode_batch``; raises ValueError on anything malformed."""
    body = json.loads(raw)
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ValueError("not an event batch")
    origin = str(body.get("origin", ""))
    events: list[Event] = []
    for item in body["events"]:
        if not isinstance(item, dict):
            raise ValueError("an event is not an object")
        try:
            events.append(_decode_event(item))
        except (KeyError, TypeError) as exc:  # a missing field, a wrong type
            raise ValueError(f"malformed event: {type(exc).__name__}: {exc}") from None
    return origin, events


def _decode_event(item: dict[str, Any]) -> Event:
    kind = item.get("k")
    if kind == "tick":
        return Tick(
            symbol=str(item["symbol"]),
            price=str(item["price"]),
            bid=str(item["bid"]),
            ask=str(item["ask"]),
            volume=int(item["volume"]),
            trade_count=int(item["trade_count"]),
            timestamp=str(item["timestamp"]),
            seq=int(item["seq"]),
        )
    if kind == "user":
        target = item["target"]
        payload = item["payload"]
        if target not in ("OrderUpdate", "PortfolioUpdate") or not isinstance(payload, dict):
            raise ValueError("bad user event")
        return UserEvent(str(item["user_id"]), target, payload)
    raise ValueError(f"unknown event kind {kind!r}")


# ---- the bus ---------------------------------------------------------------------------------


class RedisBus:
    """An EventBus that delivers locally at once and fans out to other processes via Redis."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.channel = f"{prefix}:events"
        self.origin = uuid.uuid4().hex
        self.connected = False
        self._local = LocalBus()
        self._outbox: deque[Event] = deque()
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: aioredis.Redis | None = None
        self._tick_sink: TickSink | None = None
        self.max_seq = 0

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        return self._local.subscribe(handler)

    def publish(self, event: Event) -> None:
        self._local.deliver(event)
        if isinstance(event, Tick) and event.seq > self.max_seq:
            self.max_seq = event.seq
        if self._wake is not None:
            if len(self._outbox) >= MAX_OUTBOX:  # Redis stalled: shed the oldest, stay bounded
                self._outbox.popleft()
            self._outbox.append(event)
            self._wake.set()

    @property
    def client(self) -> aioredis.Redis | None:
        """The Redis client while the bus runs, else None."""
        return self._redis

    @property
    def redis(self) -> aioredis.Redis:
        assert self._redis is not None, "RedisBus.start() was not called"
        return self._redis

    async def start(self, tick_sink: TickSink) -> None:
        self._tick_sink = tick_sink
        self._redis = aioredis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        self._tasks = [
            loop.create_task(self._subscribe_forever(ready), name="redis-subscriber"),
            loop.create_task(self._publish_forever(), name="redis-publisher"),
        ]
        with contextlib.suppress(TimeoutError):
            # wait (briefly) for the subscription so that no event published right after start
            # is missed; without Redis the process still starts and serves its own clients
            await asyncio.wait_for(asyncio.shield(ready), timeout=SUBSCRIBE_WAIT_S)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._wake = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _publish_forever(self) -> None:
        assert self._wake is not None
        wake = self._wake
        failed_at = 0.0
        while True:
            await wake.wait()
            wake.clear()
            while self._outbox:
                batch = [self._outbox.popleft() for _ in range(min(MAX_BATCH, len(self._outbox)))]
                try:
                    await self.redis.publish(self.channel, encode_batch(self.origin, batch))
                    if self.max_seq:
                        await self.redis.set(f"{self.prefix}:feed-seq", self.max_seq)
                except Exception as exc:  # Redis down: these events stay local
                    if time.monotonic() - failed_at > 60:
                        failed_at = time.monotonic()
                        log.warning("redis publish failed: %s", type(exc).__name__)

    async def _subscribe_forever(self, ready: asyncio.Future[None]) -> None:
        failed_at = 0.0
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.connected = True
                if not ready.done():
                    ready.set_result(None)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        await self._receive(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                if time.monotonic() - failed_at > 60:
                    failed_at = time.monotonic()
                    log.warning("redis subscription lost: %s", type(exc).__name__)
                await asyncio.sleep(RETRY_S)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _receive(self, raw: str | bytes) -> None:
        try:
            origin, events = decode_batch(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed event batch on the redis channel")
            return
        if origin == self.origin:
            return  # our own events were delivered locally when published
        for event in events:  # queued for the hub clients first: a slow sweep cannot delay them
            self._local.deliver(event)
        ticks = [e for e in events if isinstance(e, Tick)]
        if ticks:
            self.max_seq = max(self.max_seq, max(t.seq for t in ticks))
            if self._tick_sink is not None:
                # the quote cache is updated before this coroutine first yields, so no client
                # can see a pushed tick before the REST API has it; then the order sweep runs
                await self._tick_sink(ticks)


# ---- negotiated ids shared between processes --------------------------------------------------


class SharedNegotiations:
    """Negotiated connection ids that every process can claim: negotiate on A, connect on B.

    ``{prefix}:negotiation:{id}`` holds the negotiation under both its token and its
    connectionId for the claim window; ``{prefix}:negotiation-claimed:{connectionId}`` is set
    (NX) by the process whose WebSocket claims it, so a second socket anywhere gets 409.
    """

    def __init__(self, bus: RedisBus) -> None:
        self.bus = bus

    def _key(self, id_: str) -> str:
        return f"{self.bus.prefix}:negotiation:{id_}"

    def _claimed(self, connection_id: str) -> str:
        return f"{self.bus.prefix}:negotiation-claimed:{connection_id}"

    async def put(self, ids: list[str], record: dict[str, JSONValue], ttl_ms: int) -> None:
        raw = json.dumps(record, separators=(",", ":"))
        async with self.bus.redis.pipeline(transaction=False) as pipe:
            for id_ in ids:
                pipe.set(self._key(id_), raw, px=ttl_ms)
            await pipe.execute()

    async def get(self, id_: str) -> dict[str, JSONValue] | None:
        raw = await self.bus.redis.get(self._key(id_))
        if raw is None:
            return None
        value = json.loads(raw)
        return value if isinstance(value, dict) else None

    async def claim(self, connection_id: str, ttl_ms: int) -> bool:
        return bool(await self.bus.redis.set(self._claimed(connection_id), 1, nx=True, px=ttl_ms))

    async def release(self, connection_id: str, ids: list[str]) -> None:
        await self.bus.redis.delete(self._claimed(connection_id), *(self._key(i) for i in ids))


def shared_negotiations(bus: object) -> SharedNegotiations | None:
    """The cross-process negotiation store when this process runs with Redis, else None."""
    if isinstance(bus, RedisBus) and bus._redis is not None:
        return SharedNegotiations(bus)
    return None


# ---- feed leadership ---------------------------------------------------------------------------


class FeedLeader:
    """Keeps exactly one process running the market-data feed, through a Redis lease."""

    def __init__(self, bus: RedisBus, market: MarketService) -> None:
        self.bus = bus
        self.market = market
        self.key = f"{bus.prefix}:feed-leader"
        self.identity = bus.origin
        self.is_leader = False
        self._task: asyncio.Task[None] | None = None

    async def elect(self) -> bool:
        """One attempt to take or keep the lease; updates ``market.runs_feed``.

        Redis unreachable: a leader keeps its feed (nobody else can take the lease meanwhile)
        and a follower starts one for its own clients, because no ticks reach it through Redis
        either. When Redis is back, only the lease holder keeps running a feed.
        """
        redis = self.bus.redis
        try:
            if self.is_leader:
                if not await redis.eval(_RENEW, 1, self.key, self.identity, LEASE_MS):
                    await self._demote()  # the lease expired and another process took it
            elif await redis.set(self.key, self.identity, nx=True, px=LEASE_MS):
                await self._promote()
            elif self.market.runs_feed:
                await self._demote()  # back from an outage: another process holds the lease
        except Exception as exc:
            log.warning("feed leader election failed: %s", type(exc).__name__)
            if not self.market.runs_feed:
                log.warning("redis unreachable: running the market-data feed locally")
                self.market.runs_feed = True
                await self._resume_sequence()
                self.market.start()
        return self.is_leader

    async def _promote(self) -> None:
        self.is_leader = True
        self.market.runs_feed = True
        await self._resume_sequence()
        log.info("this process now runs the market-data feed")
        self.market.start()  # a no-op while the feed task already runs

    async def _demote(self) -> None:
        self.is_leader = False
        if not self.market.runs_feed:
            return
        self.market.runs_feed = False
        log.info("this process follows the market-data feed of another process")
        await self.market.stop()

    async def _resume_sequence(self) -> None:
        """Continue after the last tick any process published, so followers never drop ours."""
        known = self.bus.max_seq
        with contextlib.suppress(Exception):
            stored = await self.bus.redis.get(f"{self.bus.prefix}:feed-seq")
            known = max(known, int(stored or 0))
        self.market.resume_feed(known)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="feed-leader")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            await self.elect()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.is_leader:
            with contextlib.suppress(Exception):
                await self.bus.redis.eval(_RELEASE, 1, self.key, self.identity)
            self.is_leader = False


async def start_scale_out(ctx: ServerContext) -> None:
    """Join the other processes when the bus is a RedisBus; a no-op for the embedded default.

    Call before ``ctx.market.start()``: it decides whether this process runs the feed.
    """
    bus = ctx.bus
    if not isinstance(bus, RedisBus):
        return

    async def apply_remote(ticks: list[Tick]) -> None:
        await ctx.market.apply(ticks, publish=False)

    await bus.start(apply_remote)
    leader = FeedLeader(bus, ctx.market)
    ctx.market.runs_feed = False
    await leader.elect()
    leader.start()

    async def health() -> ComponentHealth:
        role = "leader" if leader.is_leader else "follower"
        if bus.connected:
            return ComponentHealth("redis:connection", "datastore", "pass", 1, "", role)
        return ComponentHealth("redis:connection", "datastore", "warn", 0, "", "redis unreachable")

    async def stop() -> None:
        await leader.stop()
        await bus.stop()

    ctx.health_probes.append(health)
    # first in the list, so the reversed run order stops Redis last, after the hubs closed
    ctx.shutdown_hooks.insert(0, stop)


def create_bus(redis_url: str | None, prefix: str) -> LocalBus | RedisBus:
    """The embedded default without Redis; the Redis bus with it."""
    return LocalBus() if not redis_url else RedisBus(redis_url, prefix)
