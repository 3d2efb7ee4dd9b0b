"""SLOs and error budgets (issue 11, part 2): the arithmetic, multiwindow burn-rate triggers
driven by recorded series, and the SLO configuration. Pure tables.

The series are 30 s windows of 180 sampled requests, as the monitor's default rate gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mytrader_ops.config import DEFAULT_BURN_ALERTS, Slo, span_seconds
from mytrader_ops.errorbudget import Events, burn_rate, error_budget
from mytrader_ops.monitor.rules import to_window
from mytrader_ops.monitor.triggers import TriggerBoard, Window, burn_triggers, default_triggers
from mytrader_ops.monitor.windows import WindowSummary
from tests.monitor.conftest import watch
from tests.support.live import LiveServer, scaled

WINDOW_S, PER_WINDOW = 30.0, 180
PAGE, TICKET = burn_triggers(
    "api",
    0.999,
    "availability",
    None,
    [(a.long, a.short, a.factor) for a in DEFAULT_BURN_ALERTS],
)


def _series(error_shares: list[float]) -> list[Window]:
    return [
        Window(i * WINDOW_S, (i + 1) * WINDOW_S, PER_WINDOW, share)
        for i, share in enumerate(error_shares)
    ]


def _first_firing(trigger_id: str, windows: list[Window]) -> int | None:
    board = TriggerBoard.start([PAGE, TICKET, *default_triggers()])
    for i, w in enumerate(windows):
        board = board.advance(w)
        if board.statuses[trigger_id].state == "firing":
            return i
    return None


# Error shares as whole requests of 180, so the expected windows are exact: 4/180 is 22.2x a
# 0.1% budget, 2/180 is 11.1x, 9/180 is 50x.
X22, X11, X50 = 4 / 180, 2 / 180, 9 / 180


@pytest.mark.parametrize(
    ("name", "shares", "page_at", "ticket_at"),
    [
        # 22x from the start: over both windows of both alerts (the first window already holds
        # more than the 100 events a burn rate needs)
        ("steady 22x burn", [X22] * 40, 0, 0),
        # 11x: the 6x alert (6 h and 30 m), never the 14.4x one
        ("steady 11x burn", [X11] * 80, None, 0),
        # an hour healthy, then 22x: the 1 h window reaches 14.4x after k bad windows with
        # 22.2k/120 >= 14.4, k = 78 (index 197); the 6 h window (all 120 + k windows so far)
        # reaches 6x when 22.2k >= 6(120 + k), k = 45 (index 164)
        ("late 22x burn", [0.0] * 120 + [X22] * 100, 197, 164),
        # one 30 s window at 50%: the 5 m window burns, the 1 h one does not
        ("one 30 s spike at 50%", [0.0] * 120 + [0.5] + [0.0] * 30, None, None),
        # ten minutes at 50x after 100 healthy windows: 6x over all windows once
        # 50k >= 6(100 + k), k = 14 (index 113); 14.4x over 1 h would need k = 41
        ("ten minutes at 50x", [0.0] * 100 + [X50] * 20 + [0.0] * 12, None, 113),
        ("healthy", [0.0] * 200, None, None),
    ],
)
def test_multiwindow_burn_rate_triggers(
    name: str, shares: list[float], page_at: int | None, ticket_at: int | None
) -> None:
    windows = _series(shares)
    assert _first_firing(PAGE.id, windows) == page_at
    assert _first_firing(TICKET.id, windows) == ticket_at


def test_a_stopped_burn_clears_and_its_evidence_shows_both_windows() -> None:
    board = TriggerBoard.start([TICKET])
    states = []
    for w in _series([0.0] * 100 + [X50] * 20 + [0.0] * 80):
        board = board.advance(w)
        states.append(board.statuses[TICKET.id].state)
    assert states[113] == "firing"
    assert states[-1] == "ok"  # the burn stopped: once a window is below, it clears
    note = board.statuses[TICKET.id].evidence[-1].note
    assert "over 6h" in note
    assert "over 30m" in note


def test_no_events_is_no_evidence_never_ok() -> None:
    board = TriggerBoard.start([PAGE])
    for i in range(20):
        board = board.advance(Window(i * WINDOW_S, (i + 1) * WINDOW_S))  # nothing measured
    status = board.statuses[PAGE.id]
    assert status.state == "pending"
    assert status.evidence[-1].verdict == "no-data"
    assert "too few events" in status.evidence[-1].note


def test_the_board_keeps_only_the_longest_window_of_history() -> None:
    board = TriggerBoard.start([PAGE, TICKET])
    for w in _series([0.0] * 2000):
        board = board.advance(w)
    assert len(board.history) == int(6 * 3600 / WINDOW_S)  # 6 h of 30 s windows


def test_latency_slo_counts_samples_above_its_threshold() -> None:
    (trigger, _) = burn_triggers("lat", 0.99, "latency", 300.0, [("1h", "5m", 14.4)] * 2)
    summary = WindowSummary(
        index=0, start_s=0.0, end_s=30.0, requests=200, latency_samples=200, slow={"300": 50}
    )
    board = TriggerBoard.start([trigger]).advance(to_window(summary))
    status = board.statuses[trigger.id]
    assert status.state == "firing"  # 25% slow against a 1% budget: 25x
    assert "50/200 bad" in status.evidence[-1].note


@pytest.mark.parametrize(
    ("bad", "total", "objective", "remaining"),
    [(0, 1000, 0.999, 1.0), (1, 1000, 0.999, 0.0), (5, 10_000, 0.999, 0.5), (3, 1000, 0.999, -2.0)],
)
def test_error_budget(bad: int, total: int, objective: float, remaining: float) -> None:
    events = [Events(10.0, 10.0, total - bad, total)]
    budget = error_budget(events, objective)
    assert budget.remaining == pytest.approx(remaining)
    assert error_budget([], objective).remaining is None


def test_burn_rate_uses_only_the_span_and_needs_events() -> None:
    history = [Events(t, 30.0, 170, 180) for t in (30.0, 60.0, 90.0)]  # 10/180 bad each
    burn = burn_rate(history, 90.0, 60.0, 0.99)  # the last two windows
    assert burn.total == 360
    assert burn.rate == pytest.approx((20 / 360) / 0.01)
    assert burn_rate(history, 90.0, 60.0, 0.99, min_total=1000).rate is None


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"id": "a", "objective": "99.9%"}, None),
        ({"id": "a", "objective": 0.999, "window": "7d"}, None),
        ({"id": "a", "objective": "99%", "signal": "latency", "threshold_ms": 300}, None),
        ({"id": "a", "objective": "99%", "signal": "latency"}, "threshold_ms is required"),
        ({"id": "a", "objective": "100%"}, "less than 1"),
        ({"id": "a", "objective": "99%", "window": "30 days"}, "30 days"),
        (
            {
                "id": "a",
                "objective": "99%",
                "burn_alerts": [{"long": "5m", "short": "1h", "factor": 2}],
            },
            "shorter than the long one",
        ),
    ],
)
def test_slo_configuration(doc: dict[str, object], problem: str | None) -> None:
    from pydantic import ValidationError

    if problem is None:
        slo = Slo.model_validate(doc)
        assert 0 < slo.objective < 1
        assert slo.window_s == span_seconds(slo.window)
        return
    with pytest.raises(ValidationError) as err:
        Slo.model_validate(doc)
    assert problem in str(err.value)


SLO_CONFIG = """version: 1
slos:
  - id: api
    objective: 99%
    window: 1d
    burn_alerts: [{long: 20s, short: 5s, factor: 10}]
  - id: api-fast
    objective: 99%
    window: 1d
    signal: latency
    threshold_ms: 1000
    burn_alerts: [{long: 20s, short: 5s, factor: 10}]
"""


@pytest.mark.slow
def test_a_live_watch_fires_the_burn_rate_trigger_of_its_slo(
    server: LiveServer, tmp_path: Path, creds: None
) -> None:
    """The config's SLO becomes a burn-rate trigger of the monitor; 50% errors burn a 1%
    budget at 50x over both windows and fire it; the latency SLO's does not fire (fast)."""
    cfg = tmp_path / "slo.yaml"
    cfg.write_text(SLO_CONFIG)
    server.set_faults(error_rate={"/api": 0.5})
    try:
        outcome, out = watch(server, tmp_path, config_file=cfg, duration=f"{scaled(20):g}s")
    finally:
        server.clear_faults()
    assert outcome.fired is not None, out
    assert outcome.exit_code == 1
    burn = outcome.report.verdict("rollback-slo-api-burn-20s-5s")
    assert burn is not None
    assert burn.status.value == "FAIL", burn.summary  # fired, beside the 10% error trigger
    assert "SLO api burning" in burn.summary
    assert "over 20s" in burn.summary
    assert "over 5s" in burn.summary
    fast = outcome.report.verdict("rollback-slo-api-fast-burn-20s-5s")
    assert fast is not None
    assert fast.status.value != "FAIL"
