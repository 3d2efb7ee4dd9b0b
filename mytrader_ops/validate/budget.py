"""Gate a deploy on an SLO's remaining error budget (`kind: error-budget`).

Rules (pure; the events come from a `BudgetSource`, the monitor's stored windows, or for an
SLO with `signal: promql` from the environment's Prometheus, the fleet's good share over the
SLO window):
- the SLO window's events for this backend, fewer than the check's `min_samples` (default
  1000) -> INCONCLUSIVE: no data is missing evidence, never a healthy budget;
- what remains of the budget below `min_remaining` (default 10%), or overspent -> FAIL: a
  deploy while the budget is spent is NO-GO, with the figure;
- otherwise PASS, with the remaining share, the events it rests on and their source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from mytrader_ops.config import ErrorBudgetCheck, Slo
from mytrader_ops.errorbudget import Events, error_budget
from mytrader_ops.probes.prometheus import PromResult
from mytrader_ops.validate.evaluate import CheckMeta, make_verdict
from mytrader_ops.verdict import Measurement, Status, Verdict


class BudgetSource(Protocol):
    """Where an SLO's good and total events come from (the monitor's store)."""

    @property
    def name(self) -> str: ...

    def events(self, target: str, slo: Slo, since_s: float) -> Sequence[Events]: ...


def judge_budget(
    meta: CheckMeta, check: ErrorBudgetCheck, slo: Slo, events: Sequence[Events], source: str
) -> Verdict:
    budget = error_budget(events, slo.objective)
    m = Measurement(
        f"error budget remaining (SLO {slo.id}, {slo.objective:.3%} over {slo.window})",
        budget.remaining,
        "%",
        check.min_remaining,
        ">=",
        budget.total,
    )
    evidence = (
        f"{budget.total - budget.good} bad of {budget.total} events in {budget.windows} "
        f"window(s) of the last {slo.window} ({slo.signal}"
        + (f" within {slo.threshold_ms:g} ms" if slo.threshold_ms is not None else "")
        + f"), from {source}",
    )
    if budget.total < check.min_samples or budget.remaining is None:
        return make_verdict(
            meta,
            Status.INCONCLUSIVE,
            f"no evidence: {budget.total} events in the SLO window, {check.min_samples} needed "
            f"({source})",
            measurements=(m,),
            evidence=evidence,
        )
    if budget.remaining < check.min_remaining:
        return make_verdict(
            meta, Status.FAIL, f"budget spent: {m.describe()}", measurements=(m,), evidence=evidence
        )
    return make_verdict(meta, Status.PASS, m.describe(), measurements=(m,), evidence=evidence)


def judge_promql_budget(
    meta: CheckMeta, check: ErrorBudgetCheck, slo: Slo, result: PromResult
) -> Verdict:
    """The fleet's budget: remaining = 1 - (1 - good share over the window) / (1 - objective)."""
    name = f"error budget remaining (SLO {slo.id}, {slo.objective:.3%} over {slo.window})"
    evidence: tuple[str, ...] = (f"query: {slo.ratio_query(slo.window)}",)
    values = [v for s in result.series for _t, v in s.samples]
    why = result.unreachable
    if why is None and result.rejected is not None:
        why = f"Prometheus rejected the query: {result.rejected}"
    if why is None and not values:
        why = "the query matched nothing"
    if why is None and any(math.isnan(v) for v in values):
        why = "the good share is NaN (no events in the window?)"
    if why is not None:
        m = Measurement(name, None, "%", check.min_remaining, ">=")
        return make_verdict(
            meta, Status.INCONCLUSIVE, f"no evidence: {why}", measurements=(m,), evidence=evidence
        )
    share = min(values)
    remaining = 1 - (1 - share) / (1 - slo.objective)
    m = Measurement(name, remaining, "%", check.min_remaining, ">=")
    evidence += (f"good share over {slo.window}: {share:.6f}",)
    if remaining < check.min_remaining:
        return make_verdict(
            meta, Status.FAIL, f"budget spent: {m.describe()}", measurements=(m,), evidence=evidence
        )
    return make_verdict(meta, Status.PASS, m.describe(), measurements=(m,), evidence=evidence)
