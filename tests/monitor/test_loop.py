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
from mytrader_ops.monitor.windows import PathTally, WindowSummary
from mytrader_ops.redaction import Redactor
from mytrader_ops.triggers import default_triggers


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
