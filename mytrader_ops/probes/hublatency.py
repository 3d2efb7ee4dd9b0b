"""Open-model hub round trips: invocations at a constant rate, timed to completion, with the
same error accounting as the HTTP sampler.

Invocations are multiplexed on one connection, so a slow reply never delays the next send:
each send goes out on schedule and its latency counts from that send to its Completion.
Every scheduled invocation gets exactly one outcome: completed, an error completion, no
completion within the timeout, or failed because the connection was gone. When the target
drops the connection the sampler records how (close code, reason, SignalR Close error) and
reconnects at most once a second, as a real client would; invocations due meanwhile fail.
A failure is the target's doing, so it is counted against the target, never dropped from
the sample. The sampler measures its own scheduling lag and CPU share, judged by the HTTP
sampler's rules (`probes.sampler.judge_sampler`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field

from mytrader_ops.config import HubLatencyCheck
from mytrader_ops.probes.context import ProbeContext, describe_error
from mytrader_ops.probes.hubsession import HubAuth, HubError, HubSession, hub_auth
from mytrader_ops.probes.sampler import (
    SamplerHealth,
    SamplingControl,
    cancel_all,
    judge_sampler,
)
from mytrader_ops.stats import LatencyHistogram

RECONNECT_EVERY_S = 1.0


@dataclass(slots=True)
class HubLatencyResult:
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    scheduled: int = 0
    completed: int = 0  # invocations with an outcome, whatever it was
    completions: int = 0  # answered by a non-error Completion
    errors: int = 0  # error completions, timeouts, invocations without a connection
    late: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    drops: Counter[str] = field(default_factory=Counter)  # connections lost, by how
    reconnects: int = 0
    lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    health: SamplerHealth | None = None
    sampled_s: float = 0.0
    unavailable: str | None = None
    missing: bool = False  # unavailable for want of credentials, not the hub's failure


class _Link:
    """The current session, and a bounded way back when the target drops it."""

    def __init__(self, ctx: ProbeContext, check: HubLatencyCheck, auth: HubAuth) -> None:
        self.ctx, self.check, self.auth = ctx, check, auth
        self.session: HubSession | None = None
        self.noted: set[int] = set()
        self.reconnecting: asyncio.Task[None] | None = None
        self.last_attempt = -math.inf

    async def open(self) -> HubSession:
        async with asyncio.timeout(self.check.timeout_s):
            return await HubSession.open(self.ctx, self.check.path, self.auth)

    def usable(self, result: HubLatencyResult) -> HubSession | None:
        session = self.session
        if session is not None and session.is_open:
            return session
        if session is not None and id(session) not in self.noted:
            self.noted.add(id(session))
            result.drops[session.end_description()] += 1
        now = time.perf_counter()
        idle = self.reconnecting is None or self.reconnecting.done()
        if idle and now - self.last_attempt >= RECONNECT_EVERY_S:
            self.last_attempt = now
            self.reconnecting = asyncio.create_task(self._reconnect(result))
        return None

    async def _reconnect(self, result: HubLatencyResult) -> None:
        try:
            fresh = await self.open()
        except HubError as exc:
            result.error_kinds[f"reconnect: {exc.step}: {exc.detail}"[:80]] += 1
            return
        except TimeoutError:
            result.error_kinds["reconnect: no session within the timeout"] += 1
            return
        except Exception as exc:  # a damaged answer (httpx, websockets): the target's doing
            result.error_kinds[f"reconnect: {describe_error(exc)}"[:80]] += 1
            return
        old, self.session = self.session, fresh
        result.reconnects += 1
        if old is not None:
            with contextlib.suppress(Exception):
                await old.abort()

    async def close(self) -> None:
        if self.reconnecting is not None:
            self.reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reconnecting
        if self.session is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await self.session.close()


async def sample_hub_latency(
    ctx: ProbeContext,
    check: HubLatencyCheck,
    duration_s: float,
    late_after_ms: float = 10.0,
    *,
    control: SamplingControl | None = None,
    result: HubLatencyResult | None = None,
    start_offset_s: float = 0.0,
) -> HubLatencyResult:
    """Invoke at `check.rate` for `duration_s` (or until `control` ends it). Pass `result`
    to watch it fill while it runs."""
    result = result if result is not None else HubLatencyResult()
    auth = HubAuth()
    if check.auth:
        got, reason, failed = await hub_auth(ctx)
        if got is None:
            result.unavailable, result.missing = reason, not failed
            return result
        auth = got
    link = _Link(ctx, check, auth)
    try:
        link.session = await link.open()
    except HubError as exc:
        result.unavailable = f"{exc.step}: {exc.detail}"
        return result
    except TimeoutError:
        result.unavailable = f"session did not open within {check.timeout_s:g} s"
        return result
    except Exception as exc:
        result.unavailable = describe_error(exc)
        return result
    tasks: set[asyncio.Task[None]] = set()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    t0 = wall0 + 0.05 + start_offset_s  # an offset interleaves two samplers' schedules
    control = control or SamplingControl()
    control.started_at = t0
    if math.isinf(control.end_at):
        control.end_at = t0 + max(duration_s, 0.5 / check.rate)

    def fail(kind: str) -> None:
        result.completed += 1
        result.errors += 1
        result.error_kinds[kind[:80]] += 1

    async def one(due: float) -> None:
        result.scheduled += 1
        sent = time.perf_counter()
        result.lag.record_ms(max(0.0, sent - due) * 1000)
        if sent - due > late_after_ms / 1000:
            result.late += 1
        session = link.usable(result)
        if session is None:
            fail("no connection (the target dropped it; reconnecting)")
            return
        try:
            async with asyncio.timeout(check.timeout_s):
                reply = await session.invoke(check.invoke.target, list(check.invoke.arguments))
        except TimeoutError:
            result.histogram.record_ms((time.perf_counter() - sent) * 1000)
            fail(f"no completion within {check.timeout_s:g} s")
            return
        except HubError as exc:
            fail(f"{exc.step}: {exc.detail}")
            return
        result.histogram.record_ms((time.perf_counter() - sent) * 1000)
        if reply.get("error"):
            fail(f"error completion: {str(reply['error'])[:60]}")
        else:
            result.completed += 1
            result.completions += 1

    try:
        i = 0
        while (due := t0 + i / check.rate) < control.end_at and check.id not in control.stopped:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if due >= control.end_at or check.id in control.stopped:
                break  # moved while we slept
            task = asyncio.create_task(one(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.wait(set(tasks), timeout=check.timeout_s + 1)
    finally:
        await cancel_all(tasks)
        if link.session is not None and not link.session.is_open:
            link.usable(result)  # record a drop seen only at the end
        await link.close()
    wall = time.perf_counter() - wall0
    result.health = judge_sampler(
        result.lag.summary(), time.process_time() - cpu0, wall, result.scheduled, 1000.0
    )
    result.sampled_s = max(0.0, min(control.end_at, time.perf_counter()) - t0)
    return result
