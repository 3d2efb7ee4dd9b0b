"""Sequential sampling (issue 9, item 7): anytime-valid confidence sequences, the stop rules,
and the judges built on them, as tables.

The guarantee that makes early stopping and longer sampling safe is coverage at every n at
once. It is checked here by simulation against the naive alternative (re-checking a fixed-n
Wilson interval after every batch), which the same simulation shows to be unsafe.
"""

from __future__ import annotations

import math
import random

import pytest

from mytrader_ops.stats import (
    LatencyHistogram,
    quantile_sequence_ranks,
    share_sequence,
    share_vs_limit,
    wilson_interval,
)
from mytrader_ops.validate.evaluate import (
    CheckMeta,
    SampledLatency,
    judge_percentile,
    judge_share_below,
)
from mytrader_ops.validate.sequential import Criterion, make_schedule, streams_to_stop
from mytrader_ops.verdict import Status


@pytest.mark.parametrize(
    ("k", "n", "limit", "expected"),
    [
        (0, 115, 0.05, "undecided"),  # a flawless run needs 116 samples to clear 5%
        (0, 116, 0.05, "below"),
        (0, 679, 0.01, "undecided"),  # and about 680 to clear 1% (p99)
        (0, 700, 0.01, "below"),
        (50, 1000, 0.05, "undecided"),  # exactly at the limit: never decided
        (30, 1000, 0.05, "undecided"),  # Wilson would pass this at n=1000; 95% at any n won't
        (90, 3000, 0.05, "below"),  # 3% over 3000 samples clears 5%
        (80, 1000, 0.05, "above"),
        (20, 20, 0.05, "above"),  # every sample failing: decided after a handful
        (0, 0, 0.05, "undecided"),
    ],
)
def test_share_vs_limit(k: int, n: int, limit: float, expected: str) -> None:
    assert share_vs_limit(k, n, limit) == expected


def test_share_sequence_contains_the_estimate_and_narrows() -> None:
    widths = []
    for n in (100, 1000, 10_000):
        lo, hi = share_sequence(n // 20, n)
        assert lo < 0.05 < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    assert share_sequence(0, 0) == (0.0, 1.0)
    assert share_sequence(0, 50)[0] == 0.0
    assert share_sequence(50, 50)[1] == 1.0


def _ever_excludes_truth(rng: random.Random, p: float, looks: list[int], naive: bool) -> bool:
    k = n = 0
    for look in looks:
        while n < look:
            k += rng.random() < p
            n += 1
        lo, hi = wilson_interval(k, n) if naive else share_sequence(k, n)
        if not lo <= p <= hi:
            return True
    return False


def test_coverage_holds_at_every_look_while_peeking_at_a_fixed_interval_does_not() -> None:
    """Looking after every 25 samples up to 2000: the sequence covers the true share at every
    look in at least 95% of runs; the Wilson interval, re-checked the same way, does not."""
    rng = random.Random(20261202)
    looks = list(range(25, 2001, 25))
    runs = 300
    sequence_misses = sum(_ever_excludes_truth(rng, 0.05, looks, naive=False) for _ in range(runs))
    naive_misses = sum(_ever_excludes_truth(rng, 0.05, looks, naive=True) for _ in range(runs))
    assert sequence_misses / runs <= 0.05
    assert naive_misses / runs > 0.10  # peeking inflates the error well past 5%


@pytest.mark.parametrize(
    ("n", "percentile", "lower", "upper"),
    [(1000, 95.0, 922, 974), (100, 95.0, 86, None), (0, 95.0, None, None), (700, 99.0, 681, 700)],
)
def test_quantile_sequence_ranks(
    n: int, percentile: float, lower: int | None, upper: int | None
) -> None:
    """The ranks are where the exceedance share becomes decisive: at the upper rank r the
    n - r samples above it are demonstrably fewer than 1 - q, one more sample above is not;
    symmetrically at the lower rank."""
    assert quantile_sequence_ranks(n, percentile) == (lower, upper)
    t = 1 - percentile / 100
    if upper is not None:
        assert share_vs_limit(n - upper, n, t) == "below"
        assert share_vs_limit(n - upper + 1, n, t) != "below"
    if lower is not None:
        assert share_vs_limit(n - lower, n, t) == "above"
        assert share_vs_limit(n - lower - 1, n, t) != "above"


def test_watched_limit_counts_exactly_and_matches_the_buckets() -> None:
    watched, plain = LatencyHistogram(), LatencyHistogram()
    watched.watch(10.0)
    for i in range(1000):
        for h in (watched, plain):
            h.record_ms(i / 50)  # 0.00 .. 19.98 ms
    assert watched.count_above_ms(10.0) == 499  # 10.02 .. 19.98
    assert abs(plain.count_above_ms(10.0) - 499) <= 2  # HDR buckets: within its precision


# --------------------------------------------------------------------------- stop rules

CRITERIA = [
    Criterion("api-latency", True, frozenset({"http /a"})),
    Criterion("health-latency", False, frozenset({"http /h"})),
    Criterion("error-rate", True, frozenset({"http /a", "http /h"})),
]
RUNNING = ["http /a", "http /h"]
ALL_DECIDED = {"api-latency": True, "health-latency": True, "error-rate": True}


@pytest.mark.parametrize(
    ("elapsed", "until", "decided", "stops"),
    [
        # before the planned 20 s without --until-decisive: nothing stops, decided or not
        (12.0, False, ALL_DECIDED, {}),
        # --until-decisive: not before 10 s, then as soon as a stream's criteria are decided
        (9.0, True, ALL_DECIDED, {}),
        (10.2, True, ALL_DECIDED, {"http /a": "every", "http /h": "every"}),
        (10.2, True, {**ALL_DECIDED, "health-latency": False}, {"http /a": "every"}),
        (10.2, True, {**ALL_DECIDED, "error-rate": False}, {}),  # it reads both streams
        # planned time: only an open critical criterion keeps its streams
        (20.0, False, ALL_DECIDED, {"http /a": "planned", "http /h": "planned"}),
        (20.0, False, {**ALL_DECIDED, "health-latency": False}, {"http /a": "p", "http /h": "p"}),
        (20.0, False, {**ALL_DECIDED, "api-latency": False}, {"http /h": "planned"}),
        (31.0, False, {**ALL_DECIDED, "api-latency": True}, {"http /a": "extended"}),
        # the budget ends everything, naming what is still open
        (60.0, False, {**ALL_DECIDED, "api-latency": False}, {"http /a": "budget"}),
    ],
)
def test_streams_to_stop(
    elapsed: float, until: bool, decided: dict[str, bool], stops: dict[str, str]
) -> None:
    schedule = make_schedule(20.0, None, until)
    assert schedule.budget_s == 60.0
    running = RUNNING if elapsed < 31 else ["http /a"]  # /h stopped at the planned time
    got = streams_to_stop(elapsed, schedule, CRITERIA, decided, running)
    assert set(got) == set(stops)
    for stream, start in stops.items():
        assert got[stream].startswith(
            {
                "every": "every criterion decisive",
                "planned": "planned 20 s reached",
                "p": "planned 20 s reached",
                "extended": "decisive after 31.0 s (extended",
                "budget": "budget of 60 s spent; still undecided: api-latency",
            }[start]
        ), got[stream]


def test_a_budget_below_the_plan_is_raised_to_it() -> None:
    assert make_schedule(20.0, 5.0, False).budget_s == 20.0
    assert make_schedule(20.0, 45.0, True).earliest_s == 10.0
    assert make_schedule(4.0, None, True).earliest_s == 4.0


# --------------------------------------------------------------------------- judges


def _sampled(values: list[float], valid: bool = True, lag: float = 0.0) -> SampledLatency:
    h = LatencyHistogram()
    h.watch(10.0)
    for v in values:
        h.record_ms(v)
    return SampledLatency("/x", h, len(values), 0, 0, 0, valid, "note", lag, "planned 20 s")


@pytest.mark.parametrize(
    ("values", "critical", "status", "undemonstrated"),
    [
        ([2.0] * 300, True, Status.PASS, False),
        ([50.0] * 30, True, Status.FAIL, False),  # every sample far above: decided at once
        ([2.0] * 60, True, Status.INCONCLUSIVE, True),  # too few for a 95% bound at any n
        ([2.0] * 60, False, Status.WARN, True),  # non-critical: flagged, not blocking
        ([2.0] * 950 + [20.0] * 50, True, Status.INCONCLUSIVE, True),  # at the limit: open
    ],
)
def test_judge_percentile(
    values: list[float], critical: bool, status: Status, undemonstrated: bool
) -> None:
    v = judge_percentile(CheckMeta("c", "C", critical), _sampled(values), 95.0, 10.0)
    assert v.status is status, v.summary
    assert v.undemonstrated is undemonstrated
    if undemonstrated:
        assert v.summary.startswith("not demonstrated: p95 latency (/x)")
    assert any("anytime-valid 95% bounds" in e for e in v.evidence)
    assert "sampling: planned 20 s" in v.evidence


def test_an_invalid_sampler_cannot_pass_but_a_gross_breach_still_fails() -> None:
    meta = CheckMeta("c", "C")
    assert judge_percentile(meta, _sampled([2.0] * 300, valid=False), 95, 10).status is (
        Status.INCONCLUSIVE
    )
    assert judge_percentile(meta, _sampled([500.0] * 300, lag=80.0), 95, 10).status is Status.FAIL


@pytest.mark.parametrize(
    ("failures", "n", "min_samples", "status"),
    [
        (0, 200, 100, Status.PASS),
        (0, 80, 100, Status.INCONCLUSIVE),  # fewer than the check asks for
        (40, 100, 1, Status.FAIL),
        (50, 1000, 1, Status.INCONCLUSIVE),  # straddles: not demonstrated
    ],
)
def test_judge_share_below(failures: int, n: int, min_samples: int, status: Status) -> None:
    v = judge_share_below(CheckMeta("e", "E"), "error rate", failures, n, 0.05, min_samples)
    assert v.status is status, v.summary
    (m,) = v.measurements
    assert m.threshold == 0.05
    assert m.samples == n
    if n:
        assert m.interval is not None
        assert math.isclose(m.value or 0.0, failures / n)
