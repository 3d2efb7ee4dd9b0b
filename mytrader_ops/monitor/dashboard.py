"""What the operator sees each window: a rich live dashboard on a terminal, one plain line per
window otherwise, and with `--json` one JSON line per window on stdout for machines.

The dashboard shows the latest windows, the trends (memory, CPU, latency) and every trigger
with its state (ok / pending / firing / no-data), the value against its threshold, how
far its streak is from the bound, and its evidence coverage so far (windows with evidence of
windows watched, longest blind stretch against the bound: monitor/coverage.py). Every
`--json` trigger entry carries the same coverage figures. rich is imported only here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import deque
from collections.abc import Sequence
from typing import IO, Any

from mytrader_ops.monitor.aggregate import Totals
from mytrader_ops.monitor.coverage import EvidenceFinding, percent
from mytrader_ops.monitor.triggers import TriggerStatus
from mytrader_ops.monitor.windows import WindowSummary, fit_trend, to_dict
from mytrader_ops.redaction import Redactor

WINDOW_SCHEMA = "mytrader-ops.monitor-window/v1"
# What redaction leaves alone in a window line: identifiers and states (structure), and the
# objects whose keys are text counted by kind (masked like any other text).
_STRUCTURE = frozenset(
    {"schema", "watch_id", "trigger", "kind", "state", "verdict", "auth", "db_status"}
)
_FREE_KEYS = frozenset({"error_kinds", "hub_failures"})
_STYLE = {"ok": "green", "pending": "yellow", "firing": "bold red"}


def _clock(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


MIN_TREND_SPAN_S = 60.0


def _trend_text(points: list[tuple[float, float]], unit: str, scale: float) -> str:
    trend = fit_trend(points)
    if trend is None:
        return "no data yet (service /metrics scrapes needed)"
    if trend.span_s < MIN_TREND_SPAN_S:
        return (
            f"{trend.last / scale:.3g} {unit} now; slope after {MIN_TREND_SPAN_S:g} s "
            f"({trend.points} points so far)"
        )
    return trend.describe(unit, scale)


def trends(totals: Totals) -> dict[str, str]:
    return {
        "memory": _trend_text(totals.rss.points, "MB", 1024 * 1024),
        "cpu": _trend_text(totals.cpu.points, "cores", 1.0),
    }


def _coverage_text(f: EvidenceFinding | None) -> str:
    if f is None or f.coverage.share is None:
        return "-"
    c = f.coverage
    text = f"{c.windows_with_evidence}/{c.windows_watched} ({percent(c.share or 0.0)})"
    return text if f.sufficient else f"{text} INSUFFICIENT"


def window_line(
    w: WindowSummary, states: Sequence[TriggerStatus], evidence: Sequence[EvidenceFinding] = ()
) -> str:
    if w.missing:
        return f"window {w.index} {_clock(w.start_s)}: not measured ({'; '.join(w.notes)})"
    err = f"{w.errors}/{w.requests}"
    found = {f.trigger_id: f for f in evidence}
    trig = " ".join(
        f"{s.trigger_id}={s.state}"
        + (f" evidence {_coverage_text(found[s.trigger_id])}" if s.trigger_id in found else "")
        for s in states
    )
    return (
        f"window {w.index} {_clock(w.start_s)}: errors {err}, p95 {_ms(w.p95_ms)} ms, "
        f"hubs {w.hub_ok}/{w.hub_attempts}, db {w.db_status or 'no-data'}, auth {w.auth}, "
        f"stream {w.stream_messages} msgs (max gap {_ms(w.stream_max_gap_s)} s) | {trig}"
    )


def window_json(
    watch_id: str,
    w: WindowSummary,
    states: Sequence[TriggerStatus],
    totals: Totals,
    evidence: Sequence[EvidenceFinding],
) -> dict[str, Any]:
    """One `--json` line: the window, each trigger with its coverage so far, the trends."""
    found = {f.trigger_id: f for f in evidence}
    return {
        "schema": WINDOW_SCHEMA,
        "watch_id": watch_id,
        "window": to_dict(w),
        "triggers": [
            {
                **s.to_dict(),
                "evidence": [e.to_dict() for e in s.evidence[-1:]],
                **(found[s.trigger_id].to_dict() if s.trigger_id in found else {}),
            }
            for s in states
        ],
        "trends": trends(totals),
    }


class JsonLines:
    """One JSON document per window, one line each, flushed at once."""

    def __init__(self, watch_id: str, out: IO[str], redactor: Redactor) -> None:
        self.watch_id = watch_id
        self.out = out
        self.redactor = redactor

    def window(
        self,
        w: WindowSummary,
        states: Sequence[TriggerStatus],
        totals: Totals,
        evidence: Sequence[EvidenceFinding],
    ) -> None:
        doc = window_json(self.watch_id, w, states, totals, evidence)
        self.out.write(
            json.dumps(
                self.redactor.redact_json(doc, _STRUCTURE, _FREE_KEYS), separators=(",", ":")
            )
            + "\n"
        )
        self.out.flush()


class PlainLines:
    """Without a terminal: one readable line per window (stderr when --json owns stdout)."""

    def __init__(self, out: IO[str], redactor: Redactor) -> None:
        self.out = out
        self.redactor = redactor

    def window(
        self,
        w: WindowSummary,
        states: Sequence[TriggerStatus],
        totals: Totals,
        evidence: Sequence[EvidenceFinding],
    ) -> None:
        self.out.write(self.redactor.redact(window_line(w, states, evidence)) + "\n")
        for s in states:
            if s.state != "ok":
                self.out.write(self.redactor.redact(f"  {s.trigger_id}: {s.summary}") + "\n")
        for f in evidence:
            # A shortfall against the floor can still recover; a blind stretch beyond the
            # bound cannot: say so once it happens, not only at the end.
            if f.blind_too_long:
                self.out.write(
                    f"  {f.trigger_id}: evidence insufficient ({'; '.join(f.reasons)}): "
                    "the watch ends with exit 3 unless a trigger fires\n"
                )
        self.out.flush()


class LiveDashboard:
    """The rich live view; `start()`/`stop()` bracket the watch."""

    def __init__(self, title: str, redactor: Redactor, no_color: bool = False) -> None:
        from rich.console import Console
        from rich.live import Live

        self.title = title
        self.redactor = redactor
        self.recent: deque[WindowSummary] = deque(maxlen=8)
        self.console = Console(no_color=no_color, stderr=False)
        self.live = Live(console=self.console, auto_refresh=False, transient=False)

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.stop()

    def window(
        self,
        w: WindowSummary,
        states: Sequence[TriggerStatus],
        totals: Totals,
        evidence: Sequence[EvidenceFinding],
    ) -> None:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        self.recent.append(w)
        wins = Table(title=self.redactor.redact(self.title), expand=True)
        for col in ("#", "start", "req", "err", "p95 ms", "hubs", "db", "auth", "stream"):
            wins.add_column(col)
        for x in self.recent:
            if x.missing:
                wins.add_row(
                    str(x.index), _clock(x.start_s), "-", "-", "-", "-", "-", "-", "not measured"
                )
                continue
            wins.add_row(
                str(x.index),
                _clock(x.start_s),
                str(x.requests),
                str(x.errors),
                _ms(x.p95_ms),
                f"{x.hub_ok}/{x.hub_attempts}",
                x.db_status or "no-data",
                x.auth,
                f"{x.stream_messages} msgs, gap {_ms(x.stream_max_gap_s)} s",
            )
        trig = Table(title="Rollback triggers", expand=True)
        for col in (
            "trigger",
            "state",
            "latest window: value vs threshold",
            "streak / bound",
            "evidence (windows)",
        ):
            trig.add_column(col)
        found = {f.trigger_id: f for f in evidence}
        for s in states:
            latest = s.evidence[-1].note if s.evidence else "no window yet"
            if s.missing_windows:
                latest += f" ({s.missing_windows} window(s) without evidence)"
            trig.add_row(
                s.trigger_id,
                Text(s.state.upper(), style=_STYLE[s.state]),
                self.redactor.redact(latest),
                f"{s.streak_windows} window(s), {s.streak_s:.0f} s / {s.bound}",
                _coverage_text(found.get(s.trigger_id)),
            )
        t = trends(totals)
        trend = Text(f"memory: {t['memory']}\ncpu: {t['cpu']}")
        self.live.update(Group(wins, trig, trend), refresh=True)
