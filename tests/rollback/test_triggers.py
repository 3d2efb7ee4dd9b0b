"""Monitor triggers: typed configuration, window judgement tables, missing data, and the two
properties the issue asks for: a healthy series never fires; each fault fires within its bound."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mytrader_ops.errors import ConfigError
from mytrader_ops.monitor.triggers import (
    AnyTrigger,
    AuthTrigger,
    DatabaseTrigger,
    ErrorRateTrigger,
    LatencyTrigger,
    TriggerBoard,
    WebSocketTrigger,
    Window,
    default_triggers,
    evaluate_series,
    first_firing,
    judge_window,
    parse_duration,
    triggers_from_text,
)

WINDOW_S = 60.0


def w(i: int = 0, **fields: object) -> Window:
    return Window(start_s=i * WINDOW_S, end_s=(i + 1) * WINDOW_S, **fields)  # type: ignore[arg-type]


HEALTHY = {
    "samples": 200,
    "error_rate": 0.005,
    "latency_samples": 200,
    "p95_ms": 80.0,
    "p99_ms": 150.0,
    "db_ok": True,
    "hub_attempts": 10,
    "hub_connect_success": 1.0,
    "auth_ok": True,
}
ERR = ErrorRateTrigger(id="err", kind="error-rate", consecutive=2)
DB = DatabaseTrigger(id="db", kind="database", consecutive=2)
WS = WebSocketTrigger(id="ws", kind="websocket", consecutive=2)
LAT = LatencyTrigger(id="lat", kind="latency", consecutive=3)
LAT_FOR = LatencyTrigger(id="lat5m", kind="latency", percentile="p99", **{"for": "5m"})
AUTH = AuthTrigger(id="auth", kind="auth", consecutive=1)


# --------------------------------------------------------------------------- configuration


def test_config_parses_every_kind_with_explicit_bounds() -> None:
    specs = triggers_from_text(
        """
version: 1
triggers:
  - {id: err, kind: error-rate, above: 0.10, min_samples: 50, consecutive: 2}
  - {id: db, kind: database, consecutive: 2, missing_data: fire}
  - {id: ws, kind: websocket, consecutive: 2}
  - {id: lat, kind: latency, percentile: p99, above_ms: 500, for: 5m}
  - {id: auth, kind: auth, consecutive: 1}
"""
    )
    assert [s.kind for s in specs] == ["error-rate", "database", "websocket", "latency", "auth"]
    assert specs[3].for_s == 300.0
    assert specs[3].bound() == "for 5m"
    assert specs[0].bound() == "2 consecutive windows"
    assert specs[1].missing_data == "fire"
    assert specs[2].missing_data == "hold"  # the safe default


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("  - {id: lat, kind: latency, above_ms: 500}\n", 3, "exactly one of"),
        (
            "  - {id: lat, kind: latency, above_ms: 500, consecutive: 3, for: 5m}\n",
            3,
            "exactly one",
        ),
        ("  - {id: lat, kind: latency, for: 5}\n", 3, "string"),
        ("  - {id: lat, kind: latency, for: 5 minutes}\n", 3, "with a unit"),
        ("  - {id: e, kind: error-rate, above: 10, consecutive: 1}\n", 3, "less than 1"),
        ("  - {id: e, kind: errors, consecutive: 1}\n", 3, "kinds:"),
        ("  - {id: e, kind: auth, consecutive: 1, consistently: true}\n", 3, "consistently"),
        ("  - {id: e, kind: auth, consecutive: 0}\n", 3, "greater than or equal to 1"),
    ],
)
def test_config_errors_name_the_line(body: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        triggers_from_text("version: 1\ntriggers:\n" + body, "t.yaml")
    assert any(p.line == line and fragment in str(p) for p in info.value.problems), [
        str(p) for p in info.value.problems
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1.5h", 5400), ("1d", 86400)],  # days: SLOs
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5", "5 m", "m", "-1s", "1w", ""])
def test_parse_duration_refuses_vague_values(text: str) -> None:
    with pytest.raises(ValueError, match="unit"):
        parse_duration(text)


# --------------------------------------------------------------------------- one window


@pytest.mark.parametrize(
    ("spec", "fields", "verdict", "note"),
    [
        (ERR, {"samples": 200, "error_rate": 0.23}, "breach", "23.0% > 10.0%"),
        (ERR, {"samples": 200, "error_rate": 0.10}, "ok", "<= 10.0%"),
        (ERR, {"samples": 10, "error_rate": 0.9}, "no-data", "only 10 requests"),
        (ERR, {"samples": None, "error_rate": None}, "no-data", "not measured"),
        (ERR, {"samples": 200, "error_rate": math.nan}, "no-data", "not measured"),
        (DB, {"db_ok": False}, "breach", "FAILED"),
        (DB, {"db_ok": True}, "ok", "passed"),
        (DB, {"db_ok": None}, "no-data", "not measured"),
        (WS, {"hub_attempts": 10, "hub_connect_success": 0.0}, "breach", "unavailable"),
        (WS, {"hub_attempts": 10, "hub_connect_success": 0.1}, "ok", "10%"),
        (WS, {"hub_attempts": 1, "hub_connect_success": 0.0}, "no-data", "only 1 hub"),
        (LAT, {"latency_samples": 100, "p95_ms": 501.0}, "breach", "501.0 ms > 500 ms"),
        (LAT, {"latency_samples": 100, "p95_ms": 500.0}, "ok", "<= 500 ms"),
        (LAT, {"latency_samples": 5, "p95_ms": 900.0}, "no-data", "only 5 latency"),
        (LAT_FOR, {"latency_samples": 100, "p95_ms": 900.0, "p99_ms": None}, "no-data", "p99"),
        (AUTH, {"auth_ok": False}, "breach", "FAILED"),
        (AUTH, {"auth_ok": None}, "no-data", "not measured"),
    ],
)
def test_judge_window(spec: AnyTrigger, fields: dict[str, object], verdict: str, note: str) -> None:
    ev = judge_window(spec, w(**fields))
    assert ev.verdict == verdict
    assert note in ev.note


# --------------------------------------------------------------------------- series

BAD_DB = {"db_ok": False}
GOOD_DB = {"db_ok": True}
NO_DB: dict[str, object] = {}


@pytest.mark.parametrize(
    ("spec", "series", "states"),
    [
        (DB, [GOOD_DB, BAD_DB, BAD_DB], ["ok", "pending", "firing"]),
        (DB, [BAD_DB, GOOD_DB, BAD_DB, GOOD_DB], ["pending", "ok", "pending", "ok"]),  # flapping
        (DB, [NO_DB, NO_DB], ["pending", "pending"]),  # missing is never ok
        (DB, [BAD_DB, NO_DB, BAD_DB], ["pending", "pending", "firing"]),  # hold keeps the streak
        (DB, [BAD_DB, BAD_DB, NO_DB], ["pending", "firing", "firing"]),  # firing is held
        (DB.model_copy(update={"missing_data": "fire"}), [NO_DB, NO_DB], ["pending", "firing"]),
        (DB.model_copy(update={"missing_data": "fire"}), [NO_DB, GOOD_DB], ["pending", "ok"]),
        (AUTH, [{"auth_ok": True}, {"auth_ok": False}], ["ok", "firing"]),
    ],
)
def test_series_states(
    spec: AnyTrigger, series: list[dict[str, object]], states: list[str]
) -> None:
    windows = [w(i, **fields) for i, fields in enumerate(series)]
    assert [s.state for s in evaluate_series(spec, windows)] == states


def test_for_duration_counts_breaching_evidence_not_wall_time() -> None:
    slow = {"latency_samples": 100, "p99_ms": 800.0}
    series = [w(i, **slow) for i in range(4)] + [w(4)] + [w(5, **slow)]
    statuses = evaluate_series(LAT_FOR, series)
    assert [s.state for s in statuses] == ["pending"] * 4 + ["pending", "firing"]
    assert statuses[-1].streak_s == 300.0
    assert statuses[-1].fired_at_s == 6 * WINDOW_S


def test_firing_status_carries_values_thresholds_and_windows() -> None:
    windows = [w(i, samples=200, error_rate=0.3) for i in range(2)]
    status = evaluate_series(ERR, windows)[-1]
    assert status.state == "firing"
    data = status.to_dict()
    assert data["bound"] == "2 consecutive windows"
    evidence = data["evidence"]
    assert isinstance(evidence, list)
    assert [(e["value"], e["threshold"], e["samples"]) for e in evidence] == [(0.3, 0.1, 200)] * 2
    assert "30.0% > 10.0%" in status.summary


def test_evidence_is_bounded_over_a_day() -> None:
    board = TriggerBoard.start(default_triggers())
    for i in range(24 * 60):
        board = board.advance(w(i, **HEALTHY))
    # every window adds evidence; only the last 12 are kept (MAX_EVIDENCE)
    assert [len(s.evidence) for s in board.statuses.values()] == [12] * len(board.statuses)
    last = (24 * 60 - 1) * WINDOW_S  # ... and they are the latest ones
    assert all(s.evidence[-1].start_s == last for s in board.statuses.values())
    assert all(s.state == "ok" for s in board.statuses.values())


# --------------------------------------------------------------------------- properties


def healthy_window(rng: random.Random, i: int) -> Window:
    """A healthy MyTrader minute with normal jitter: rare errors, latency tails, sparse gaps."""
    n = rng.randint(120, 400)
    errors = sum(rng.random() < 0.01 for _ in range(n))
    p95 = rng.lognormvariate(math.log(90), 0.35)
    if rng.random() < 0.01:  # an isolated GC pause / noisy neighbour
        p95 = rng.uniform(500, 1200)
    attempts = rng.randint(5, 20)
    ok = sum(rng.random() < 0.98 for _ in range(attempts))
    fields: dict[str, object] = {
        "samples": n,
        "error_rate": errors / n,
        "latency_samples": n,
        "p95_ms": p95,
        "p99_ms": p95 * rng.uniform(1.2, 2.0),
        "db_ok": True,
        "hub_attempts": attempts,
        "hub_connect_success": ok / attempts,
        "auth_ok": True,
    }
    if rng.random() < 0.02:  # a window where a probe did not report
        fields[rng.choice(list(fields))] = None
    return w(i, **fields)


@pytest.mark.parametrize("seed", range(5))
def test_a_healthy_day_never_fires(seed: int) -> None:
    rng = random.Random(seed)
    board = TriggerBoard.start(default_triggers())
    for i in range(24 * 60):
        board = board.advance(healthy_window(rng, i))
        assert not board.firing, board.reason()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "samples": st.integers(50, 1000),
                "error_rate": st.floats(0, 0.08),
                "latency_samples": st.integers(20, 1000),
                "p95_ms": st.floats(1, 450),
                "p99_ms": st.floats(1, 499),
                "db_ok": st.just(True),
                "hub_attempts": st.integers(3, 50),
                "hub_connect_success": st.floats(0.5, 1),
                "auth_ok": st.just(True),
            }
        ),
        min_size=1,
        max_size=60,
    )
)
def test_any_series_within_thresholds_never_fires(series: list[dict[str, object]]) -> None:
    board = TriggerBoard.start([*default_triggers(), LAT_FOR])
    for i, fields in enumerate(series):
        board = board.advance(w(i, **fields))
        assert not board.firing
    assert all(s.state == "ok" for s in board.statuses.values())


FAULTS: list[tuple[AnyTrigger, dict[str, object], int]] = [
    (ERR, {"error_rate": 0.35}, 2),
    (DB, {"db_ok": False}, 2),
    (WS, {"hub_connect_success": 0.0}, 2),
    (LAT, {"p95_ms": 1500.0}, 3),
    (LAT_FOR, {"p99_ms": 2500.0}, 5),  # 5m of 60 s windows
    (AUTH, {"auth_ok": False}, 1),
]


@pytest.mark.parametrize(("spec", "fault", "bound"), FAULTS, ids=lambda x: getattr(x, "id", ""))
@pytest.mark.parametrize("seed", range(3))
def test_each_fault_fires_within_its_bound(
    spec: AnyTrigger, fault: dict[str, object], bound: int, seed: int
) -> None:
    rng = random.Random(seed)
    onset = 30
    windows = [
        w(i, **HEALTHY) if i < onset else replace(healthy_window(rng, i), **fault)
        for i in range(onset + 20)
    ]
    windows[:onset] = [replace(healthy_window(rng, i), auth_ok=True) for i in range(onset)]
    fired = first_firing(spec, windows)
    assert fired is not None
    # not before `bound` windows of the fault (the first is the onset window itself), and at
    # most one window later (a window lost to a data gap)
    assert onset + bound - 1 <= fired <= onset + bound, fired


def test_board_reason_and_evidence_for_auto_rollback() -> None:
    board = TriggerBoard.start(default_triggers())
    for i in range(2):
        board = board.advance(w(i, **{**HEALTHY, "db_ok": False}))
    assert [t.trigger_id for t in board.firing] == ["database-failing"]
    assert board.reason().startswith("database-failing: FIRING: database check FAILED")
    evidence = board.evidence()
    assert evidence["all"] == {
        "error-rate-above-10pct": "ok",
        "database-failing": "firing",
        "websocket-unavailable": "ok",
        "latency-above-500ms": "ok",
        "auth-failing": "ok",
    }


def test_shipped_trigger_file_matches_the_defaults() -> None:
    from mytrader_ops.monitor.triggers import load_triggers
    from mytrader_ops.resources import data_dir

    shipped = load_triggers(data_dir("rollback") / "triggers" / "mytrader.yaml")
    strip = [t.model_copy(update={"description": ""}) for t in shipped]
    assert strip == list(default_triggers())


def test_every_shipped_trigger_has_a_runbook() -> None:
    from mytrader_ops.monitor.triggers import load_triggers
    from mytrader_ops.resources import data_dir

    for spec in load_triggers(data_dir("rollback") / "triggers" / "mytrader.yaml"):
        path = data_dir("runbooks") / f"rollback-{spec.id}.md"
        assert path.is_file(), f"missing runbook for trigger {spec.id}"
    assert (data_dir("runbooks") / "rollback-failed.md").is_file()
