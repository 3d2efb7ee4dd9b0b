"""The watch: windows on a fixed schedule, evaluated in order, checkpointed one by one.

Window k is due at `start + k * interval` whatever the previous window is doing (a slow
target does not stretch the schedule: the open-model rule applied to windows). Each window
ends as one summary: appended to the bounded history the triggers read, added to the running
totals, handed to the observers (dashboard, JSON line, exporter) and committed to the store.
The watch ends at its deadline, or at the first trigger that fires (with `on_fire:
keep-watching`, only at its deadline: the first trigger that fired still decides the exit code).

On `--resume` the schedule is the original one: windows that fell while the monitor was
not running are recorded as missing (no data: never healthy), and watching continues at the
next window due. The missing windows are watched and blind for every trigger: they count
against each trigger's evidence coverage (monitor/coverage.py), rebuilt from the stored
windows by the same fold as the trigger states.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from mytrader_ops.config import AuthSpec, Credentials
from mytrader_ops.monitor.aggregate import Totals
from mytrader_ops.monitor.collect import CollectSettings, CollectState, collect_window
from mytrader_ops.monitor.coverage import CoverageBoard, EvidenceFinding, judge_board
from mytrader_ops.monitor.rules import to_window
from mytrader_ops.monitor.settings import (
    CRITICAL_PHASE_S,
    DEFAULT_COVERAGE_FLOOR,
    Phase,
    Thresholds,
)
from mytrader_ops.monitor.store import WatchStore
from mytrader_ops.monitor.stream import StreamWatcher
from mytrader_ops.monitor.triggers import AnyTrigger, TriggerBoard, TriggerStatus
from mytrader_ops.monitor.windows import WindowSummary, missing_window
from mytrader_ops.probes.context import open_context
from mytrader_ops.redaction import Redactor
from mytrader_ops.stats import LatencyHistogram

Ending = Literal["deadline", "fired"]


@dataclass(frozen=True, slots=True)
class WatchPlan:
    watch_id: str
    target: str
    frontend: str | None
    env_name: str
    credentials: Credentials
    tls_verify: bool
    ca_file: str | None
    phase: Phase
    start_s: float
    deadline_s: float
    collect: CollectSettings
    triggers: tuple[AnyTrigger, ...]
    thresholds: Thresholds
    stream: bool = True
    follow_redirects: bool = False  # the environment's setting, as validate honours it
    auth: AuthSpec | None = None  # the environment's auth: block (default: login)
    coverage_floor: float = DEFAULT_COVERAGE_FLOOR
    resumed: bool = False  # continuing a stored watch: windows already due were missed
    stop_on_fire: bool = True  # False (on_fire: keep-watching): watch on; pages can resolve

    @property
    def interval_s(self) -> float:
        return self.collect.interval_s

    @property
    def window_count(self) -> int:
        return max(1, math.ceil((self.deadline_s - self.start_s) / self.interval_s - 1e-9))

    def window_start(self, index: int) -> float:
        return self.start_s + index * self.interval_s


class Observer(Protocol):
    def window(
        self,
        w: WindowSummary,
        states: Sequence[TriggerStatus],
        totals: Totals,
        evidence: Sequence[EvidenceFinding],
    ) -> None: ...


@dataclass(slots=True)
class WatchResult:
    ending: Ending
    states: list[TriggerStatus]
    fired: TriggerStatus | None
    fired_window: WindowSummary | None
    totals: Totals
    hist_all: LatencyHistogram
    hist_critical: LatencyHistogram
    last_index: int
    coverage: CoverageBoard
    evidence: list[EvidenceFinding]  # each trigger's coverage judged (coverage.py rule 5)
    board: TriggerBoard


def new_totals(plan: WatchPlan) -> Totals:
    return Totals(CRITICAL_PHASE_S, plan.thresholds.api_p95_ms, plan.start_s)


def _grace_s(plan: WatchPlan) -> float:
    c = plan.collect
    return plan.interval_s + c.request_timeout_s + 3 * c.probe_timeout_s + 10


def _stop_if_cancelled() -> None:
    """End the watch when a stop was requested (SIGTERM or Ctrl-C cancel the main task).

    Python 3.11's ``asyncio.wait_for`` swallows a cancel that lands just as its awaitable
    finishes; the request stays visible in ``cancelling()``, so it is honoured here, at the
    next window, instead of the watch running on to its deadline.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _bounded(
    task: asyncio.Task[tuple[WindowSummary, LatencyHistogram]], plan: WatchPlan
) -> tuple[WindowSummary, LatencyHistogram] | None:
    """A window that cannot finish (a bug, a wedged socket) becomes a missing window: the
    watch never hangs, and missing data is never read as healthy."""
    try:
        return await asyncio.wait_for(task, _grace_s(plan))
    except TimeoutError:
        return None


async def run_watch(
    plan: WatchPlan,
    store: WatchStore,
    redactor: Redactor,
    observers: Sequence[Observer],
    prior: Sequence[WindowSummary] = (),
    hist_all: LatencyHistogram | None = None,
    hist_critical: LatencyHistogram | None = None,
) -> WatchResult:
    """Watch until the deadline or the first firing trigger; never raises for the target."""
    hist_all = hist_all or LatencyHistogram()
    hist_critical = hist_critical or LatencyHistogram()
    board = TriggerBoard.start(plan.triggers)
    coverage = CoverageBoard.start((t.id for t in plan.triggers), plan.interval_s)
    totals = new_totals(plan)

    def advance(w: WindowSummary) -> list[TriggerStatus]:
        nonlocal board, coverage
        board = board.advance(to_window(w))
        states = [board.statuses[t.id] for t in plan.triggers]
        coverage = coverage.advance(
            w.index, {st.trigger_id: st.evidence[-1].verdict for st in states if st.evidence}
        )
        totals.add(w)
        return states

    def judged() -> list[EvidenceFinding]:
        return judge_board(plan.triggers, coverage, plan.coverage_floor)

    states = [board.statuses[t.id] for t in plan.triggers]
    for w in prior:
        states = advance(w)
    first = (prior[-1].index + 1) if prior else 0
    now_index = math.floor((time.time() - plan.start_s) / plan.interval_s)

    def record(w: WindowSummary, hist: LatencyHistogram | None) -> list[TriggerStatus]:
        if hist is not None:
            hist_all.merge(hist)
            if w.start_s - plan.start_s < CRITICAL_PHASE_S:
                hist_critical.merge(hist)
        found = advance(w)
        store.checkpoint(plan.watch_id, w, hist_all.encode(), hist_critical.encode())
        evidence = judged()
        for obs in observers:
            obs.window(w, found, totals, evidence)
        return found

    last = first - 1
    already = next((st for st in states if st.state == "firing"), None)
    if already is not None and prior and plan.stop_on_fire:
        # Killed after a trigger fired (before or during its rollback): act on it now rather
        # than watch a deployment that is already known bad.
        return WatchResult(
            "fired",
            states,
            already,
            prior[-1],
            totals,
            hist_all,
            hist_critical,
            last,
            coverage,
            judged(),
            board,
        )
    if (plan.resumed or prior) and now_index > first:  # the monitor was down for these windows
        for k in range(first, min(now_index + 1, plan.window_count)):
            w = missing_window(
                k,
                plan.window_start(k),
                plan.window_start(k) + plan.interval_s,
                "not measured: the monitor was not running",
            )
            states = record(w, None)
            last = k
        first = now_index + 1
    creds = plan.credentials
    fired: TriggerStatus | None = None
    fired_window: WindowSummary | None = None
    queue: asyncio.Queue[
        tuple[int, asyncio.Task[tuple[WindowSummary, LatencyHistogram]]] | None
    ] = asyncio.Queue()
    async with open_context(
        backend=plan.target,
        frontend=plan.frontend,
        username=creds.username.reveal() if creds.username else None,
        password=creds.password.reveal() if creds.password else None,
        redactor=redactor,
        tls_verify=plan.tls_verify,
        ca_file=plan.ca_file,
        follow_redirects=plan.follow_redirects,
        auth=plan.auth,
    ) as ctx:
        state = CollectState()
        stream = StreamWatcher(ctx, plan.collect.hub_path) if plan.stream else None
        if stream is not None:
            stream.start()

        async def produce() -> None:
            for k in range(first, plan.window_count):
                due = plan.window_start(k)
                delay = due - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(collect_window(ctx, plan.collect, state, stream, k, due))
                await queue.put((k, task))
            await queue.put(None)

        producer = asyncio.create_task(produce())
        try:
            while (item := await queue.get()) is not None:
                k, task = item
                measured = await _bounded(task, plan)
                _stop_if_cancelled()
                if measured is None:
                    start = plan.window_start(k)
                    why = f"not measured: the window did not finish within {_grace_s(plan):g} s"
                    w = missing_window(k, start, start + plan.interval_s, why)
                    states = record(w, None)
                else:
                    w = measured[0]
                    states = record(*measured)
                last = k
                firing = next((st for st in states if st.state == "firing"), None)
                if firing is not None and fired is None:
                    fired, fired_window = firing, w
                if fired is not None and plan.stop_on_fire:
                    break
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
            while not queue.empty():
                left = queue.get_nowait()
                if left is not None:
                    left[1].cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await left[1]
            if stream is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stream.stop(), 10)
    if fired is None and already is not None:
        fired, fired_window = already, prior[-1]  # resumed a keep-watching watch that had fired
    if fired is None or not plan.stop_on_fire:
        # Ran to its deadline: the whole schedule was watched, and a window that was never
        # recorded was watched blind (coverage.py rule 1).
        coverage = coverage.skip_to(plan.window_count)
    return WatchResult(
        "fired" if fired and plan.stop_on_fire else "deadline",
        states,
        fired,
        fired_window,
        totals,
        hist_all,
        hist_critical,
        last,
        coverage,
        judged(),
        board,
    )
