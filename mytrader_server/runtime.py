"""The process's own health: event-loop lag, garbage-collection pauses, and keeping the cyclic
collector's full passes off the hub hot path (issue 14).

- **Event-loop lag**: a task sleeps ``sample_s`` (``MYTRADER_LOOP_SAMPLE_S``, default 100 ms)
  and records how much later than asked it woke up (one timer per process; the cost is one
  wake-up per period). Any pause of the loop longer than ``sample_s + x`` covers a wake-up and
  shows as a sample over ``x``; a sample over ``x`` is a pause of at least ``x``.
- **GC pauses**: a ``gc.callbacks`` hook times every collection by generation.
- **Re-freezing**: ``gc.freeze()`` at start-up covers only start-up objects. Every hub
  connection keeps ~120 tracked objects for its whole life, and a full (generation 2) collection
  walks all of them: at 1000 connections ~100 ms every ~13 s. Once the connection count has
  grown by ``REFREEZE_MIN_NEW`` (or 10 %) and has been stable for one sampling period, the
  monitor freezes again, moving the settled connections into the permanent generation, which
  collections skip. Frozen objects are still freed by reference counting as usual; only
  reference *cycles* among them wait for the next ``unfreeze``: every ``FULL_PASS_S`` the
  monitor unfreezes, collects and freezes again (one full pause an hour instead of one every few
  seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from typing import Any, Final

from mytrader_server.metrics import Metrics

SETTLE_CHECK_S: Final = 2.0
REFREEZE_MIN_NEW: Final = 100
FULL_PASS_S: Final = 3600.0


class RuntimeMonitor:
    def __init__(
        self, metrics: Metrics, connections: Callable[[], int], sample_s: float = 0.1
    ) -> None:
        self._metrics = metrics
        self._sample_s = sample_s
        self._connections = connections
        self._gc_children = [metrics.gc_pause.labels(str(g)) for g in range(3)]
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None
        self.freezes = 0
        self.frozen_at_connections = 0
        self._last_seen = 0
        self._last_full_pass = time.monotonic()

    # ---- garbage collection ------------------------------------------------------------------

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self._gc_children[info.get("generation", 2)].observe(
                time.perf_counter() - self._gc_started
            )
            self._gc_started = 0.0

    def freeze(self) -> None:
        """Move every object alive now into the permanent generation."""
        gc.freeze()
        self.freezes += 1
        self.frozen_at_connections = self._connections()
        self._metrics.gc_frozen.set(gc.get_freeze_count())

    def _maybe_refreeze(self) -> None:
        now_conns = self._connections()
        settled = now_conns == self._last_seen
        self._last_seen = now_conns
        grown = now_conns - self.frozen_at_connections
        if time.monotonic() - self._last_full_pass >= FULL_PASS_S:
            self._last_full_pass = time.monotonic()
            gc.unfreeze()  # let cycles among long-lived objects be found, once in a while
            gc.collect()
            self.freeze()
        elif settled and grown >= max(REFREEZE_MIN_NEW, self.frozen_at_connections // 10):
            self.freeze()
        elif now_conns < self.frozen_at_connections:
            self.frozen_at_connections = now_conns  # closed ones left; count growth from here

    # ---- the sampler -------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        lag = self._metrics.loop_lag
        lag_now = self._metrics.loop_lag_now
        next_settle = loop.time() + SETTLE_CHECK_S
        while True:
            asked = loop.time() + self._sample_s
            await asyncio.sleep(self._sample_s)
            now = loop.time()
            late = max(0.0, now - asked)
            lag.observe(late)
            lag_now.set(late)
            if now >= next_settle:
                next_settle = now + SETTLE_CHECK_S
                self._maybe_refreeze()

    def start(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        self.freeze()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="runtime")

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
