"""Scale-out across API processes through Redis: one shared feed, hub events everywhere.

With ``MYTRADER_REDIS_URL`` set, every process builds a ``RedisBus``:

- ``publish`` delivers to this process's handlers at once (hubs, engine) and queues user events
  (OrderUpdate, PortfolioUpdate) for Redis; one publisher task sends them in batches to
  ``{prefix}:events``.
- one subscriber task per process receives the other processes' batches: ticks are applied to
  the local quote cache with ``market.apply(ticks, publish=False)`` (which also runs the order
  sweep) and every event is then delivered to the local handlers, so a client on process A gets
  the OrderUpdate for an order placed through process B.

``FeedLeader`` elects the one process that runs the market-data feed through a lease,
``{prefix}:feed-leader`` = ``"{process id}:{epoch}"``, where the epoch is incremented by every
promotion. The leader publishes each feed step with a script that checks, inside Redis, that it
still holds the lease, and applies the step itself only once Redis took it: a leader that lost
the lease (or cannot reach Redis) publishes nothing and matches nothing. Ticks carry the epoch
and every process orders them by (epoch, seq), so a former leader's sequence numbers never win.

A process that cannot reach Redis is *cut off*: its quotes are the cluster's no longer, so it
runs no private feed, refuses new orders with 503 and reports ``redis:connection`` as ``fail``
(``/health/ready`` answers 503 and a load balancer routes elsewhere) until a Redis round trip
succeeds again. The embedded default, without Redis, runs its own feed as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Final

import redis.asyncio as aioredis

from mytrader_server.context import ComponentHealth, ServerContext
from mytrader_server.events import Event, Handler, JSONValue, LocalBus, Tick, UserEvent
from mytrader_server.market.service import MarketService

log = logging.getLogger(__name__)

LEASE_MS: Final = 3000
LEASE_S: Final = LEASE_MS / 1000
RENEW_S: Final = LEASE_MS / 3000
ROUND_TRIP_TIMEOUT_S: Final = 0.5  # an election or a feed step's publish; slower = cut off
RETRY_S: Final = 1.0
MAX_BATCH: Final = 500
MAX_OUTBOX: Final = 100_000
SUBSCRIBE_WAIT_S: Final = 3.0

TickSink = Callable[[list[Tick]], Awaitable[None]]

# KEYS: lease, epoch counter. ARGV: this process's id, lease ms. Returns the lease's value:
# "{id}:{epoch}" of whoever holds it, this process included when it just took it.
_PROMOTE = """
local holder = redis.call('get', KEYS[1])
if holder then return holder end
local epoch = redis.call('incr', KEYS[2])
local value = ARGV[1] .. ':' .. epoch
redis.call('set', KEYS[1], value, 'PX', ARGV[2])
return value
"""
# KEYS: lease, channel, last sequence number. ARGV: lease value, batch, sequence number.
# The fence: a feed step is published only by the current lease holder.
_PUBLISH_TICKS = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('publish', KEYS[2], ARGV[2])
redis.call('set', KEYS[3], ARGV[3])
return 1
"""
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


def encode_batch(origin: str, events: Sequence[Event]) -> str:
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
                    "epoch": event.epoch,
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
            epoch=int(item.get("epoch", 0)),
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
        self.connected = False  # the subscriber holds a subscription
        self._confirmed_until = 0.0  # monotonic time until which the last round trip vouches
        self._resubscribe = False
        self._local = LocalBus()
        self._outbox: deque[UserEvent] = deque()
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: aioredis.Redis | None = None
        self._tick_sink: TickSink | None = None
        self.max_seq = 0
        self.epoch = 0  # the highest feed-lease epoch seen
        self._latest: dict[str, tuple[int, int]] = {}  # per symbol: (epoch, seq) last delivered
        self._warned_at = -60.0

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        return self._local.subscribe(handler)

    def publish(self, event: Event) -> None:
        """Deliver here at once; user events also go to the other processes.

        Ticks reach the other processes before this call, through ``FeedLeader.commit``.
        """
        self._local.deliver(event)
        if isinstance(event, UserEvent) and self._wake is not None:
            if len(self._outbox) >= MAX_OUTBOX:  # Redis stalled: shed the oldest, stay bounded
                self._outbox.popleft()
            self._outbox.append(event)
            self._wake.set()

    # ---- contact with Redis ----------------------------------------------------------------

    def cut_off_reason(self) -> str | None:
        """Why this process is cut off from the cluster, or None while it is in contact."""
        if not self.connected:
            return "redis unreachable: not subscribed to the cluster's events"
        if time.monotonic() >= self._confirmed_until:
            return "redis unreachable: no round trip succeeded within the lease time"
        return None

    def confirm(self, sent_at: float) -> None:
        """A round trip sent at ``sent_at`` succeeded."""
        if self._confirmed_until == 0.0:
            # back from an outage: events published meanwhile are lost to this subscription,
            # and a connection that went quiet may be half open; subscribe afresh
            self._resubscribe = True
        self._confirmed_until = max(self._confirmed_until, sent_at + LEASE_S)

    def lose_contact(self, what: str, exc: BaseException) -> None:
        self._confirmed_until = 0.0
        if time.monotonic() - self._warned_at > 60:
            self._warned_at = time.monotonic()
            log.warning("redis %s failed: %s; this process is cut off", what, type(exc).__name__)

    def observe_epoch(self, epoch: int) -> None:
        self.epoch = max(self.epoch, epoch)

    # ---- lifecycle -------------------------------------------------------------------------

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
            # is missed; without Redis the process starts cut off (see cut_off_reason)
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
        while True:
            await wake.wait()
            wake.clear()
            while self._outbox:
                batch: list[Event] = [
                    self._outbox.popleft() for _ in range(min(MAX_BATCH, len(self._outbox)))
                ]
                try:
                    await self.redis.publish(self.channel, encode_batch(self.origin, batch))
                except Exception as exc:  # Redis down: these events stay local
                    self.lose_contact("publish", exc)

    async def _subscribe_forever(self, ready: asyncio.Future[None]) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self._resubscribe = False
                self.connected = True
                if not ready.done():
                    ready.set_result(None)
                while not self._resubscribe:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        await self._receive(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                self.lose_contact("subscription", exc)
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
        fresh: list[Event] = []
        ticks: list[Tick] = []
        for event in events:
            if isinstance(event, Tick):
                if not self._is_news(event):
                    continue
                ticks.append(event)
            fresh.append(event)
        for event in fresh:  # queued for the hub clients first: a slow sweep cannot delay them
            self._local.deliver(event)
        if ticks:
            self.max_seq = max(self.max_seq, max(t.seq for t in ticks))
            if self._tick_sink is not None:
                # the quote cache is updated before this coroutine first yields, so no client
                # can see a pushed tick before the REST API has it; then the order sweep runs
                await self._tick_sink(ticks)

    def _is_news(self, tick: Tick) -> bool:
        """Fencing: a tick from an epoch older than one already seen, or not newer than the
        last one delivered for its symbol, never reaches a client or the quote cache."""
        if tick.epoch < self.epoch:
            return False
        self.epoch = tick.epoch
        key = (tick.epoch, tick.seq)
        if key <= self._latest.get(tick.symbol, (-1, -1)):
            return False
        self._latest[tick.symbol] = key
        return True


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
    """Keeps exactly one process running the market-data feed, through a fenced Redis lease."""

    def __init__(self, bus: RedisBus, market: MarketService) -> None:
        self.bus = bus
        self.market = market
        self.key = f"{bus.prefix}:feed-leader"
        self.epoch_key = f"{bus.prefix}:feed-epoch"
        self.seq_key = f"{bus.prefix}:feed-seq"
        self.identity = bus.origin
        self.lease: str | None = None  # our lease value while leader
        self.epoch = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        return self.lease is not None

    async def elect(self) -> bool:
        """One round trip to take or keep the lease; starts or stops this process's feed.

        A failed or slow round trip cuts the process off (``RedisBus.cut_off_reason``) but
        changes no role: a leader's publishes fail in Redis's fence as soon as its lease is
        gone, and a follower never runs a private feed.
        """
        sent = time.monotonic()
        try:
            async with asyncio.timeout(ROUND_TRIP_TIMEOUT_S):
                if self.lease is not None:
                    held = await self.bus.redis.eval(_RENEW, 1, self.key, self.lease, LEASE_MS)
                    if not held:
                        await self._demote()  # the lease expired and another process took it
                else:
                    raw = await self.bus.redis.eval(
                        _PROMOTE, 2, self.key, self.epoch_key, self.identity, LEASE_MS
                    )
                    holder = raw.decode() if isinstance(raw, bytes) else str(raw)
                    epoch = _lease_epoch(holder)
                    self.bus.observe_epoch(epoch)
                    if holder == f"{self.identity}:{epoch}":
                        await self._promote(holder, epoch)
        except Exception as exc:
            self.bus.lose_contact("feed election", exc)
        else:
            self.bus.confirm(sent)
        return self.is_leader

    async def commit(self, ticks: list[Tick]) -> list[Tick] | None:
        """Publish a feed step to every process, fenced by the lease; None if it was not."""
        lease = self.lease
        if lease is None:
            return None
        stamped = [replace(t, epoch=self.epoch) for t in ticks]
        seq = max(self.bus.max_seq, *(t.seq for t in stamped))
        sent = time.monotonic()
        try:
            async with asyncio.timeout(ROUND_TRIP_TIMEOUT_S):
                published = await self.bus.redis.eval(
                    _PUBLISH_TICKS,
                    3,
                    self.key,
                    self.bus.channel,
                    self.seq_key,
                    lease,
                    encode_batch(self.identity, stamped),
                    seq,
                )
        except Exception as exc:
            self.bus.lose_contact("feed publish", exc)
            return None
        self.bus.confirm(sent)
        if not published:
            return None  # the lease moved on; the next election demotes this process
        self.bus.max_seq = seq
        return stamped

    async def _promote(self, lease: str, epoch: int) -> None:
        self.lease, self.epoch = lease, epoch
        self.market.runs_feed = True
        await self._resume_sequence()
        log.info("this process now runs the market-data feed (lease epoch %d)", epoch)
        self.market.start()  # a no-op while the feed task already runs

    async def _demote(self) -> None:
        self.lease = None
        if not self.market.runs_feed:
            return
        self.market.runs_feed = False
        log.info("this process follows the market-data feed of another process")
        await self.market.stop()

    async def _resume_sequence(self) -> None:
        """Continue after the last tick any process published."""
        known = self.bus.max_seq
        with contextlib.suppress(Exception):
            stored = await self.bus.redis.get(self.seq_key)
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
        if self.lease is not None:
            with contextlib.suppress(Exception):
                await self.bus.redis.eval(_RELEASE, 1, self.key, self.lease)
            self.lease = None


def _lease_epoch(value: str) -> int:
    _, _, epoch = value.rpartition(":")
    try:
        return int(epoch)
    except ValueError:
        return 0  # a lease written by an older version: epoch 0, below every fenced one


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
    ctx.market.commit = leader.commit
    ctx.market.halt_reason = bus.cut_off_reason
    await leader.elect()
    leader.start()

    async def health() -> ComponentHealth:
        reason = bus.cut_off_reason()
        if reason is not None:  # not ready: a load balancer must route elsewhere
            return ComponentHealth("redis:connection", "datastore", "fail", 0, "", reason)
        role = "leader" if leader.is_leader else "follower"
        return ComponentHealth("redis:connection", "datastore", "pass", 1, "", role)

    async def stop() -> None:
        await leader.stop()
        await bus.stop()

    ctx.health_probes.append(health)
    # first in the list, so the reversed run order stops Redis last, after the hubs closed
    ctx.shutdown_hooks.insert(0, stop)


def create_bus(redis_url: str | None, prefix: str) -> LocalBus | RedisBus:
    """The embedded default without Redis; the Redis bus with it."""
    return LocalBus() if not redis_url else RedisBus(redis_url, prefix)
