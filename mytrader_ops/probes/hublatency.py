"""Open-model hub round trips: invocations at a constant rate on one session, timed to completion.

Invocations are multiplexed on one connection, so a slow reply never delays the next send:
each send goes out on schedule and its latency counts from that send to its Completion.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

from mytrader_ops.config import HubLatencyCheck
from mytrader_ops.probes.context import ProbeContext, describe_error
from mytrader_ops.probes.hubsession import HubAuth, HubError, HubSession
from mytrader_ops.stats import LatencyHistogram


@dataclass(slots=True)
class HubLatencyResult:
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    scheduled: int = 0
    completions: int = 0
    errors: int = 0
    late: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    unavailable: str | None = None


async def sample_hub_latency(
    ctx: ProbeContext, check: HubLatencyCheck, duration_s: float, late_after_ms: float = 10.0
) -> HubLatencyResult:
    result = HubLatencyResult()
    auth = HubAuth()
    if check.auth:
        token, reason = await ctx.token()
        if token is None:
            result.unavailable = reason
            return result
        auth = HubAuth(token)
    try:
        async with asyncio.timeout(check.timeout_s):
            session = await HubSession.open(ctx, check.path, auth)
    except HubError as exc:
        result.unavailable = f"{exc.step}: {exc.detail}"
        return result
    except TimeoutError:
        result.unavailable = f"session did not open within {check.timeout_s:g} s"
        return result
    except Exception as exc:
        result.unavailable = describe_error(exc)
        return result
    count = max(1, int(duration_s * check.rate))
    tasks: set[asyncio.Task[None]] = set()
    t0 = time.perf_counter() + 0.05

    async def one(due: float) -> None:
        result.scheduled += 1
        sent = time.perf_counter()
        if sent - due > late_after_ms / 1000:
            result.late += 1
        try:
            async with asyncio.timeout(check.timeout_s):
                reply = await session.invoke(check.invoke.target, list(check.invoke.arguments))
            result.histogram.record_ms((time.perf_counter() - sent) * 1000)
            if reply.get("error"):
                result.errors += 1
                result.error_kinds[f"error completion: {str(reply['error'])[:60]}"] += 1
            else:
                result.completions += 1
        except TimeoutError:
            result.histogram.record_ms((time.perf_counter() - sent) * 1000)
            result.errors += 1
            result.error_kinds[f"no completion within {check.timeout_s:g} s"] += 1
        except HubError as exc:
            result.errors += 1
            result.error_kinds[f"{exc.step}: {exc.detail}"[:80]] += 1

    try:
        for i in range(count):
            due = t0 + i / check.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks), timeout=check.timeout_s + 1)
    finally:
        for task in list(tasks):
            task.cancel()
        for task in list(tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await session.close()
    return result
