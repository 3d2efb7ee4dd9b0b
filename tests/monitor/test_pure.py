"""Pure monitor logic from tables: durations, stream gaps, trends and leaks, bounded series,
the adapter to the trigger fold, totals and /metrics values (exit codes: test_coverage.py)."""

from __future__ import annotations

import random

import pytest

from mytrader_ops.monitor.aggregate import Series, Totals
from mytrader_ops.monitor.promvalues import db_mean_ms, reduce_scrape, sum_samples
from mytrader_ops.monitor.rules import fold, to_window
from mytrader_ops.monitor.settings import MonitorUsageError, Thresholds, parse_duration
from mytrader_ops.monitor.triggers import default_triggers
from mytrader_ops.monitor.verdicts import critical_checks
from mytrader_ops.monitor.windows import (
    PathTally,
    WindowSummary,
    detect_leak,
    find_gaps,
    fit_trend,
    from_dict,
    merge_gaps,
    missing_window,
    to_dict,
)
from mytrader_ops.stats import LatencyHistogram

MB = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45), ("30m", 1800), ("24h", 86400), ("1h30m", 5400), ("90", 90), ("1.5s", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5d", "-3s", "0s", "40d"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(MonitorUsageError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("arrivals", "last_before", "max_gap", "over"),
    [
        ([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5], None, 0.5, []),
        ([], None, 4.0, [(0.0, 4.0)]),  # silence is a gap, never continuity
        ([0.5, 3.9], None, 3.4, [(0.5, 3.4)]),
        ([1.0], -5.0, 6.0, [(-5.0, 6.0), (1.0, 3.0)]),  # a gap spanning windows is timed whole
    ],
)
def test_find_gaps(
    arrivals: list[float],
    last_before: float | None,
    max_gap: float,
    over: list[tuple[float, float]],
) -> None:
    rep = find_gaps(arrivals, 0.0, 4.0, 2.5, last_before)
    assert rep.messages == len(arrivals)
    assert rep.max_gap_s == pytest.approx(max_gap)
    assert [(a, pytest.approx(b)) for a, b in rep.gaps_over] == over


def test_one_gap_seen_by_two_windows_counts_once_at_its_longest() -> None:
    assert merge_gaps([(10.0, 4.0), (10.0, 7.5), (30.0, 6.0)]) == [(10.0, 7.5), (30.0, 6.0)]


def _sawtooth(base: float, slope_per_h: float, hours: float, n: int, noise: float) -> list:
    rng = random.Random(7)
    pts = []
    for i in range(n):
        t = hours * 3600 * i / (n - 1)
        gc = (i % 10) * noise / 10  # garbage-collection sawtooth
        pts.append((t, base + slope_per_h * t / 3600 + gc + rng.uniform(-noise, noise) / 4))
    return pts


@pytest.mark.parametrize(
    ("points", "verdict"),
    [
        (_sawtooth(120 * MB, 0, 24, 2880, 8 * MB), "stable"),  # flat with GC sawtooth
        (_sawtooth(120 * MB, 2 * MB, 24, 2880, 8 * MB), "stable"),  # slow drift under limits
        (_sawtooth(120 * MB, 60 * MB, 2, 240, 4 * MB), "leak"),  # steady climb
        (_sawtooth(120 * MB, 60 * MB, 0.01, 5, 0), "unknown"),  # too short to say
        ([], "unknown"),
    ],
)
def test_leak_detection(points: list, verdict: str) -> None:
    got = detect_leak(points, abs_per_hour=20 * MB, share_per_hour=0.10, unit="MB", scale=MB)
    assert got.verdict == verdict, got.detail


def test_trend_slope_per_hour() -> None:
    trend = fit_trend([(0, 100.0), (1800, 150.0), (3600, 200.0)])
    assert trend is not None
    assert trend.slope_per_hour == pytest.approx(100.0)
    assert trend.r2 == pytest.approx(1.0)
    assert fit_trend([(5, 1.0), (5, 2.0)]) is None


def test_series_is_bounded_and_keeps_the_trend() -> None:
    s = Series(cap=64)
    for i in range(24 * 3600):  # a day of one-second points
        s.add(float(i), 1000.0 + i * 0.5)
    assert len(s.points) < 64
    trend = fit_trend(s.points)
    assert trend is not None
    assert trend.slope_per_hour == pytest.approx(1800.0, rel=0.01)
    assert s.points[0][0] < 3600
    assert s.points[-1][0] > 20 * 3600


def _w(i: int, **kw: object) -> WindowSummary:
    base: dict[str, object] = {
        "requests": 100,
        "errors": 0,
        "latency_samples": 100,
        "p95_ms": 5.0,
        "p99_ms": 8.0,
        "db_status": "pass",
        "paths": {"direct-hub": PathTally(3, 3)},
        "auth": "ok",
        "stream_connected": True,
    }
    base.update(kw)
    return WindowSummary(i, 100.0 + i * 10, 110.0 + i * 10, **base)  # type: ignore[arg-type]


def test_summary_round_trips_through_json() -> None:
    w = _w(3, stream_gaps=((1.0, 6.0),), notes=("x",), error_kinds={"HTTP 500": 4})
    assert from_dict(to_dict(w)) == w


@pytest.mark.parametrize(
    ("window", "field", "value"),
    [
        (_w(0, errors=30), "error_rate", 0.30),
        (_w(0, db_status="fail"), "db_ok", False),
        (_w(0, db_status="warn"), "db_ok", True),
        (_w(0, db_status=None), "db_ok", None),
        (_w(0, paths={"direct-hub": PathTally(3, 0)}), "hub_connect_success", 0.0),
        (_w(0, paths={}), "hub_connect_success", None),
        (_w(0, auth="failed"), "auth_ok", False),
        (_w(0, auth="no-data"), "auth_ok", None),
        (_w(0, requests=0, errors=0), "error_rate", None),
    ],
)
def test_adapter_to_trigger_windows(window: WindowSummary, field: str, value: object) -> None:
    assert getattr(to_window(window), field) == value


def test_missing_window_is_no_data_for_every_trigger() -> None:
    board = fold(default_triggers(), [missing_window(0, 0, 10, "monitor down")])
    assert all(s.state == "pending" for s in board.statuses.values())
    assert all(s.evidence[-1].verdict == "no-data" for s in board.statuses.values())


@pytest.mark.parametrize(
    ("bad", "trigger", "windows_to_fire"),
    [
        ({"errors": 50}, "error-rate-above-10pct", 2),
        ({"db_status": "fail"}, "database-failing", 2),
        ({"paths": {"direct-hub": PathTally(3, 0)}}, "websocket-unavailable", 2),
        ({"p95_ms": 800.0, "p99_ms": 900.0}, "latency-above-500ms", 3),
        ({"auth": "failed"}, "auth-failing", 2),
    ],
)
def test_each_fault_fires_its_trigger_within_its_bound(
    bad: dict[str, object], trigger: str, windows_to_fire: int
) -> None:
    healthy = [_w(i) for i in range(5)]
    faulty = [_w(5 + i, **bad) for i in range(windows_to_fire)]
    before = fold(default_triggers(), [*healthy, *faulty[:-1]])
    after = fold(default_triggers(), [*healthy, *faulty])
    assert before.statuses[trigger].state == "pending"
    assert after.statuses[trigger].state == "firing"


def test_healthy_jittery_windows_never_fire() -> None:
    rng = random.Random(1)
    windows = [
        _w(
            i,
            errors=rng.choice([0, 0, 0, 1, 2]),
            p95_ms=rng.uniform(2, 120),
            p99_ms=rng.uniform(100, 400),
            db_status=rng.choice(["pass", "pass", "warn"]),
            paths={"direct-hub": PathTally(3, rng.choice([2, 3, 3]))},
        )
        for i in range(500)
    ]
    board = fold(default_triggers(), windows)
    assert {s.state for s in board.statuses.values()} == {"ok"}


def test_totals_are_bounded_over_a_day_of_windows() -> None:
    totals = Totals(1800.0, 100.0, 0.0)
    for i in range(2880):
        totals.add(
            WindowSummary(
                i,
                i * 30.0,
                i * 30.0 + 30,
                requests=120,
                errors=1,
                rss_bytes=100 * MB,
                cpu_seconds=i * 0.3,
                db_ms=2.0,
                db_status="pass",
                stream_gaps=((i * 30.0, 6.0),),
                notes=(f"note {i}",),
            )
        )
    assert totals.whole.requests == 2880 * 120
    assert totals.critical.windows == 60
    # bounded, and full at the bound rather than empty: the day is still there
    assert 0 < len(totals.rss.points) <= 512
    assert totals.rss.points[0][0] < 3600
    assert totals.rss.points[-1][0] > 20 * 3600
    assert len(totals.gaps) == 200  # MAX_GAPS (2880 distinct gaps were seen)
    assert totals.notes == {f"note {i}": 1 for i in range(20)}  # the first 20 distinct notes
    trend = fit_trend(totals.cpu.points)
    assert trend is not None
    assert trend.mean == pytest.approx(0.01)


METRICS = """# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.2e+08
process_cpu_seconds_total 3.5
mytrader_db_query_duration_seconds_sum{operation="ping"} 0.5
mytrader_db_query_duration_seconds_sum{operation="order"} 0.5
mytrader_db_query_duration_seconds_count{operation="ping"} 100
mytrader_hub_connections{hub="market-data"} 2
mytrader_hub_connections{hub="trading"} 1
mytrader_feed_lag_seconds NaN
"""


def test_metric_values() -> None:
    v = sum_samples(METRICS)
    assert v["process_resident_memory_bytes"] == 1.2e8
    assert v["mytrader_hub_connections"] == 3
    assert "mytrader_feed_lag_seconds" not in v  # NaN is not a measurement
    cur = reduce_scrape(METRICS)
    prev = reduce_scrape(METRICS.replace("} 100", "} 50").replace("0.5", "0.25"))
    assert db_mean_ms(prev, cur) == pytest.approx(10.0)
    assert db_mean_ms(None, cur) is None
    assert reduce_scrape("").rss_bytes is None
    assert cur.cpu_seconds == 3.5


def _sampled(i: int, valid: bool, lag_p95_ms: float = 0.5) -> WindowSummary:
    return _w(
        i,
        sampler_valid=valid,
        sampler_note="own scheduling lag ..." if valid else "sampler CPU-bound: 95% of one core",
        sampler_lag_p95_ms=lag_p95_ms,
        sampler_lag_p99_ms=lag_p95_ms * 2,
    )


def _latency_verdict(windows: list[WindowSummary]) -> tuple[str, str]:
    totals = Totals(1800.0, 100.0, 0.0)
    hist = LatencyHistogram()
    for w in windows:
        totals.add(w)
        for _ in range(100):
            hist.record_ms(5.0)
    checks = critical_checks(totals.critical, hist, Thresholds(), "30m")
    verdict = next(v for v in checks if v.check_id == "monitor-api-latency")
    return verdict.status.value, verdict.summary


@pytest.mark.parametrize(
    ("windows", "status", "says"),
    [
        ([_sampled(i, True) for i in range(10)], "PASS", "p95 latency"),
        # the same latencies, but the sampler was the bottleneck in one window
        (
            [_sampled(i, i != 4) for i in range(10)],
            "INCONCLUSIVE",
            "sampler invalid (open-model sampler, one window at a time; sampler invalid in 1 of "
            "10 windows (latest: sampler CPU-bound",
        ),
        # valid, but its own delay (30 ms) is more than a quarter of the 100 ms limit
        ([_sampled(i, True, 30.0 if i == 2 else 0.5) for i in range(10)], "INCONCLUSIVE", "30.00"),
        # a window that never reported the sampler's health is not a valid sampler
        ([_w(i) for i in range(10)], "INCONCLUSIVE", "no window reported the sampler"),
    ],
)
def test_the_monitor_reads_its_own_sampler_validity(
    windows: list[WindowSummary], status: str, says: str
) -> None:
    got, summary = _latency_verdict(windows)
    assert got == status, summary
    assert says in summary


def test_the_report_sampler_reflects_the_windows() -> None:
    from mytrader_ops.monitor.coverage import CoverageBoard, judge_board
    from mytrader_ops.monitor.verdicts import build_report

    totals = Totals(1800.0, 100.0, 0.0)
    for i in range(4):
        totals.add(_sampled(i, i != 1, lag_p95_ms=3.0 if i == 2 else 0.5))
    specs = default_triggers()
    board = CoverageBoard.start([s.id for s in specs], 10.0)
    report = build_report(
        watch_id="w",
        env_name="e",
        target="http://x",
        frontend=None,
        phase="critical",
        interval_s=10.0,
        rate=2.0,
        start_s=100.0,
        end_s=140.0,
        deadline_s=140.0,
        totals=totals,
        hist_all=LatencyHistogram(),
        hist_critical=LatencyHistogram(),
        specs=specs,
        states=list(fold(specs, []).statuses.values()),
        evidence=judge_board(specs, board, 0.9),
        coverage_floor=0.9,
        thresholds=Thresholds(),
        exit_code=3,
        has_credentials=True,
        ending="deadline",
    )
    assert report.sampler is not None
    assert report.sampler.valid is False
    assert report.sampler.lag_p99_ms == 6.0
    assert "sampler invalid in 1 of 4 windows" in report.sampler.note


def test_stream_gaps_keep_the_longest_not_the_latest() -> None:
    """An early 60 s stall must outlive 250 later 6 s gaps in the bounded list."""
    from mytrader_ops.monitor.aggregate import MAX_GAPS

    totals = Totals(critical_span_s=1800, p95_limit_ms=100, start_s=0.0)
    totals.add(_w(0, stream_gaps=((5.0, 60.0),)))
    for i in range(1, 251):
        totals.add(_w(i, stream_gaps=((i * 30.0, 6.0),)))
    assert len(totals.gaps) == MAX_GAPS
    assert totals.gaps[0] == (5.0, 60.0)
    assert totals.gaps == sorted(totals.gaps)
