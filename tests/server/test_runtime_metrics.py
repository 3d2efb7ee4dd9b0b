"""Event-loop lag and GC pause metrics move when the loop is blocked or a collection runs;
the monitor re-freezes once new hub connections settle."""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from mytrader_server.app import create_app
from mytrader_server.metrics import Metrics
from mytrader_server.runtime import REFREEZE_MIN_NEW, RuntimeMonitor
from mytrader_server.settings import Settings
from tests.server.helpers import wait_for


def _metric(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match, sample
    return float(match.group(1))


def test_forced_full_collection_shows_in_the_pause_histogram(
    settings_for: Callable[..., Settings],
) -> None:
    with TestClient(create_app(settings_for())) as client:
        full = 'mytrader_gc_pause_seconds_count{generation="2"}'
        before = _metric(client.get("/metrics").text, full)
        client.portal.call(gc.collect)  # type: ignore[union-attr]
        client.portal.call(gc.collect)  # type: ignore[union-attr]
        text = client.get("/metrics").text
        assert _metric(text, full) >= before + 2
        assert _metric(text, 'mytrader_gc_pause_seconds_sum{generation="2"}') > 0
        assert _metric(text, "mytrader_gc_frozen_objects") > 1000  # start-up objects frozen


def test_a_blocked_loop_shows_in_the_lag_metric(settings_for: Callable[..., Settings]) -> None:
    with TestClient(create_app(settings_for())) as client:
        slow = 'mytrader_event_loop_lag_seconds_bucket{le="0.25"}'
        count = "mytrader_event_loop_lag_seconds_count"
        assert wait_for(lambda: _metric(client.get("/metrics").text, count) >= 3)
        text = client.get("/metrics").text
        assert _metric(text, count) == _metric(text, slow)  # nothing blocked yet

        client.portal.call(time.sleep, 0.4)  # type: ignore[union-attr]  # blocks the loop
        assert wait_for(lambda: _metric(client.get("/metrics").text, count) > _metric(text, count))
        after = client.get("/metrics").text
        assert _metric(after, count) - _metric(after, slow) >= 1  # one sample lagged > 0.25 s
        assert _metric(after, "mytrader_event_loop_lag_seconds_sum") >= 0.25


def test_a_fine_sampling_period_catches_a_pause_just_over_20_ms(
    settings_for: Callable[..., Settings],
) -> None:
    """Sampling every 5 ms, any pause over 25 ms shows as a sample over 20 ms (the bucket
    issue 14's 'no pause over 20 ms' is read from)."""
    with TestClient(create_app(settings_for(loop_sample_s=0.005))) as client:
        over_20 = 'mytrader_event_loop_lag_seconds_bucket{le="0.02"}'
        count = "mytrader_event_loop_lag_seconds_count"
        assert wait_for(lambda: _metric(client.get("/metrics").text, count) >= 20)
        text = client.get("/metrics").text
        client.portal.call(time.sleep, 0.03)  # type: ignore[union-attr]  # blocks the loop
        assert wait_for(lambda: _metric(client.get("/metrics").text, count) > _metric(text, count))
        after = client.get("/metrics").text
        lagged = (_metric(after, count) - _metric(after, over_20)) - (
            _metric(text, count) - _metric(text, over_20)
        )
        assert lagged >= 1


def test_refreezes_once_new_connections_settle() -> None:
    connections = {"n": 0}
    monitor = RuntimeMonitor(Metrics(), lambda: connections["n"])
    try:
        monitor.freeze()
        assert monitor.freezes == 1
        connections["n"] = REFREEZE_MIN_NEW + 5
        monitor._maybe_refreeze()  # still arriving: not yet
        assert monitor.freezes == 1
        monitor._maybe_refreeze()  # stable for one period: freeze them
        assert monitor.freezes == 2
        assert monitor.frozen_at_connections == REFREEZE_MIN_NEW + 5
        monitor._maybe_refreeze()  # no growth: nothing to do
        assert monitor.freezes == 2
    finally:
        gc.unfreeze()
