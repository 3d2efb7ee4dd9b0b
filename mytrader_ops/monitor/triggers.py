"""Rollback triggers for `mytrader-ops monitor`: typed, explicit, and pure.

MyTrader's release plan named five rollback triggers; here each is a typed rule with an
explicit persistence bound, `consecutive: N` windows or `for: DURATION` of breaching
evidence, never "consistently":

    error-rate   error rate above `above` (e.g. 0.10) in a window with >= min_samples requests
    database     the database check failed (db_ok is False)
    websocket    hub connections completely unavailable (success rate <= at_or_below, 0.0)
    latency      the window's p95 or p99 above `above_ms` (e.g. 500 ms)
    auth         authentication failed (auth_ok is False)

Input is a sequence of per-window observations (`Window`); output per trigger is a state,
ok | pending | firing, with its evidence (values, thresholds, windows). The fold is pure
(`advance`, `evaluate_series`), so the monitor can rebuild trigger state from its stored
windows after a restart.

Missing data is never read as healthy. A window that lacks the trigger's signal, or has
too few samples, is "no evidence": the trigger is at least *pending* and an ongoing streak
neither grows nor resets (`missing_data: hold`, the default, so a blind monitor does not
roll back a healthy release), or it counts as a breach (`missing_data: fire`, fail-closed).
A streak resets only on a window with evidence that the condition does not hold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mytrader_ops.errorbudget import Burn, Events, burn_rate
from mytrader_ops.errors import ConfigError, ConfigProblem
from mytrader_ops.yamlsafe import KeyPath, YamlDocument, format_path, parse_yaml, read_yaml

TriggerState = Literal["ok", "pending", "firing"]
WindowVerdict = Literal["breach", "ok", "no-data"]
MAX_EVIDENCE = 12  # windows of evidence kept per trigger: bounded memory over 24 hours
MAX_REASON = 1000  # a rollback --reason is capped at 2000 characters
_DURATION = re.compile(r"^(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h|d)$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TRIGGER_TAGS = frozenset({"error-rate", "database", "websocket", "latency", "auth", "burn-rate"})


def parse_duration(text: str) -> float:
    """`90s`, `5m`, `1.5h`, `500ms` -> seconds. A bare number is refused as ambiguous."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"duration {text!r}: write a number with a unit: 500ms, 30s, 5m, 1h")
    return float(match.group("n")) * _UNIT_S[match.group("unit")]


# --------------------------------------------------------------------------- observations


@dataclass(frozen=True, slots=True)
class Window:
    """What the monitor measured in one window. None means "not measured" (no evidence)."""

    start_s: float  # seconds since the epoch (or any common origin)
    end_s: float
    samples: int | None = None  # requests behind error_rate
    error_rate: float | None = None  # 0..1
    latency_samples: int | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    db_ok: bool | None = None
    hub_attempts: int | None = None
    hub_connect_success: float | None = None  # 0..1 share of hub connections established
    auth_ok: bool | None = None
    slow: Mapping[float, int] = field(default_factory=dict)  # samples above each threshold
    # burn rates over each burn-rate trigger's (long, short) windows, set by the board
    burn: Mapping[str, tuple[Burn, Burn]] = field(default_factory=dict)
    # each prometheus trigger's worst series value this window (None: no evidence, with why)
    prom: Mapping[str, tuple[float | None, str]] = field(default_factory=dict)

    @property
    def length_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    def events(self, signal: str, threshold_ms: float | None) -> Events | None:
        """Good and total events for an SLO signal; None when the window measured nothing."""
        if signal == "availability":
            if self.samples is None or self.error_rate is None:
                return None
            bad = round(self.samples * self.error_rate)
            return Events(self.end_s, self.length_s, self.samples - bad, self.samples)
        if self.latency_samples is None or threshold_ms is None or threshold_ms not in self.slow:
            return None
        slow = self.slow[threshold_ms]
        return Events(self.end_s, self.length_s, self.latency_samples - slow, self.latency_samples)


# --------------------------------------------------------------------------- configuration


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    description: str = ""
    consecutive: Annotated[int, Field(ge=1, le=1000)] | None = None
    for_: str | None = Field(default=None, alias="for")
    missing_data: Literal["hold", "fire"] = "hold"

    @model_validator(mode="after")
    def _persistence(self) -> _Spec:
        if (self.consecutive is None) == (self.for_ is None):
            raise ValueError(
                "state how long the condition must hold: exactly one of "
                "'consecutive: N' (windows) or 'for: DURATION' (e.g. 5m)"
            )
        if self.for_ is not None:
            seconds = parse_duration(self.for_)
            if seconds <= 0:
                raise ValueError("'for' must be longer than zero")
        return self

    @property
    def for_s(self) -> float | None:
        return parse_duration(self.for_) if self.for_ is not None else None

    def bound(self) -> str:
        if self.consecutive is not None:
            return f"{self.consecutive} consecutive window{'s' if self.consecutive > 1 else ''}"
        return f"for {self.for_}"


class ErrorRateTrigger(_Spec):
    kind: Literal["error-rate"]
    above: Annotated[float, Field(gt=0, lt=1)] = 0.10
    min_samples: Annotated[int, Field(ge=1)] = 50


class DatabaseTrigger(_Spec):
    kind: Literal["database"]


class WebSocketTrigger(_Spec):
    kind: Literal["websocket"]
    at_or_below: Annotated[float, Field(ge=0, lt=1)] = 0.0
    min_attempts: Annotated[int, Field(ge=1)] = 3


class LatencyTrigger(_Spec):
    kind: Literal["latency"]
    percentile: Literal["p95", "p99"] = "p95"
    above_ms: Annotated[float, Field(gt=0)] = 500.0
    min_samples: Annotated[int, Field(ge=1)] = 20


class AuthTrigger(_Spec):
    kind: Literal["auth"]


class BurnRateTrigger(_Spec):
    """An SLO's error budget burning at `factor` x over a long and a short window at once (the
    SRE workbook's multiwindow, multi-burn-rate alert); usually made from a config's `slos:`."""

    kind: Literal["burn-rate"]
    slo: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    objective: Annotated[float, Field(gt=0, lt=1)]
    signal: Literal["availability", "latency", "promql"] = "availability"
    threshold_ms: Annotated[float, Field(gt=0)] | None = None
    # signal promql: the good share over each window comes from these (with $window)
    good: str | None = None
    total: str | None = None
    long: str
    short: str
    factor: Annotated[float, Field(gt=0, le=1000)]
    min_events: Annotated[int, Field(ge=1)] = 100  # in the long window, else no evidence

    @model_validator(mode="after")
    def _windows(self) -> BurnRateTrigger:
        if parse_duration(self.short) >= parse_duration(self.long):
            raise ValueError("the short window must be shorter than the long one")
        return self

    @property
    def long_s(self) -> float:
        return parse_duration(self.long)

    @property
    def short_s(self) -> float:
        return parse_duration(self.short)


class PrometheusTrigger(_Spec):
    """A PromQL query over the fleet, evaluated each window: the worst series above `above`
    (or below `below`) breaches; an empty result, NaN or an unreachable Prometheus is no
    evidence, as for every other trigger."""

    kind: Literal["prometheus"]
    query: str = Field(min_length=1, max_length=4000)
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> PrometheusTrigger:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above: or below:")
        return self


TriggerSpec = Annotated[
    ErrorRateTrigger
    | DatabaseTrigger
    | WebSocketTrigger
    | LatencyTrigger
    | AuthTrigger
    | BurnRateTrigger
    | PrometheusTrigger,
    Field(discriminator="kind"),
]
AnyTrigger = (
    ErrorRateTrigger
    | DatabaseTrigger
    | WebSocketTrigger
    | LatencyTrigger
    | AuthTrigger
    | BurnRateTrigger
    | PrometheusTrigger
)


def burn_triggers(
    slo_id: str,
    objective: float,
    signal: Literal["availability", "latency", "promql"],
    threshold_ms: float | None,
    alerts: Sequence[tuple[str, str, float]],
    good: str | None = None,
    total: str | None = None,
) -> tuple[BurnRateTrigger, ...]:
    """One burn-rate trigger per alert of an SLO; each fires on the first window that burns
    over both of its windows (the windows themselves are the persistence)."""
    return tuple(
        BurnRateTrigger(
            id=f"slo-{slo_id}-burn-{long}-{short}"[:63],
            kind="burn-rate",
            description=f"SLO {slo_id} budget burning at {factor:g}x over {long} and {short}",
            consecutive=1,
            slo=slo_id,
            objective=objective,
            signal=signal,
            threshold_ms=threshold_ms,
            long=long,
            short=short,
            factor=factor,
            good=good,
            total=total,
        )
        for long, short, factor in alerts
    )


def promql_ratio(spec: BurnRateTrigger, span: str) -> str:
    """The PromQL good share of a promql burn-rate trigger over `span`."""
    assert spec.good is not None
    assert spec.total is not None
    return f"({spec.good.replace('$window', span)}) / ({spec.total.replace('$window', span)})"


class TriggerSet(BaseModel):
    """A `triggers:` list (the file format of rollback/triggers/*.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    version: Literal[1] = 1
    triggers: Annotated[list[TriggerSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> TriggerSet:
        ids = [t.id for t in self.triggers]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate trigger ids: {', '.join(dupes)}")
        return self


def parse_triggers(doc: YamlDocument) -> tuple[AnyTrigger, ...]:
    """Validate a parsed `triggers:` document; problems name file, line and key path."""
    try:
        model = TriggerSet.model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc: KeyPath = tuple(err["loc"])
            path = tuple(
                p
                for i, p in enumerate(loc)
                if not (p in _TRIGGER_TAGS and i > 0 and isinstance(loc[i - 1], int))
            )
            message = err["msg"]
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                path = (*path, "kind")
                message += f" (kinds: {', '.join(sorted(_TRIGGER_TAGS))})"
            problems.append(ConfigProblem(doc.file, doc.line_of(path), format_path(path), message))
        raise ConfigError(problems) from None
    return tuple(model.triggers)


def load_triggers(path: Path) -> tuple[AnyTrigger, ...]:
    return parse_triggers(read_yaml(path))


def triggers_from_text(text: str, file: str = "<string>") -> tuple[AnyTrigger, ...]:
    return parse_triggers(parse_yaml(text, file))


def default_triggers() -> tuple[AnyTrigger, ...]:
    """MyTrader's five rollback triggers with explicit bounds (see rollback/triggers/)."""
    return (
        ErrorRateTrigger(id="error-rate-above-10pct", kind="error-rate", consecutive=2),
        DatabaseTrigger(id="database-failing", kind="database", consecutive=2),
        WebSocketTrigger(id="websocket-unavailable", kind="websocket", consecutive=2),
        LatencyTrigger(id="latency-above-500ms", kind="latency", consecutive=3),
        AuthTrigger(id="auth-failing", kind="auth", consecutive=2),
    )


# --------------------------------------------------------------------------- judging one window


@dataclass(frozen=True, slots=True)
class WindowEvidence:
    """One window as a trigger saw it: verdict, value beside threshold, sample count."""

    start_s: float
    end_s: float
    verdict: WindowVerdict
    value: float | None
    threshold: float | None
    samples: int | None
    note: str

    def to_dict(self) -> dict[str, object]:
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "verdict": self.verdict,
            "value": self.value,
            "threshold": self.threshold,
            "samples": self.samples,
            "note": self.note,
        }


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def judge_window(spec: AnyTrigger, w: Window) -> WindowEvidence:
    """Breach, ok or no-data for one window (pure)."""

    def ev(
        verdict: WindowVerdict, value: float | None, thr: float | None, n: int | None, note: str
    ) -> WindowEvidence:
        return WindowEvidence(w.start_s, w.end_s, verdict, value, thr, n, note)

    if isinstance(spec, ErrorRateTrigger):
        rate = _finite(w.error_rate)
        if rate is None:
            return ev("no-data", None, spec.above, w.samples, "error rate not measured")
        if w.samples is not None and w.samples < spec.min_samples:
            return ev(
                "no-data",
                rate,
                spec.above,
                w.samples,
                f"only {w.samples} requests (< {spec.min_samples})",
            )
        breach = rate > spec.above
        rel = ">" if breach else "<="
        return ev(
            "breach" if breach else "ok",
            rate,
            spec.above,
            w.samples,
            f"error rate {rate:.1%} {rel} {spec.above:.1%}",
        )
    if isinstance(spec, LatencyTrigger):
        value = _finite(w.p95_ms if spec.percentile == "p95" else w.p99_ms)
        n = w.latency_samples
        if value is None:
            return ev("no-data", None, spec.above_ms, n, f"{spec.percentile} not measured")
        if n is not None and n < spec.min_samples:
            return ev(
                "no-data",
                value,
                spec.above_ms,
                n,
                f"only {n} latency samples (< {spec.min_samples})",
            )
        breach = value > spec.above_ms
        rel = ">" if breach else "<="
        return ev(
            "breach" if breach else "ok",
            value,
            spec.above_ms,
            n,
            f"{spec.percentile} {value:.1f} ms {rel} {spec.above_ms:g} ms",
        )
    if isinstance(spec, WebSocketTrigger):
        share = _finite(w.hub_connect_success)
        n = w.hub_attempts
        if share is None:
            return ev("no-data", None, spec.at_or_below, n, "hub connections not attempted")
        if n is not None and n < spec.min_attempts:
            return ev(
                "no-data",
                share,
                spec.at_or_below,
                n,
                f"only {n} hub connection attempts (< {spec.min_attempts})",
            )
        breach = share <= spec.at_or_below
        text = f"hub connection success {share:.0%}"
        return ev(
            "breach" if breach else "ok",
            share,
            spec.at_or_below,
            n,
            text + (" (unavailable)" if breach else ""),
        )
    if isinstance(spec, PrometheusTrigger):
        limit = spec.above if spec.above is not None else spec.below
        value, why = w.prom.get(spec.id, (None, "not queried"))
        if value is None:
            return ev("no-data", None, limit, None, f"{spec.query}: {why}")
        breach = value > spec.above if spec.above is not None else value < (spec.below or 0.0)
        rel = (">" if breach else "<=") if spec.above is not None else ("<" if breach else ">=")
        return ev(
            "breach" if breach else "ok",
            value,
            limit,
            None,
            f"{spec.query} = {value:g} {rel} {limit:g}",
        )
    if isinstance(spec, BurnRateTrigger):
        long, short = w.burn.get(spec.id, (Burn(None, 0, 0, 0.0), Burn(None, 0, 0, 0.0)))
        if spec.signal == "promql":
            if long.rate is None or short.rate is None:
                why = (
                    w.prom.get(f"{spec.id}:long", (None, "not queried"))[1]
                    or w.prom.get(f"{spec.id}:short", (None, "not queried"))[1]
                )
                return ev("no-data", long.rate, spec.factor, None, f"the fleet's burn: {why}")
            breach = long.rate >= spec.factor and short.rate >= spec.factor
            return ev(
                "breach" if breach else "ok",
                long.rate,
                spec.factor,
                None,
                f"SLO {spec.slo} burning {long.rate:.1f}x over {spec.long} and "
                f"{short.rate:.1f}x over {spec.short} across the fleet (Prometheus); fires at "
                f"{spec.factor:g}x over both",
            )
        if long.rate is None or short.rate is None:
            return ev(
                "no-data",
                long.rate,
                spec.factor,
                long.total,
                f"too few events for a burn rate: {long.total} over {spec.long}, "
                f"{short.total} over {spec.short} (need {spec.min_events} over {spec.long})",
            )
        breach = long.rate >= spec.factor and short.rate >= spec.factor
        return ev(
            "breach" if breach else "ok",
            long.rate,
            spec.factor,
            long.total,
            f"SLO {spec.slo} burning {long.rate:.1f}x over {spec.long} ({long.bad}/{long.total} "
            f"bad) and {short.rate:.1f}x over {spec.short} ({short.bad}/{short.total}); fires "
            f"at {spec.factor:g}x over both",
        )
    flag = w.db_ok if isinstance(spec, DatabaseTrigger) else w.auth_ok
    what = "database check" if isinstance(spec, DatabaseTrigger) else "authentication"
    if flag is None:
        return ev("no-data", None, None, None, f"{what} not measured")
    return ev(
        "ok" if flag else "breach",
        1.0 if flag else 0.0,
        None,
        None,
        f"{what} {'passed' if flag else 'FAILED'}",
    )


# --------------------------------------------------------------------------- the fold


@dataclass(frozen=True, slots=True)
class TriggerStatus:
    """A trigger's state after some windows, with the evidence behind it."""

    trigger_id: str
    kind: str
    bound: str  # "2 consecutive windows" | "for 5m"
    state: TriggerState = "pending"  # no window seen yet: no evidence, not ok
    streak_windows: int = 0  # breaching windows in the current streak
    streak_s: float = 0.0  # their total length
    missing_windows: int = 0  # windows without evidence at the end of the series
    windows_seen: int = 0
    fired_at_s: float | None = None  # end of the window where the current streak fired
    evidence: tuple[WindowEvidence, ...] = field(default=())  # last windows, bounded
    summary: str = "no window evaluated yet"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (for `--json` lines, reports and the rollback's audit evidence)."""
        return {
            "trigger": self.trigger_id,
            "kind": self.kind,
            "state": self.state,
            "bound": self.bound,
            "streak_windows": self.streak_windows,
            "streak_s": round(self.streak_s, 3),
            "missing_windows": self.missing_windows,
            "fired_at_s": self.fired_at_s,
            "summary": self.summary,
            "evidence": [e.to_dict() for e in self.evidence],
        }


def initial_status(spec: AnyTrigger) -> TriggerStatus:
    return TriggerStatus(spec.id, spec.kind, spec.bound())


def _reached(spec: AnyTrigger, windows: int, seconds: float) -> bool:
    if spec.consecutive is not None:
        return windows >= spec.consecutive
    limit = spec.for_s
    assert limit is not None
    return seconds >= limit - 1e-9


def advance(spec: AnyTrigger, status: TriggerStatus, window: Window) -> TriggerStatus:
    """Fold one window into a trigger's status (pure)."""
    ev = judge_window(spec, window)
    counts_as_breach = ev.verdict == "breach" or (
        ev.verdict == "no-data" and spec.missing_data == "fire"
    )
    evidence = (*status.evidence, ev)[-MAX_EVIDENCE:]
    seen = status.windows_seen + 1
    if counts_as_breach:
        streak_w = status.streak_windows + 1
        streak_s = status.streak_s + window.length_s
        missing = status.missing_windows + 1 if ev.verdict == "no-data" else 0
        firing = _reached(spec, streak_w, streak_s)
        fired_at = (
            status.fired_at_s
            if status.fired_at_s is not None
            else (window.end_s if firing else None)
        )
        state: TriggerState = "firing" if firing else "pending"
        why = ev.note if ev.verdict == "breach" else f"{ev.note}; missing_data: fire"
        summary = (
            f"{'FIRING' if firing else 'pending'}: {why}; {streak_w} breaching window(s), "
            f"{streak_s:.1f} s (bound: {spec.bound()})"
        )
        return replace(
            status,
            state=state,
            streak_windows=streak_w,
            streak_s=streak_s,
            missing_windows=missing,
            windows_seen=seen,
            fired_at_s=fired_at,
            evidence=evidence,
            summary=summary,
        )
    if ev.verdict == "no-data":  # hold: the streak neither grows nor resets; never "ok"
        missing = status.missing_windows + 1
        state = "firing" if status.state == "firing" else "pending"
        summary = (
            f"{'FIRING (held)' if state == 'firing' else 'pending'}: no evidence for "
            f"{missing} window(s) ({ev.note}); streak {status.streak_windows} window(s) held "
            f"(bound: {spec.bound()})"
        )
        return replace(
            status,
            state=state,
            missing_windows=missing,
            windows_seen=seen,
            evidence=evidence,
            summary=summary,
        )
    return replace(
        status,
        state="ok",
        streak_windows=0,
        streak_s=0.0,
        missing_windows=0,
        windows_seen=seen,
        fired_at_s=None,
        evidence=evidence,
        summary=f"ok: {ev.note}",
    )


def _burns(spec: BurnRateTrigger, history: Sequence[Window]) -> tuple[Burn, Burn]:
    now = history[-1].end_s
    if spec.signal == "promql":  # the fleet's good share over each window, from Prometheus

        def from_prometheus(which: str, span_s: float) -> Burn:
            share, _why = history[-1].prom.get(f"{spec.id}:{which}", (None, ""))
            rate = None if share is None else (1 - share) / (1 - spec.objective)
            return Burn(rate, 0, 0, span_s)

        return from_prometheus("long", spec.long_s), from_prometheus("short", spec.short_s)
    events = [e for w in history if (e := w.events(spec.signal, spec.threshold_ms)) is not None]
    long = burn_rate(events, now, spec.long_s, spec.objective, spec.min_events)
    short = burn_rate(events, now, spec.short_s, spec.objective)
    return long, short


def evaluate_series(spec: AnyTrigger, windows: Iterable[Window]) -> list[TriggerStatus]:
    """The status after each window (pure; for tests, reports and resume)."""
    status = initial_status(spec)
    out = []
    for window in windows:
        status = advance(spec, status, window)
        out.append(status)
    return out


def first_firing(spec: AnyTrigger, windows: Sequence[Window]) -> int | None:
    """Index of the first window after which the trigger is firing, or None."""
    for i, status in enumerate(evaluate_series(spec, windows)):
        if status.state == "firing":
            return i
    return None


@dataclass(frozen=True, slots=True)
class TriggerBoard:
    """Every trigger's status; the monitor keeps one and advances it once per window.

    Burn-rate triggers look back over their long window: the board keeps the windows of the
    longest one (bounded: 6 h of 30 s windows is 720) and gives each window the burn rates
    over both of every burn-rate trigger's windows before the triggers judge it.
    """

    specs: tuple[AnyTrigger, ...]
    statuses: Mapping[str, TriggerStatus]
    history: tuple[Window, ...] = ()

    @classmethod
    def start(cls, specs: Sequence[AnyTrigger]) -> TriggerBoard:
        return cls(tuple(specs), {s.id: initial_status(s) for s in specs})

    def advance(self, window: Window) -> TriggerBoard:
        burners = [s for s in self.specs if isinstance(s, BurnRateTrigger)]
        history = self.history
        if burners:
            keep_s = max(s.long_s for s in burners)
            history = tuple(w for w in (*history, window) if w.end_s > window.end_s - keep_s)
            window = replace(window, burn={s.id: _burns(s, history) for s in burners})
        return TriggerBoard(
            self.specs,
            {s.id: advance(s, self.statuses[s.id], window) for s in self.specs},
            history,
        )

    @property
    def firing(self) -> tuple[TriggerStatus, ...]:
        return tuple(
            self.statuses[s.id] for s in self.specs if self.statuses[s.id].state == "firing"
        )

    def evidence(self) -> dict[str, object]:
        """The `--evidence` for an automatic rollback: firing triggers first, then the rest."""
        return {
            "firing": [t.to_dict() for t in self.firing],
            "all": {s.id: self.statuses[s.id].state for s in self.specs},
        }

    def reason(self) -> str:
        """A one-line rollback reason naming each firing trigger and its evidence."""
        if not self.firing:
            return "no trigger firing"
        text = "; ".join(f"{t.trigger_id}: {t.summary}" for t in self.firing)
        return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."
