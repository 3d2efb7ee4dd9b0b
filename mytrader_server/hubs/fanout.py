"""Fan-out: who receives what. Subscribed symbols, per-user channels, price streams.

``on_event`` is the bus handler. Each tick is encoded and framed once for the whole fan-out;
the same WebSocket frame bytes are written to every subscribed connection whose writer is idle
(``HubConnection.push_frame``), else the record goes to its bounded queue. No task, future or
ASGI message is created per client and tick. A ``UserEvent`` is routed by ``(hub, user_id)``
only, so an order update can reach nobody but the connections of the user who owns the order
(S1).

Fan-outs hold the event loop for at most ``SLICE_S`` per loop iteration, however many ticks
came in it (a feed step publishes every symbol at once): past that they yield and go on in the
next iteration (``_drain``), so timers, pings, health checks and new connections are served in
between, with no pause of the loop growing with the connection count. Fan-outs are done one
after the other, in the order the ticks came, so every connection still receives a symbol's
ticks in order; a connection that unsubscribed or closed before its turn is skipped. Ticks that
came in the same loop iteration (a burst) keep that iteration's batch number, so a connection
gets the first of them straight away and the rest coalesced by its writer. When ticks come
faster than the sockets take them and more than ``MAX_PENDING_WRITES`` writes left over from
earlier iterations are pending, the publisher waits for all of them (``_finish``): the loop
pauses, as before the slicing, rather than the backlog growing without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Final

from mytrader_server.events import Event, Tick, UserEvent
from mytrader_server.hubs.connection import HubConnection, text_frame
from mytrader_server.hubs.protocol import encode_invocation, encode_invocation_raw, encode_json
from mytrader_server.hubs.streams import PriceStream

log = logging.getLogger(__name__)

MARKET_DATA: Final = "market-data"
TRADING: Final = "trading"
PORTFOLIO: Final = "portfolio"
HUB_FOR_TARGET: Final = {"OrderUpdate": TRADING, "PortfolioUpdate": PORTFOLIO}
RECEIVE_MARKET_DATA: Final = "ReceiveMarketData"
SLICE_S: Final = 0.004  # the longest stretch fan-outs hold the event loop per loop iteration
CLOCK_EVERY: Final = 64  # connections written between two looks at the clock
# Past this many writes pending from earlier loop iterations, a new tick's fan-out finishes
# every pending one before the publisher goes on: the producer waits, as with an unsliced
# fan-out, instead of the backlog (and its latency and memory) growing without bound when
# ticks outpace the sockets. One iteration's own ticks never trip it.
MAX_PENDING_WRITES: Final = 20_000


@dataclass(slots=True)
class _Delivery:
    """One tick's fan-out still under way: its frame and who is yet to get it."""

    symbol: str
    record: str
    frame: bytes
    conns: list[HubConnection]
    batch: int  # the loop iteration the tick came in: a burst's records coalesce per connection
    done: int = 0  # conns[:done] are written


def tick_json(tick: Tick) -> str:
    """The ``ReceiveMarketData`` payload: symbol, price, bid, ask, volume, timestamp, tradeCount."""
    return encode_json(tick.to_json())


class FanOut:
    """Indexes of open connections and the bus handler that pushes events through them."""

    def __init__(self) -> None:
        self.by_symbol: defaultdict[str, set[HubConnection]] = defaultdict(set)
        self.streams: defaultdict[str, set[PriceStream]] = defaultdict(set)
        self.by_user: defaultdict[tuple[str, str], set[HubConnection]] = defaultdict(set)
        self.ticks_seen = 0
        self._batch = 0  # numbers event-loop iterations that fan ticks out
        self._batch_open = False
        self._pending: deque[_Delivery] = deque()  # fan-outs in tick order, the first under way
        self._resume_handle: asyncio.Handle | None = None  # set while the rest waits a turn
        self._budget_until = 0.0  # perf_counter() when this iteration's slice is used up
        self.pending_writes = 0  # connections the pending fan-outs have yet to write to
        self.slices = 0  # loop iterations that resumed a fan-out (mytrader_hub_fanout_resumed_*)

    # ---- subscriptions ---------------------------------------------------------------------

    def subscribe(self, conn: HubConnection, symbols: list[str]) -> None:
        for symbol in symbols:
            conn.symbols.add(symbol)
            self.by_symbol[symbol].add(conn)

    def unsubscribe(self, conn: HubConnection, symbols: list[str]) -> None:
        for symbol in symbols:
            conn.symbols.discard(symbol)
            subscribers = self.by_symbol.get(symbol)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self.by_symbol[symbol]

    def add_stream(self, stream: PriceStream) -> None:
        self.streams[stream.symbol].add(stream)

    def remove_stream(self, stream: PriceStream) -> None:
        streams = self.streams.get(stream.symbol)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self.streams[stream.symbol]

    def add_user(self, conn: HubConnection) -> None:
        if conn.user_id is not None and conn.hub in (TRADING, PORTFOLIO):
            self.by_user[(conn.hub, conn.user_id)].add(conn)

    def remove(self, conn: HubConnection) -> None:
        """Forget a closed connection everywhere."""
        self.unsubscribe(conn, list(conn.symbols))
        for stream in list(conn.streams.values()):
            self.remove_stream(stream)
        if conn.user_id is not None:
            key = (conn.hub, conn.user_id)
            users = self.by_user.get(key)
            if users is not None:
                users.discard(conn)
                if not users:
                    del self.by_user[key]

    # ---- delivery --------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, Tick):
            self._on_tick(event)
        else:
            self._on_user_event(event)

    def _on_tick(self, tick: Tick) -> None:
        self.ticks_seen += 1
        subscribers = self.by_symbol.get(tick.symbol)
        streams = self.streams.get(tick.symbol)
        if not subscribers and not streams:
            return
        payload = tick_json(tick)
        if subscribers:
            record = encode_invocation_raw(RECEIVE_MARKET_DATA, payload)
            frame = text_frame(record)  # serialised and framed once for every subscriber
            conns = list(subscribers)
            batch = self._current_batch()
            self._pending.append(_Delivery(tick.symbol, record, frame, conns, batch))
            self.pending_writes += len(conns)
            if self.pending_writes > MAX_PENDING_WRITES and self._carried() > MAX_PENDING_WRITES:
                self._finish()
            elif self._resume_handle is None:  # else the pending fan-outs go on in turn
                if time.perf_counter() < self._budget_until:
                    self._drain()
                else:  # this iteration's slice is used up
                    self._resume_later()
        if streams:
            for stream in list(streams):
                stream.on_tick(payload)

    def _drain(self) -> None:
        """Write pending fan-outs in order until done or this loop iteration's slice is used
        up; then go on in the next iteration."""
        now = time.monotonic()
        pending = self._pending
        while pending:
            job = pending[0]
            end = len(job.conns)
            while job.done < end:
                start = job.done
                stop = min(end, start + CLOCK_EVERY)
                job.done = stop  # before writing: a write that raises is not repeated
                self.pending_writes -= stop - start
                self._write(job, start, stop, now)
                if time.perf_counter() >= self._budget_until and (stop < end or len(pending) > 1):
                    if stop == end:
                        pending.popleft()
                    self._resume_later()
                    return
            pending.popleft()

    @staticmethod
    def _write(job: _Delivery, start: int, stop: int, now: float) -> None:
        symbol, record, frame, batch = job.symbol, job.record, job.frame, job.batch
        for conn in job.conns[start:stop]:
            if symbol not in conn.symbols:  # unsubscribed or closed since the tick came
                continue
            try:
                conn.push_frame(record, frame, now, batch)
            except Exception:  # one broken connection must not stop the others' fan-out
                log.exception("hub fan-out to one connection failed")

    def _carried(self) -> int:
        """Writes pending from ticks of earlier loop iterations."""
        return sum(len(j.conns) - j.done for j in self._pending if j.batch != self._batch)

    def _resume_later(self) -> None:
        try:
            self._resume_handle = asyncio.get_running_loop().call_soon(self._resume)
        except RuntimeError:  # no loop (a synchronous caller): finish now
            self._finish()

    def _resume(self) -> None:
        self._resume_handle = None
        self.slices += 1
        self._current_batch()  # a new loop iteration: a fresh slice
        self._drain()

    def _finish(self) -> None:
        """Write every pending fan-out now, in order."""
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None
        now = time.monotonic()
        while self._pending:
            job = self._pending.popleft()
            start, job.done = job.done, len(job.conns)
            self._write(job, start, len(job.conns), now)
        self.pending_writes = 0

    def _current_batch(self) -> int:
        """The number of this event-loop iteration's fan-out (a new one after each iteration)."""
        if not self._batch_open:
            self._batch += 1
            self._budget_until = time.perf_counter() + SLICE_S
            try:
                asyncio.get_running_loop().call_soon(self._end_batch)
                self._batch_open = True
            except RuntimeError:  # no loop (a synchronous caller): every tick its own batch
                pass
        return self._batch

    def _end_batch(self) -> None:
        self._batch_open = False

    def _on_user_event(self, event: UserEvent) -> None:
        hub = HUB_FOR_TARGET[event.target]
        conns = self.by_user.get((hub, event.user_id))
        if not conns:
            return
        record = encode_invocation(event.target, [event.payload])
        for conn in list(conns):
            if conn.user_id == event.user_id:  # the index is by user; this is belt and braces
                conn.push(record)
