"""The running market: applies ticks to the quote cache, publishes them, tracks freshness.

In the embedded default this process runs the feed. With scale-out, one process (the leader)
runs it and the others apply the ticks they receive; either way ``apply`` is the single entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from mytrader_server.events import EventBus, Tick
from mytrader_server.market.feed import MarketDataProvider, SymbolState
from mytrader_server.market.universe import find_asset

log = logging.getLogger(__name__)

TickListener = Callable[[list[Tick]], Awaitable[None]]
# Publishes a feed step to the other processes before this one applies it; returns the ticks as
# published, or None when they were not (this process lost its lease or cannot reach Redis).
TickCommit = Callable[[list[Tick]], Awaitable[list[Tick] | None]]


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
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self.interval_s
            if not self.stalled:
                ticks: list[Tick] | None = self._provider.step(datetime.now(UTC))
                if self.commit is not None and ticks:
                    ticks = await self.commit(ticks)  # scale-out: the cluster first, then us
                if ticks:
                    await self.apply(ticks)
            delay = next_at - loop.time()
            if delay < 0:  # fell behind: skip the missed slots rather than burst
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)
