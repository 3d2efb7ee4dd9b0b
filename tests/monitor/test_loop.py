"""The watch loop's resume rules that need no target: a watch killed after a trigger fired
acts on it at once when resumed (no new window is measured), and the windows a resumed watch
missed while it was down are watched and blind for every trigger (exit 3, not 0)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from mytrader_ops.config import Credentials
from mytrader_ops.monitor.aggregate import Totals
from mytrader_ops.monitor.collect import CollectSettings
from mytrader_ops.monitor.coverage import EvidenceFinding
from mytrader_ops.monitor.loop import WatchPlan, run_watch
from mytrader_ops.monitor.settings import Thresholds
from mytrader_ops.monitor.store import WatchRecord, WatchStore
from mytrader_ops.monitor.triggers import TriggerStatus, default_triggers
from mytrader_ops.monitor.verdicts import exit_code_for
from mytrader_ops.monitor.windows import PathTally, WindowSummary
from mytrader_ops.redaction import Redactor
from tests.support.live import scaled


def test_resumed_watch_with_a_fired_trigger_acts_at_once(tmp_path: Path) -> None:
    now = time.time()
    store = WatchStore(tmp_path / "m.db")
    store.create(
        WatchRecord(
            "w",
            "http://127.0.0.1:9",
            "e",
            "critical",
            1.0,
            now - 10,
            now + 60,
            {},
            "running",
            None,
            "",
            "",
        )
    )
    prior = [
        WindowSummary(
            i, now - 10 + i, now - 9 + i, db_status="fail", paths={"direct-hub": PathTally(3, 3)}
        )
        for i in range(3)
    ]
    plan = WatchPlan(
        watch_id="w",
        target="http://127.0.0.1:9",  # nothing listens: the loop must not need it
        frontend=None,
        env_name="e",
        credentials=Credentials(),
        tls_verify=True,
        ca_file=None,
        phase="critical",
        start_s=now - 10,
        deadline_s=now + 60,
        collect=CollectSettings(interval_s=1.0, rate=50.0),
        triggers=default_triggers(),
        thresholds=Thresholds(),
    )
    t0 = time.monotonic()
    result = asyncio.run(run_watch(plan, store, Redactor(), [], prior))
    assert time.monotonic() - t0 < scaled(2)  # no window is measured: the next is 1 s away
    assert result.fired is not None
    assert result.fired.trigger_id == "database-failing"
    assert result.fired_window == prior[-1]


def test_a_swallowed_cancel_still_stops_the_watch_at_the_next_window() -> None:
    """Python 3.11's wait_for can swallow a cancel (SIGTERM, Ctrl-C); the loop's check after
    each window still honours it."""
    import asyncio
    import contextlib

    from mytrader_ops.monitor.loop import _stop_if_cancelled

    async def main() -> str:
        _stop_if_cancelled()  # nothing requested: carries on
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as wait_for can
            await asyncio.sleep(0)
        try:
            _stop_if_cancelled()
        except asyncio.CancelledError:
            return "stopped"
        return "ran on"

    assert asyncio.run(main()) == "stopped"


def _healthy(i: int, start_s: float) -> WindowSummary:
    """A window in which every default trigger has evidence, and judges it ok."""
    return WindowSummary(
        i,
        start_s + i,
        start_s + i + 1,
        requests=100,
        latency_samples=100,
        p95_ms=5.0,
        p99_ms=8.0,
        db_status="pass",
        paths={"direct-hub": PathTally(3, 3)},
        auth="ok",
    )


class _Seen:
    """An observer that keeps what each window reported about evidence."""

    def __init__(self) -> None:
        self.windows: list[tuple[int, bool, list[EvidenceFinding]]] = []

    def window(
        self,
        w: WindowSummary,
        states: Sequence[TriggerStatus],
        totals: Totals,
        evidence: Sequence[EvidenceFinding],
    ) -> None:
        self.windows.append((w.index, w.missing, list(evidence)))


@pytest.mark.parametrize("stored", [4, 0])
def test_resumed_watch_counts_the_windows_it_missed_as_blind(tmp_path: Path, stored: int) -> None:
    """Killed after `stored` windows of 10 and resumed after the deadline: the windows it
    missed are stored as missing and count as blind, so no trigger has enough evidence."""
    now = time.time()
    start = now - 10.5
    store = WatchStore(tmp_path / "m.db")
    store.create(
        WatchRecord(
            "w", "http://127.0.0.1:9", "e", "critical", 1.0, start, start + 10, {},
            "running", None, "", "",
        )
    )  # fmt: skip
    prior = [_healthy(i, start) for i in range(stored)]
    for w in prior:
        store.checkpoint("w", w, "", "")
    plan = WatchPlan(
        watch_id="w",
        target="http://127.0.0.1:9",  # nothing listens: every window due is already past
        frontend=None,
        env_name="e",
        credentials=Credentials(),
        tls_verify=True,
        ca_file=None,
        phase="critical",
        start_s=start,
        deadline_s=start + 10,
        collect=CollectSettings(interval_s=1.0, rate=50.0),
        triggers=default_triggers(),
        thresholds=Thresholds(),
        stream=False,
        resumed=True,
    )
    seen = _Seen()
    result = asyncio.run(run_watch(plan, store, Redactor(), [seen], prior))
    assert result.fired is None
    assert [i for i, missing, _ in seen.windows] == list(range(stored, 10))
    assert all(missing for _, missing, _ in seen.windows)
    assert [f.coverage.trigger_id for f in result.evidence] == [s.id for s in default_triggers()]
    for found in result.evidence:
        c = found.coverage
        assert (c.windows_watched, c.windows_with_evidence) == (10, stored)
        assert c.longest_blind_windows == 10 - stored
        assert not found.sufficient, found.describe()
    assert exit_code_for(False, result.evidence) == 3
    _rec, kept = store.load("w")
    assert [w.index for w in kept] == list(range(10))
    # each window line reported the coverage so far: one more blind window each time
    last = seen.windows[-1][2]
    assert [f.coverage.windows_watched for f in last] == [10] * len(default_triggers())
