"""Pure core: statistics, judgement and decision, as tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest

from mytrader_ops.observation import Observation, Step
from mytrader_ops.stats import (
    LatencyHistogram,
    min_samples_for_percentile,
    min_samples_for_proportion,
    wilson_interval,
)
from mytrader_ops.validate.decision import KnownIssueRule, apply_known_issues, decide, exit_code
from mytrader_ops.validate.evaluate import (
    CheckMeta,
    LatencyEvidence,
    Limit,
    judge_latency,
    judge_observation,
    judge_rate_above,
    judge_rate_below,
)
from mytrader_ops.verdict import Decision, Status, Verdict

META = CheckMeta("x", "X")


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (0, 1000, 0.0, 0.00383),
        (150, 1000, 0.1292, 0.1735),
        (100, 100, 0.9630, 1.0),
        (50, 100, 0.4038, 0.5962),
        (0, 0, 0.0, 1.0),
    ],
)
def test_wilson(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4)
    assert got[1] == pytest.approx(hi, abs=1e-4)


@pytest.mark.parametrize(("p", "n"), [(95, 59), (99, 299), (50, 5), (90, 29)])
def test_min_samples_percentile(p: float, n: int) -> None:
    assert min_samples_for_percentile(p) == n


@pytest.mark.parametrize(("limit", "n"), [(0.05, 73), (0.95, 73), (0.01, 381)])
def test_min_samples_proportion(limit: float, n: int) -> None:
    got = min_samples_for_proportion(limit)
    assert got == n
    # a flawless run of exactly n samples clears the limit; n - 1 does not
    lo_ok = wilson_interval(got, got)[0]
    lo_short = wilson_interval(got - 1, got - 1)[0]
    assert lo_ok > 1 - min(limit, 1 - limit) >= lo_short


def test_histogram_percentiles_are_exact_to_three_digits() -> None:
    h = LatencyHistogram()
    for i in range(1, 1001):
        h.record_ms(i / 10)  # 0.1 .. 100 ms
    s = h.summary()
    assert s.count == 1000
    assert s.p50_ms == pytest.approx(50.0, rel=2e-3)
    assert s.p99_ms == pytest.approx(99.0, rel=2e-3)
    assert s.max_ms == pytest.approx(100.0, rel=2e-3)
    lo, hi = h.percentile_interval_ms(95)
    assert lo < s.p95_ms < hi


def _ev(values: list[float], valid: bool = True, lag: float = 0.0) -> LatencyEvidence:
    h = LatencyHistogram()
    for v in values:
        h.record_ms(v)
    return LatencyEvidence(
        "/x",
        h.summary(),
        h.percentile_ms(95),
        h.percentile_interval_ms(95),
        len(values),
        0,
        0,
        0,
        valid,
        "note",
        lag,
    )


@pytest.mark.parametrize(
    ("values", "valid", "lag", "status"),
    [
        ([5.0] * 200, True, 0.0, Status.PASS),
        ([50.0] * 200, True, 0.0, Status.FAIL),  # 5x the limit: decisive
        ([5.0] * 30, True, 0.0, Status.INCONCLUSIVE),  # below the 59 samples p95 needs
        ([5.0] * 185 + [9.9] * 6 + [10.5] * 9, True, 0.0, Status.WARN),  # CI reaches limit
        ([5.0] * 200, False, 0.0, Status.INCONCLUSIVE),  # sampler invalid: no pass
        ([50.0] * 200, False, 3.0, Status.FAIL),  # breach larger than the sampler's delay
        ([5.0] * 200, True, 4.0, Status.INCONCLUSIVE),  # own delay 40% of the limit
        ([11.0] * 200, True, 4.0, Status.INCONCLUSIVE),  # breach within the sampler's delay
    ],
)
def test_judge_latency(values: list[float], valid: bool, lag: float, status: Status) -> None:
    v = judge_latency(META, _ev(values, valid, lag), 95, 10.0)
    assert v.status is status
    assert "vs limit <= 10.00 ms" in v.summary
    assert v.measurements[0].threshold == 10.0


@pytest.mark.parametrize(
    ("failures", "n", "status"),
    [
        (0, 1000, Status.PASS),
        (150, 1000, Status.FAIL),  # 3x the 5% threshold: decisive NO-GO
        (50, 1000, Status.FAIL),  # exactly at the limit is not below it
        (40, 1000, Status.WARN),  # 4%: interval reaches 5%
        (0, 50, Status.INCONCLUSIVE),  # too few samples
    ],
)
def test_judge_error_rate(failures: int, n: int, status: Status) -> None:
    v = judge_rate_below(META, "error rate", failures, n, 0.05, 73)
    assert v.status is status
    assert "vs limit < 5.00%" in v.summary
    assert f"n={n}" in v.summary


@pytest.mark.parametrize(
    ("ok", "n", "status"),
    [
        (100, 100, Status.PASS),
        (98, 100, Status.WARN),
        (71, 100, Status.FAIL),
        (10, 10, Status.INCONCLUSIVE),
    ],
)
def test_judge_connection_success(ok: int, n: int, status: Status) -> None:
    assert judge_rate_above(META, "conn", ok, n, 0.95, 73).status is status


def _obs(steps: tuple[Step, ...] = (), **kw: object) -> Observation:
    return Observation("x", "http", "t", 1.0, steps, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("obs", "limits", "status", "fragment"),
    [
        (_obs((Step("status", "ok", "HTTP 200"),)), (), Status.PASS, "status: HTTP 200"),
        (_obs((Step("status", "failed", "HTTP 500"),)), (), Status.FAIL, "status failed: HTTP 500"),
        (_obs(error="overall deadline of 2 s exceeded"), (), Status.FAIL, "deadline"),
        (_obs(inconclusive="no credentials"), (), Status.INCONCLUSIVE, "no credentials"),
        (_obs((Step("a", "unknown", "?"),)), (), Status.INCONCLUSIVE, "a: ?"),
        (
            _obs((Step("a", "ok"),), values={"latency_ms": 700.0}),
            (Limit("latency_ms", 500),),
            Status.FAIL,
            "latency_ms 700 ms vs limit <= 500 ms",
        ),
        (
            _obs((Step("a", "ok"),), values={}),
            (Limit("latency_ms", 500),),
            Status.INCONCLUSIVE,
            "not measured",
        ),
    ],
)
def test_judge_observation(
    obs: Observation, limits: tuple[Limit, ...], status: Status, fragment: str
) -> None:
    v = judge_observation(META, obs, limits)
    assert v.status is status
    assert fragment in v.summary


def _v(check_id: str, status: Status, critical: bool = True, in_scope: bool = True) -> Verdict:
    return Verdict(check_id, check_id, status, "s", critical=critical, in_scope=in_scope)


@pytest.mark.parametrize(
    ("verdicts", "decision", "code"),
    [
        ([_v("a", Status.PASS), _v("b", Status.WARN)], Decision.GO, 0),
        ([_v("a", Status.PASS), _v("b", Status.FAIL)], Decision.NO_GO, 1),
        ([_v("a", Status.INCONCLUSIVE), _v("b", Status.FAIL)], Decision.NO_GO, 1),
        ([_v("a", Status.PASS), _v("b", Status.INCONCLUSIVE)], Decision.INCONCLUSIVE, 3),
        ([_v("a", Status.PASS), _v("b", Status.KNOWN_ISSUE)], Decision.GO_WITH_KNOWN_ISSUES, 0),
        ([_v("a", Status.PASS), _v("b", Status.FAIL, critical=False)], Decision.GO, 0),
        ([_v("a", Status.PASS), _v("f", Status.FAIL, in_scope=False)], Decision.GO, 0),
        ([_v("f", Status.FAIL, in_scope=False)], Decision.INCONCLUSIVE, 3),  # nothing judged
        ([], Decision.INCONCLUSIVE, 3),
    ],
)
def test_decide(verdicts: list[Verdict], decision: Decision, code: int) -> None:
    assert decide(verdicts) is decision
    assert exit_code(decision) == code


TODAY = dt.date(2026, 11, 27)


NEXT_MONTH = dt.date(2026, 12, 27)


@pytest.mark.parametrize(
    ("status", "summary", "waives", "match", "expires", "after", "says"),
    [
        (Status.FAIL, "HTTP 503", ("fail",), None, NEXT_MONTH, Status.KNOWN_ISSUE, "HTTP 503"),
        # issue 9.3: missing evidence is not a known failure; it stays missing by default
        (
            Status.INCONCLUSIVE,
            "no credentials",
            ("fail",),
            None,
            NEXT_MONTH,
            Status.INCONCLUSIVE,
            "waives failures only",
        ),
        (
            Status.INCONCLUSIVE,
            "no credentials",
            ("fail", "inconclusive"),
            None,
            NEXT_MONTH,
            Status.KNOWN_ISSUE,
            "not measured, waived by OPS-7",
        ),
        (
            Status.FAIL,
            "HTTP 503",
            ("inconclusive",),
            None,
            NEXT_MONTH,
            Status.FAIL,
            "does not apply",
        ),
        # `match` waives the failure it names, not a different failure of the same check
        (
            Status.FAIL,
            "HTTP 503 from /api",
            ("fail",),
            r"HTTP 50[0-9]",
            NEXT_MONTH,
            Status.KNOWN_ISSUE,
            "HTTP 503",
        ),
        (
            Status.FAIL,
            "p95 latency 900 ms",
            ("fail",),
            r"HTTP 50[0-9]",
            NEXT_MONTH,
            Status.FAIL,
            "does not match",
        ),
        (Status.FAIL, "HTTP 503", ("fail",), None, dt.date(2026, 11, 1), Status.FAIL, "expired"),
        (
            Status.INCONCLUSIVE,
            "no credentials",
            ("fail", "inconclusive"),
            None,
            dt.date(2026, 11, 1),
            Status.INCONCLUSIVE,
            "expired",
        ),
        (Status.PASS, "ok", ("fail",), None, dt.date(2026, 11, 1), Status.PASS, "ok"),
        (Status.WARN, "degraded", ("fail",), None, NEXT_MONTH, Status.WARN, "degraded"),
        (Status.FAIL, "HTTP 503", ("fail",), None, TODAY, Status.KNOWN_ISSUE, "HTTP 503"),
    ],
)
def test_known_issues(
    status: Status,
    summary: str,
    waives: tuple[str, ...],
    match: str | None,
    expires: dt.date,
    after: Status,
    says: str,
) -> None:
    rule = KnownIssueRule("a", "OPS-7", "restart nightly", expires, waives, match)
    v0 = dataclasses.replace(_v("a", status), summary=summary)
    (v,) = apply_known_issues([v0], [rule], TODAY)
    assert v.status is after
    assert says in v.summary
    assert v.known_issue is not None
    assert v.known_issue.ticket == "OPS-7"
    assert v.known_issue.days_left == (expires - TODAY).days
    assert v.known_issue.applied is (after is Status.KNOWN_ISSUE)


def test_a_waived_inconclusive_is_go_with_known_issues_never_plain_go() -> None:
    rule = KnownIssueRule("a", "OPS-7", "m", NEXT_MONTH, ("fail", "inconclusive"))
    out = apply_known_issues([_v("a", Status.INCONCLUSIVE), _v("b", Status.PASS)], [rule], TODAY)
    assert decide(out) is Decision.GO_WITH_KNOWN_ISSUES


def test_nan_free_percentile_on_empty_histogram() -> None:
    assert math.isnan(LatencyHistogram().percentile_ms(95))


def test_histogram_merge_and_checkpoint_keep_count_percentiles_and_exact_mean() -> None:
    """The monitor merges window histograms and checkpoints them as text: nothing may drift."""
    from mytrader_ops.stats import LatencyHistogram

    a, b = LatencyHistogram(), LatencyHistogram()
    for v in (1.0, 2.0, 3.0):
        a.record_ms(v)
    for v in (10.0, 20.0):
        b.record_ms(v)
    a.merge(b)
    assert a.count == 5
    assert a.summary().mean_ms == pytest.approx(36.0 / 5)
    restored = LatencyHistogram.decode(a.encode())
    assert restored.count == 5
    assert restored.summary().mean_ms == pytest.approx(36.0 / 5)
    assert restored.percentile_ms(99) == pytest.approx(a.percentile_ms(99))
    assert LatencyHistogram.decode("").count == 0
    assert LatencyHistogram().encode() == ""
