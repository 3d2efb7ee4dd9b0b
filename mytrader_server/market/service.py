"""The running market: applies ticks to the quote cache, publishes them, tracks freshness.

In the embedded default this process runs the feed. With scale-out, one process (the leader)
runs it and the others apply the ticks they receive; either way ``apply`` is the single entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mytrader_server.events import EventBus, Tick
from mytrader_server.market.feed import MarketDataProvider, SymbolState
from mytrader_server.market.universe import find_asset

# A change of the wall clock's offset from the monotonic clock smaller than this is taken for
# jitter between the two readings, not for an adjusted wall clock (see MarketService._run).
WALL_JITTER_S = 0.0005

log = logging.getLogger(__name__)

TickListener = Callable[[list[Tick]], Awaitable[None]]
# Publishes a feed step to the other processes before this one applies it; returns the ticks as
# published, or None when they were not (this process lost its lease or cannot reach Redis).
TickCommit = Callable[[list[Tick]], Awaitable[list[Tick] | None]]

# How far behind schedule the feed still produces every missed step (back to back): a pause of
# up to this long (a full garbage collection, a slow tick listener, a blocked loop) loses no
# step. Beyond it the oldest missed steps are skipped and counted, so that a long outage (a
# suspended host, a stalled feed) does not replay seconds of stale market in one burst.
MAX_CATCH_UP_S = 1.0


@dataclass(slots=True)
class FeedCounts:
    """Feed steps as plain ints (the feed never takes a metrics lock); one step is one tick per
    symbol. Every scheduled step ends as exactly one of produced, skipped or unpublished."""

    scheduled: int = 0
    produced: int = 0  # stepped and applied here
    skipped: int = 0  # too far behind schedule, or the feed was stalled (fault injection)
    unpublished: int = 0  # scale-out: the commit through Redis refused it, so not applied


class MarketService:
    def __init__(self, provider: MarketDataProvider, bus: EventBus, interval_s: float) -> None:
        self._provider = provider
        self._bus = bus
        self.interval_s = interval_s
        self.states: dict[str, SymbolState] = {
            s.asset.symbol: s for s in provider.initial_state(datetime.now(UTC))
        }
        self.last_tick_monotonic: float | None = None
        self.last_tick_at: datetime | None = None
        self.stalled = False  # fault injection: the feed stops producing
        self.runs_feed = True  # False on scale-out followers
        self.commit: TickCommit | None = None  # set in scale-out mode
        # set in scale-out mode: why quotes cannot be trusted right now (None: they can)
        self.halt_reason: Callable[[], str | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[TickListener] = []
        self.counts = FeedCounts()
        self.max_catch_up_steps = max(1, math.ceil(MAX_CATCH_UP_S / interval_s))
        # schedule lag of each step (production time minus scheduled time), e.g. a histogram
        self.lag_observer: Callable[[float], None] | None = None
        self.last_step_lag_s = 0.0
        self._next_due: float | None = None  # loop time the next step is due (while running)
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self, symbol: str) -> SymbolState | None:
        asset = find_asset(symbol)
        return self.states.get(asset.symbol) if asset else None

    def add_listener(self, listener: TickListener) -> None:
        """Called after each batch of ticks is applied (the trading engine fills orders here)."""
        self._listeners.append(listener)

    def feed_age_s(self) -> float | None:
        if self.last_tick_monotonic is None:
            return None
        return time.monotonic() - self.last_tick_monotonic

    def schedule_lag_s(self) -> float | None:
        """How late the feed is: the lag of its last step, or longer if the next step is
        overdue now. None when this process does not run the feed."""
        if self._task is None or self._next_due is None or self._loop is None:
            return None
        overdue = self._loop.time() - self._next_due
        return max(self.last_step_lag_s, overdue, 0.0)

    def trading_halted(self) -> str | None:
        """Why orders must not be matched against these quotes now, or None."""
        return self.halt_reason() if self.halt_reason is not None else None

    async def apply(self, ticks: list[Tick], publish: bool = True) -> None:
        applied = []
        for tick in ticks:
            state = self.states.get(tick.symbol)
            if state is None or (tick.epoch, tick.seq) <= (state.epoch, state.seq):
                continue  # unknown symbol, or a replayed tick or one from a former feed leader
            state.apply(tick)
            applied.append(tick)
            if publish:
                self._bus.publish(tick)
        if not applied:
            return
        self.last_tick_monotonic = time.monotonic()
        self.last_tick_at = datetime.now(UTC)
        for listener in self._listeners:
            try:
                await listener(applied)
            except Exception:
                log.exception("tick listener failed")

    def resume_feed(self, seq: int) -> None:
        """Make this process's feed continue from the current market (scale-out leadership)."""
        known = max([seq, *(s.seq for s in self.states.values())])
        self._provider.resume(self.states.values(), known)

    def start(self) -> None:
        if self.runs_feed and self._task is None:
            self._task = asyncio.create_task(self._run(), name="market-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        """Fixed-rate schedule: step ``k`` is due at ``start + k * interval``, whatever the
        previous steps cost. A late feed produces the missed steps back to back, up to
        ``max_catch_up_steps``; older ones are skipped (counted). Each step's ticks carry the
        step's scheduled time, so a late tick shows its lateness to whoever receives it.

        The schedule runs on the loop's monotonic clock; a step's time on the wall clock is its
        due time plus the wall clock's offset from the monotonic clock, read afresh at each
        step, so a wall clock that NTP slews or steps moves the stamps with it instead of
        drifting away from it over the process's life. Changes of the offset under
        ``WALL_JITTER_S`` are taken for reading jitter and ignored, so the stamps stay evenly
        spaced. (``time.monotonic()``, not ``loop.time()``, beside ``time.time()``: uvloop's
        loop time is cached per iteration, in milliseconds.)"""
        loop = self._loop = asyncio.get_running_loop()
        interval = self.interval_s
        counts = self.counts
        start = loop.time()
        wall_offset = time.time() - time.monotonic()
        k = 0  # the next step
        try:
            while True:
                due_at = start + k * interval
                self._next_due = due_at
                now = loop.time()
                if now < due_at:
                    await asyncio.sleep(due_at - now)
                    continue
                behind = math.floor((now - start) / interval + 1e-9) + 1 - k  # steps due
                if behind > self.max_catch_up_steps:
                    skip = behind - self.max_catch_up_steps
                    counts.scheduled += skip
                    counts.skipped += skip
                    k += skip
                    due_at = start + k * interval
                lag = now - due_at
                self.last_step_lag_s = lag
                if self.lag_observer is not None:
                    self.lag_observer(lag)
                k += 1
                if self.stalled:
                    counts.scheduled += 1
                    counts.skipped += 1
                    continue
                offset = time.time() - time.monotonic()
                if abs(offset - wall_offset) > WALL_JITTER_S:
                    wall_offset = offset  # the wall clock was adjusted
                await self._step(datetime.fromtimestamp(due_at + wall_offset, UTC))
                if loop.time() >= start + k * interval:
                    await asyncio.sleep(0)  # catching up: let the writers run between steps
        finally:
            self._next_due = None

    async def _step(self, at: datetime) -> None:
        ticks: list[Tick] | None = self._provider.step(at)
        if self.commit is not None and ticks:
            ticks = await self.commit(ticks)  # scale-out: the cluster first, then us
            if ticks is None:
                self.counts.scheduled += 1  # counted with its outcome: the sum always holds
                self.counts.unpublished += 1
                return
        if ticks:
            await self.apply(ticks)
        self.counts.scheduled += 1
        self.counts.produced += 1
