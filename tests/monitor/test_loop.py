"""The watch loop's resume rules that need no target: a watch killed after a trigger fired
acts on it at once when resumed (no new window is measured)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mytrader_ops.config import Credentials
from mytrader_ops.monitor.collect import CollectSettings
from mytrader_ops.monitor.loop import WatchPlan, run_watch
from mytrader_ops.monitor.settings import Thresholds
from mytrader_ops.monitor.store import WatchRecord, WatchStore
from mytrader_ops.monitor.triggers import default_triggers
from mytrader_ops.monitor.windows import PathTally, WindowSummary
from mytrader_ops.redaction import Redactor


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
    assert time.monotonic() - t0 < 2
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
