"""Adapter from the monitor's `WindowSummary` to the pure trigger fold in
`mytrader_ops.monitor.triggers` (owned by the rollback half of issue 5).

The fold (`TriggerBoard.advance`) decides ok / pending / firing with its evidence; this
module only says which of a window's figures each trigger reads. Rules of the mapping:

- a window the monitor did not measure (killed, then resumed) carries no figure at all: every
  trigger sees "no data" for it, never "ok";
- error rate: every scheduled send of the open-model sampler, errors included;
- latency: the window's p95/p99 over every timed response, with that count;
- database: the readiness report's database component (pass/warn ok, fail = failing);
- websocket: share of the window's hub connections (direct, mobile, proxy) that established;
- auth: a refused login or a fresh token refused is a failure; a 5xx, a rate limit or no
  credentials is not an authentication verdict (no data);
- burn rate (an SLO): availability counts every scheduled send, a failure is a bad event;
  latency counts every timed response, one slower than the SLO's threshold is a bad event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mytrader_ops.monitor.triggers import AnyTrigger, TriggerBoard, Window
from mytrader_ops.monitor.windows import WindowSummary


def to_window(w: WindowSummary) -> Window:
    if w.missing:
        return Window(w.start_s, w.end_s)
    return Window(
        start_s=w.start_s,
        end_s=w.end_s,
        samples=w.requests,
        error_rate=w.error_rate,
        latency_samples=w.latency_samples,
        p95_ms=w.p95_ms,
        p99_ms=w.p99_ms,
        db_ok=None if w.db_status is None else w.db_status != "fail",
        hub_attempts=w.hub_attempts,
        hub_connect_success=(w.hub_ok / w.hub_attempts) if w.hub_attempts else None,
        auth_ok=None if w.auth == "no-data" else w.auth == "ok",
        slow={float(k): v for k, v in w.slow.items()},
        prom={k: (v[0], str(v[1])) for k, v in w.prom.items()},
    )


def fold(specs: Sequence[AnyTrigger], windows: Iterable[WindowSummary]) -> TriggerBoard:
    """Rebuild the trigger board from stored windows (after --resume)."""
    board = TriggerBoard.start(specs)
    for w in windows:
        board = board.advance(to_window(w))
    return board


def worst_bound_s(spec: AnyTrigger, interval_s: float) -> float:
    """The latest a trigger fires after its fault starts: the window the fault began in
    (partly healthy), the bound, and one window for answers still in flight."""
    if spec.consecutive is not None:
        return (spec.consecutive + 2) * interval_s
    limit = spec.for_s
    assert limit is not None
    return limit + 3 * interval_s
