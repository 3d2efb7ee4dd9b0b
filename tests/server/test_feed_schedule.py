"""The market feed keeps a fixed-rate schedule, catches up after a pause, and counts it all.

In-process app, real feed: its steps are made slow by a tick listener that blocks the event loop
(``time.sleep``), as a slow order engine or a full garbage collection would.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from mytrader_server.app import create_app
from mytrader_server.events import Tick
from mytrader_server.market import service as service_module
from mytrader_server.market.service import MAX_CATCH_UP_S, FeedCounts
from mytrader_server.settings import Settings
from tests.server.helpers import wait_for

INTERVAL_S = 0.05


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


def _snapshot(client: TestClient) -> tuple[float, FeedCounts]:
    """The counts, read on the app's event loop (between two feed steps)."""
    counts = client.app.state.ctx.market.counts  # type: ignore[attr-defined]

    def copy() -> FeedCounts:
        return FeedCounts(**{f: getattr(counts, f) for f in counts.__slots__})

    return time.monotonic(), client.portal.call(copy)  # type: ignore[union-attr]


def _check_sum(counts: FeedCounts) -> None:
    assert counts.scheduled == counts.produced + counts.skipped + counts.unpublished


def _blocking_listener(every: int, block_s: float, times: int | None = None) -> object:
    seen = {"steps": 0, "blocked": 0}

    async def listener(_ticks: list[Tick]) -> None:
        seen["steps"] += 1
        if seen["steps"] % every == 0 and (times is None or seen["blocked"] < times):
            seen["blocked"] += 1
            time.sleep(block_s)  # blocks the loop: the feed's next steps are late

    return listener


def test_slow_steps_still_produce_every_scheduled_tick(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for(feed_interval_s=INTERVAL_S)
    with TestClient(create_app(settings)) as client:
        market = client.app.state.ctx.market  # type: ignore[attr-defined]
        assert wait_for(lambda: market.counts.produced > 2)
        # every 8th step blocks for 0.3 s: six steps late each time, well inside the bound
        market.add_listener(_blocking_listener(8, 0.3))
        seen: list[str] = []

        async def record(ticks: list[Tick]) -> None:
            seen.append(ticks[0].timestamp)

        market.add_listener(record)
        t0, c0 = _snapshot(client)
        time.sleep(3.0)
        t1, c1 = _snapshot(client)
        _check_sum(c1)
        expected = (t1 - t0) / INTERVAL_S
        produced = c1.produced - c0.produced
        assert c1.skipped == 0
        assert c1.unpublished == 0
        assert abs(produced - expected) <= 0.3 / INTERVAL_S + 2, (produced, expected)
        # the ticks carry their scheduled times: evenly spaced however late they ran
        stamps = [datetime.fromisoformat(s).timestamp() for s in seen]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert len(gaps) > 20
        assert all(abs(g - INTERVAL_S) < 0.001 for g in gaps), gaps

        text = client.get("/metrics").text
        scheduled = _metric(text, "mytrader_feed_ticks_scheduled_total")
        produced_m = _metric(text, "mytrader_feed_ticks_produced_total")
        skipped = _metric(text, "mytrader_feed_ticks_skipped_total")
        unpublished = _metric(text, "mytrader_feed_ticks_unpublished_total")
        assert scheduled == produced_m + skipped + unpublished
        assert scheduled >= c1.scheduled
        lag_count = _metric(text, "mytrader_feed_schedule_lag_seconds_count")
        assert lag_count >= c1.scheduled - c1.skipped
        late = _metric(text, 'mytrader_feed_schedule_lag_seconds_bucket{le="0.1"}')
        assert late < lag_count  # some steps ran more than 0.1 s late, and they were recorded


def test_a_long_pause_skips_only_beyond_the_bound_and_health_reports_the_lag(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for(feed_interval_s=INTERVAL_S)
    with TestClient(create_app(settings)) as client:
        market = client.app.state.ctx.market  # type: ignore[attr-defined]
        assert wait_for(lambda: market.counts.produced > 2)
        pause_s = MAX_CATCH_UP_S + 0.6
        market.add_listener(_blocking_listener(1, pause_s, times=1))
        t0, c0 = _snapshot(client)
        time.sleep(pause_s + 1.5)
        t1, c1 = _snapshot(client)
        _check_sum(c1)
        scheduled = c1.scheduled - c0.scheduled
        assert abs(scheduled - (t1 - t0) / INTERVAL_S) <= 3, scheduled  # the schedule held
        skipped = c1.skipped - c0.skipped
        # the pause missed ~pause/interval steps; all but the bound's worth were produced late
        expected_skipped = (pause_s - MAX_CATCH_UP_S) / INTERVAL_S
        assert abs(skipped - expected_skipped) <= 3, (skipped, expected_skipped)
        assert c1.produced - c0.produced >= scheduled - skipped - 1

        health = client.get("/health").json()
        component = health["checks"]["market-data:scheduleLag"][0]
        assert component["status"] == "pass"  # caught up again
        assert component["observedUnit"] == "s"
        assert component["observedValue"] < MAX_CATCH_UP_S / 2
        assert "skipped" in component["output"]


def test_a_stalled_feed_counts_its_steps_as_skipped(settings_for: Callable[..., Settings]) -> None:
    settings = settings_for(feed_interval_s=INTERVAL_S)
    with TestClient(create_app(settings)) as client:
        market = client.app.state.ctx.market  # type: ignore[attr-defined]
        assert wait_for(lambda: market.counts.produced > 2)
        market.stalled = True
        t0, c0 = _snapshot(client)
        time.sleep(0.5)
        market.stalled = False
        time.sleep(0.3)
        _, c1 = _snapshot(client)
        _check_sum(c1)
        assert c1.skipped - c0.skipped >= 0.4 / INTERVAL_S - 2
        assert c1.produced > c0.produced  # resumed on schedule, without a burst of stale steps
        assert market.last_step_lag_s < 0.2
        del t0


class _SteppableWallClock:
    """``time`` for the market service, with a wall clock that can be stepped like NTP does."""

    def __init__(self) -> None:
        self.shift = 0.0
        self.monotonic = time.monotonic

    def time(self) -> float:
        return time.time() + self.shift


def test_stamps_follow_the_wall_clock_when_it_is_stepped(
    settings_for: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schedule runs on the monotonic clock, but a tick's time is a wall-clock time: when
    the wall clock is stepped (or slewed), the stamps follow it instead of drifting away."""
    clock = _SteppableWallClock()
    monkeypatch.setattr(service_module, "time", clock)
    settings = settings_for(feed_interval_s=INTERVAL_S)
    with TestClient(create_app(settings)) as client:
        market = client.app.state.ctx.market  # type: ignore[attr-defined]
        seen: list[tuple[float, float]] = []  # (stamp, the wall clock when it arrived)

        async def record(ticks: list[Tick]) -> None:
            seen.append((datetime.fromisoformat(ticks[0].timestamp).timestamp(), clock.time()))

        market.add_listener(record)
        assert wait_for(lambda: len(seen) >= 5)
        clock.shift = 30.0  # the wall clock jumps 30 s ahead
        stepped_at = len(seen)
        assert wait_for(lambda: len(seen) >= stepped_at + 5)
        for stamp, wall in seen[stepped_at + 1 :]:
            assert wall - 1.0 < stamp <= wall + 0.001, (stamp, wall)
        before = [stamp for stamp, _ in seen[:stepped_at]]
        assert all(abs(b - a - INTERVAL_S) < 0.002 for a, b in itertools.pairwise(before)), (
            before
        )  # evenly spaced while the clock holds still
