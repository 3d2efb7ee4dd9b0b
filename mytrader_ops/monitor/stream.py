"""The market-data stream the monitor keeps open for the whole watch.

One anonymous session on the market-data hub, subscribed to a symbol; every push's arrival
time is recorded so that each window can time the gaps (`windows.find_gaps`). A dropped
session is reopened after a pause; the time it was down is part of the gap it caused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from mytrader_ops.probes.context import ProbeContext
from mytrader_ops.probes.hubsession import HubAuth, HubError, HubSession

RECONNECT_PAUSE_S = 1.0
MAX_ARRIVALS = 100_000  # bounded even if windows stop draining


class StreamWatcher:
    def __init__(
        self,
        ctx: ProbeContext,
        path: str = "/hubs/market-data",
        symbol: str = "AAPL",
        open_timeout_s: float = 5.0,
    ) -> None:
        self.ctx = ctx
        self.path = path
        self.symbol = symbol
        self.open_timeout_s = open_timeout_s
        self.arrivals: list[float] = []
        self.last_arrival: float | None = None
        self.connected = False
        self.last_error = ""
        self._previous: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def drain(self, until: float) -> tuple[list[float], float | None, bool]:
        """Arrivals up to `until` (removed), the last arrival before them, and whether the
        session was up at the end of the window."""
        taken = [t for t in self.arrivals if t <= until]
        self.arrivals = [t for t in self.arrivals if t > until]
        before = self._previous
        if taken:
            self._previous = taken[-1]
        return taken, before, self.connected

    async def _session(self) -> None:
        async with asyncio.timeout(self.open_timeout_s):
            session = await HubSession.open(self.ctx, self.path, HubAuth())
        try:
            async with asyncio.timeout(self.open_timeout_s):
                reply = await session.invoke("SubscribeToSymbols", [[self.symbol]])
            if reply.get("error"):
                raise HubError("subscribe", str(reply["error"])[:120])
            self.connected = True
            while True:
                await session.next_push("ReceiveMarketData")
                now = time.time()
                self.last_arrival = now
                if len(self.arrivals) < MAX_ARRIVALS:
                    self.arrivals.append(now)
        finally:
            self.connected = False
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await session.close()

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except HubError as exc:
                self.last_error = f"{exc.step}: {exc.detail}"[:160]
            except TimeoutError:
                self.last_error = f"no session within {self.open_timeout_s:g} s"
            except Exception as exc:  # the watch goes on; the gap is the evidence
                self.last_error = f"{type(exc).__name__}: {exc}"[:160]
            self.connected = False
            await asyncio.sleep(RECONNECT_PAUSE_S)
