"""Open-model SLA sampler: constant-rate sends, latency from the intended send time.

Each endpoint gets its own schedule (send i is due at t0 + i / rate) whatever the target
is doing, so a stall is measured instead of avoided (no coordinated omission, cf. wrk2).
Requests wait for a pooled keep-alive connection; a send that goes out more than
`late_after_ms` after its due time is counted late, one that could not go out before its
deadline is dropped (an error). Timed-out requests are recorded at their full latency.
Refused/reset connections are errors but add no latency sample (they would flatter it).

A caller may watch the streams while they run and move the end (`SamplingControl`): stop a
stream that is already decisive, or let a marginal one run on (validate's sequential
sampling). The schedule itself never changes: only where it ends.

The sampler watches itself: its scheduling lag when a connection was free (which also bounds
how late it processed replies) and its CPU use. A CPU-bound sampler, or one whose lag is a
large share of a latency limit, cannot pass a latency criterion (see evaluate.judge_latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field

from mytrader_ops.probes.httpwire import (
    Connection,
    Origin,
    StaleConnection,
    WireError,
    build_request,
)
from mytrader_ops.stats import LatencyHistogram, LatencySummary

MAX_CPU_SHARE = 0.80
IDLE_MAX_S = 2.0
SWEEP_S = 0.02
TIMER_GRAIN_S = 0.001


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One sampled endpoint."""

    path: str
    headers: dict[str, str] = field(default_factory=dict)
    watch_ms: tuple[float, ...] = ()  # latency limits whose exceedances are counted live


@dataclass(slots=True)
class StreamResult:
    path: str
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    scheduled: int = 0
    completed: int = 0  # sends with an outcome (a response, an error, a timeout, a drop)
    responses: int = 0
    errors: int = 0
    late: int = 0
    dropped: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class SamplingControl:
    """Watch a running sampler and move its end (sequential sampling).

    The sampler fills `live` (its StreamResults, updated as outcomes arrive) and `started_at`
    (perf_counter time of the first due send). No send is scheduled at or after `end_at`, and
    none for a stream named in `stopped`; the caller may change both while it runs.
    """

    end_at: float = math.inf
    stopped: set[str] = field(default_factory=set)
    live: dict[str, StreamResult] = field(default_factory=dict)
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class SamplerHealth:
    """How much the sampler itself may have distorted the run."""

    valid: bool
    note: str
    lag_p95_ms: float
    lag_p99_ms: float
    cpu_us_per_request: float
    cpu_share: float


@dataclass(slots=True)
class SamplerResult:
    streams: dict[str, StreamResult]
    health: SamplerHealth
    duration_s: float
    rate: float

    def total(self) -> tuple[int, int]:
        """(requests judged, errors) over every stream: each scheduled send counts once."""
        n = sum(s.scheduled for s in self.streams.values())
        return n, sum(s.errors for s in self.streams.values())


class _Deadlines:
    """One timer for every in-flight request: a sweeper cancels requests past their deadline.

    An ``asyncio.timeout`` per request puts a timer handle in the loop's heap for every send;
    at 2000 requests/s that bookkeeping was the largest avoidable share of the sampler's CPU.
    Deadlines are enforced to within ``SWEEP_S``.
    """

    def __init__(self) -> None:
        self.inflight: dict[asyncio.Task[None], float] = {}
        self.expired: set[asyncio.Task[None]] = set()

    async def sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.perf_counter()
            for task, deadline in list(self.inflight.items()):
                if now >= deadline and task not in self.expired:
                    self.expired.add(task)
                    task.cancel()


class _Pool:
    def __init__(self, origin: Origin, ssl_context: ssl.SSLContext | None, size: int) -> None:
        self.origin = origin
        self.ssl_context = ssl_context
        self.idle: list[Connection] = []
        self.slots = asyncio.Semaphore(size)

    def free_now(self) -> bool:
        return not self.slots.locked()

    async def get(self) -> Connection:
        # Most recently used first; connections idle for longer than IDLE_MAX_S are closed
        # before a server's keep-alive timeout (commonly 5 s) can race a request on them.
        now = time.perf_counter()
        while self.idle:
            conn = self.idle.pop()
            if now - conn.idle_since < IDLE_MAX_S:
                return conn
            conn.close()
        return await Connection.open(self.origin, self.ssl_context)

    def put(self, conn: Connection) -> None:
        if conn.reusable:
            conn.idle_since = time.perf_counter()
            self.idle.append(conn)

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


async def _one(
    pool: _Pool,
    raw: bytes,
    due: float,
    deadline_s: float,
    late_after_s: float,
    result: StreamResult,
    lag: LatencyHistogram,
    deadlines: _Deadlines,
) -> None:
    result.scheduled += 1
    deadline = due + deadline_s
    free = not pool.slots.locked()
    if free:
        await pool.slots.acquire()  # returns at once: no timer needed on the fast path
    else:
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                await pool.slots.acquire()
        except TimeoutError:
            result.completed += 1
            result.dropped += 1
            result.errors += 1
            result.error_kinds["dropped: no free connection before the deadline"] += 1
            return
    conn: Connection | None = None
    sent = time.perf_counter()
    # A send whose connection was free at its due time was delayed only by the sampler's own
    # timer (the event loop rounds timers to whole milliseconds): that overshoot is measured as
    # lag and excluded. A send that waited for a busy connection was delayed by the target,
    # and its latency counts from the due time (no coordinated omission).
    start = sent if free else due
    try:
        if free:
            lag.record_ms(max(0.0, sent - due) * 1000)
        if sent - due > late_after_s:
            result.late += 1
        task = asyncio.current_task()
        assert task is not None
        deadlines.inflight[task] = deadline
        try:
            conn = await pool.get()
            try:
                status, _size = await conn.request(raw)
            except StaleConnection:
                conn = await Connection.open(pool.origin, pool.ssl_context)
                status, _size = await conn.request(raw)
        except asyncio.CancelledError:
            if task not in deadlines.expired:
                raise  # cancelled by the caller, not by our deadline
            task.uncancel()
            raise TimeoutError from None
        finally:
            deadlines.inflight.pop(task, None)
            deadlines.expired.discard(task)
        result.histogram.record_ms((time.perf_counter() - start) * 1000)
        result.completed += 1
        result.responses += 1
        result.statuses[status] += 1
        if status >= 400:
            result.errors += 1
            result.error_kinds[f"HTTP {status}"] += 1
        pool.put(conn)
        conn = None
    except TimeoutError:
        result.histogram.record_ms((time.perf_counter() - start) * 1000)
        result.completed += 1
        result.errors += 1
        result.error_kinds[f"timeout after {deadline_s:g} s"] += 1
    except (OSError, WireError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        result.completed += 1
        result.errors += 1
        result.error_kinds[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
    finally:
        if conn is not None:
            conn.close()
        pool.slots.release()


async def cancel_all(tasks: set[asyncio.Task[None]]) -> None:
    """Cancel the sends still in flight when sampling ends, and wait for each to unwind."""
    for task in list(tasks):
        task.cancel()
    for task in list(tasks):
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _loop_time(perf_deadline: float) -> float:
    """Convert a perf_counter deadline to the running loop's clock."""
    return asyncio.get_running_loop().time() + (perf_deadline - time.perf_counter())


async def run_sampler(
    base_url: str,
    streams: list[StreamSpec],
    *,
    rate: float,
    duration_s: float,
    max_connections: int = 32,
    request_timeout_s: float = 5.0,
    late_after_ms: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    lag_limit_ms: float = 1000.0,
    control: SamplingControl | None = None,
    start_offset_s: float = 0.0,
) -> SamplerResult:
    """Sample every stream at `rate` per second for `duration_s` (or until `control` ends it);
    never raises for the target."""
    origin = Origin.parse(base_url)
    lag = LatencyHistogram()
    results = {s.path: StreamResult(s.path) for s in streams}
    for spec in streams:
        for limit in spec.watch_ms:
            results[spec.path].histogram.watch(limit)
    pools = {s.path: _Pool(origin, ssl_context, max_connections) for s in streams}
    tasks: set[asyncio.Task[None]] = set()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    t0 = wall0 + 0.05 + start_offset_s  # an offset interleaves two samplers' schedules
    control = control or SamplingControl()
    control.live, control.started_at = results, t0
    if math.isinf(control.end_at):
        # at least one send, as before: a duration shorter than one period still samples once
        control.end_at = t0 + max(duration_s, 0.5 / rate)
    plan = [
        (spec, build_request(origin, spec.path, {"Accept": "application/json", **spec.headers}))
        for spec in streams
    ]
    stagger = 1 / (rate * len(plan))
    late_after_s = late_after_ms / 1000

    async def schedule() -> None:
        # One timeline for every stream, streams staggered within each period; it ends where
        # the control says, which the caller may move while it runs.
        i = 0
        while t0 + i / rate < control.end_at:
            if all(spec.path in control.stopped for spec, _raw in plan):
                return
            for k, (spec, raw) in enumerate(plan):
                if spec.path in control.stopped:
                    continue
                due = t0 + i / rate + k * stagger
                delay = due - time.perf_counter()
                if delay > TIMER_GRAIN_S:
                    # asyncio's timers resolve to about a millisecond: sleeping for less costs
                    # a wake-up and buys no precision, so sends due within it go out together.
                    await asyncio.sleep(delay)
                if due >= control.end_at or spec.path in control.stopped:
                    continue  # moved while we slept
                task = asyncio.create_task(
                    _one(
                        pools[spec.path],
                        raw,
                        due,
                        request_timeout_s,
                        late_after_s,
                        results[spec.path],
                        lag,
                        deadlines,
                    )
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            i += 1

    deadlines = _Deadlines()
    sweeper = asyncio.create_task(deadlines.sweep())
    try:
        await schedule()
        if tasks:
            await asyncio.wait(set(tasks), timeout=request_timeout_s + 1)
    finally:
        await cancel_all(tasks)
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        for pool in pools.values():
            pool.close()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    sends = sum(r.scheduled for r in results.values())
    health = judge_sampler(lag.summary(), cpu, wall, sends, lag_limit_ms)
    sampled_s = min(control.end_at, time.perf_counter()) - t0
    return SamplerResult(results, health, max(0.0, sampled_s), rate)


def judge_sampler(
    lag: LatencySummary, cpu_s: float, wall_s: float, sends: int, lag_limit_ms: float
) -> SamplerHealth:
    """Pure: was the sampler, not the target, the bottleneck?

    Invalid when CPU-bound or grossly behind schedule; smaller lags are weighed per criterion
    against its limit (evaluate.judge_latency).
    """
    per_request = cpu_s / sends * 1e6 if sends else 0.0
    share = cpu_s / wall_s if wall_s > 0 else 0.0
    lag_p95 = lag.p95_ms if lag.count else 0.0
    lag_p99 = lag.p99_ms if lag.count else 0.0
    note = (
        f"own scheduling lag p95 {lag_p95:.2f} ms, p99 {lag_p99:.2f} ms; "
        f"CPU {per_request:.0f} us/request, {share * 100:.0f}% of one core"
    )
    if lag.count and lag_p99 > lag_limit_ms:
        return SamplerHealth(
            False, f"sampler far behind its schedule: {note}", lag_p95, lag_p99, per_request, share
        )
    if share > MAX_CPU_SHARE:
        return SamplerHealth(
            False, f"sampler CPU-bound: {note}", lag_p95, lag_p99, per_request, share
        )
    return SamplerHealth(True, note, lag_p95, lag_p99, per_request, share)
