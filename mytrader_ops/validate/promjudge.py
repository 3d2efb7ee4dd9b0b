"""Pure: a PromQL result judged against a check's `max` or `min` (`kind: prometheus`).

Rules (missing evidence is never a pass):
- an unreachable Prometheus (or its auth failing) -> INCONCLUSIVE, with the reason;
- a query the server rejected -> INCONCLUSIVE, with the server's message (a configuration
  error; `config check --env NAME` reports it before any run);
- fewer series than `min_series` (an empty result included) -> INCONCLUSIVE;
- a NaN value, or (over a range) a series with fewer than `min_samples` samples or whose last
  sample is older than two steps (stale) -> INCONCLUSIVE, naming the series;
- `aggregate: each`: every sample of every series must hold; the worst one is reported, and a
  breach FAILs; `max`/`min`/`avg`: one figure over all samples against the limit.
"""

from __future__ import annotations

import math

from mytrader_ops.config import PrometheusCheck
from mytrader_ops.probes.prometheus import PromResult
from mytrader_ops.validate.evaluate import CheckMeta, make_verdict
from mytrader_ops.verdict import Measurement, Status, Verdict


def _holds(value: float, check: PrometheusCheck) -> bool:
    if check.max is not None:
        return value <= check.max
    assert check.min is not None
    return value >= check.min


def judge_prometheus(meta: CheckMeta, check: PrometheusCheck, r: PromResult) -> Verdict:
    limit = check.max if check.max is not None else check.min
    comparator = "<=" if check.max is not None else ">="
    what = f"{check.query} over {check.range}" if check.range else check.query
    evidence = [f"query: {what}"]

    def missing(why: str) -> Verdict:
        m = Measurement("query value", None, check.unit, limit, comparator)
        return make_verdict(
            meta,
            Status.INCONCLUSIVE,
            f"no evidence: {why}",
            measurements=(m,),
            evidence=tuple(evidence),
        )

    if r.unreachable is not None:
        return missing(r.unreachable)
    if r.rejected is not None:
        return missing(f"Prometheus rejected the query: {r.rejected}")
    if len(r.series) < check.min_series:
        return missing(
            f"{len(r.series)} series, {check.min_series} needed (the query matched nothing)"
        )
    values: list[tuple[str, float]] = []
    for s in r.series:
        if r.range_s is not None and len(s.samples) < check.min_samples:
            return missing(f"{s.labels}: {len(s.samples)} samples, {check.min_samples} needed")
        if r.step_s is not None and s.samples and s.samples[-1][0] < r.evaluated_at - 2 * r.step_s:
            return missing(
                f"{s.labels} is stale (last sample {r.evaluated_at - s.samples[-1][0]:.0f} s old)"
            )
        for _ts, v in s.samples:
            if math.isnan(v):
                return missing(f"{s.labels} is NaN")
            values.append((s.labels, v))
        evidence.append(f"{s.labels}: last {s.samples[-1][1]:g}" if s.samples else s.labels)
    if check.aggregate == "each":
        worst = (
            max(values, key=lambda lv: lv[1])
            if check.max is not None
            else min(values, key=lambda lv: lv[1])
        )
        name, value = f"query value {worst[0]}", worst[1]
    else:
        figures = [v for _l, v in values]
        value = {"max": max, "min": min}.get(check.aggregate, lambda xs: sum(xs) / len(xs))(figures)
        name = f"query value ({check.aggregate} over {len(r.series)} series)"
    m = Measurement(name, value, check.unit, limit, comparator, len(values))
    status = Status.PASS if _holds(value, check) else Status.FAIL
    return make_verdict(meta, status, m.describe(), measurements=(m,), evidence=tuple(evidence))
