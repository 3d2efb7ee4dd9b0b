"""A whole monitor run as the CLI does it:

    resolve target + credentials (validate's plan) -> monitor settings -> rollback plan checked
    up front -> new watch or resumed one (store) -> run_watch -> alerts -> automatic rollback
    (helper: mytrader_ops.rollback.service) -> report in validate's formats -> exit code.

Everything a 3 a.m. operator needs is decided before the first window: a broken rollback plan
or a missing webhook variable is a usage error (exit 2) now, not a surprise when it fires.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mytrader_ops.config import Slo
from mytrader_ops.monitor.collect import DEFAULT_PATHS, CollectSettings
from mytrader_ops.monitor.coverage import EvidenceFinding, evidence_line
from mytrader_ops.monitor.dashboard import JsonLines, LiveDashboard, PlainLines
from mytrader_ops.monitor.delivery import Delivery
from mytrader_ops.monitor.loop import Observer, WatchPlan, WatchResult, run_watch
from mytrader_ops.monitor.paging import Paging
from mytrader_ops.monitor.settings import (
    DEFAULT_COVERAGE_FLOOR,
    DEFAULT_INTERVAL_S,
    DEFAULT_RATE,
    MonitorFile,
    MonitorUsageError,
    Phase,
    RollbackSettings,
    Thresholds,
    load_monitor_file,
    parse_duration,
    phase_span,
)
from mytrader_ops.monitor.store import WatchRecord, WatchStore
from mytrader_ops.monitor.triggers import (
    AnyTrigger,
    BurnRateTrigger,
    PrometheusTrigger,
    TriggerStatus,
    burn_triggers,
    default_triggers,
    promql_ratio,
)
from mytrader_ops.monitor.verdicts import build_report, exit_code_for
from mytrader_ops.redaction import Redactor
from mytrader_ops.report.model import RunReport
from mytrader_ops.stats import LatencyHistogram

EXIT_ROLLBACK_FAILED = 4
EXIT_LOCKED = 5
PAGING_DEADLINE_S = 30.0  # how long the command waits, at its end, for pages still in flight


@dataclass(frozen=True, slots=True)
class MonitorRequest:
    config_file: Path | None = None
    env: str | None = None
    target: str | None = None
    frontend: str | None = None
    phase: Phase = "critical"
    duration: str | None = None
    interval: str | None = None
    rate: float | None = None
    auto_rollback: bool = False
    resume: bool = False
    report_dir: Path | None = None
    json: bool = False
    monitor_config: Path | None = None
    store: Path | None = None
    metrics_port: int | None = None
    rollback_plan: Path | None = None
    rollback_env: str | None = None
    to_version: str | None = None
    rollback_overrides: tuple[tuple[str, str], ...] = ()
    state_dir: Path | None = None
    no_color: bool = False
    stream: bool = True


@dataclass(slots=True)
class MonitorOutcome:
    exit_code: int
    report: RunReport
    fired: TriggerStatus | None
    rollback_message: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    watch_id: str = ""
    start_s: float = 0.0
    evidence: list[EvidenceFinding] = field(default_factory=list)

    def summary_line(self) -> str:
        """The last line of a watch: decision, exit code, what fired, and trigger evidence."""
        text = f"Watch {self.watch_id}: {self.report.decision.value}, exit code {self.exit_code}"
        if self.fired is not None:
            text += f"; trigger {self.fired.trigger_id} fired"
        if self.rollback_message:
            text += f"; {self.rollback_message}"
        return f"{text}; {evidence_line(self.evidence)}"


def _rollback_settings(req: MonitorRequest, file: MonitorFile) -> RollbackSettings | None:
    if not req.auto_rollback:
        return None
    base = file.rollback
    plan = req.rollback_plan or (Path(base.plan) if base else None)
    if plan is None:
        from mytrader_ops.resources import data_dir

        candidate = data_dir("rollback") / "local-mytrader.yaml"
        if not candidate.is_file():
            raise MonitorUsageError(
                "--auto-rollback needs a plan: --rollback-plan FILE or rollback.plan in "
                "--monitor-config"
            )
        plan = candidate
    return RollbackSettings(
        plan=str(plan),
        env=req.rollback_env or (base.env if base else None),
        to_version=req.to_version or (base.to_version if base else None),
    )


def _check_rollback_plan(rb: RollbackSettings, state_dir: Path, overrides: dict[str, str]) -> None:
    """Load and resolve the plan now (no side effect): a broken plan is exit 2 before watching."""
    from mytrader_ops.rollback.service import RollbackRequest, read_secrets, resolve

    plan = resolve(
        RollbackRequest(
            Path(rb.plan),
            rb.env,
            rb.to_version,
            "check before watching",
            state_dir,
            overrides=overrides or None,
        )
    )
    read_secrets(plan)


def prom_queries(triggers: Sequence[AnyTrigger]) -> tuple[tuple[str, str, str], ...]:
    """What each window asks Prometheus: a prometheus trigger's query (its worst series), and
    a promql burn-rate trigger's good share over its long and its short window."""
    out: list[tuple[str, str, str]] = []
    for t in triggers:
        if isinstance(t, PrometheusTrigger):
            out.append((t.id, t.query, "max" if t.above is not None else "min"))
        elif isinstance(t, BurnRateTrigger) and t.signal == "promql":
            out.append((f"{t.id}:long", promql_ratio(t, t.long), "min"))
            out.append((f"{t.id}:short", promql_ratio(t, t.short), "min"))
    return tuple(out)


def slo_triggers(slos: Sequence[Slo]) -> tuple[AnyTrigger, ...]:
    """The burn-rate triggers of the config's SLOs (each alert of each SLO)."""
    out: tuple[AnyTrigger, ...] = ()
    for slo in slos:
        alerts = [(a.long, a.short, a.factor) for a in slo.burn_alerts]
        out += burn_triggers(
            slo.id, slo.objective, slo.signal, slo.threshold_ms, alerts, slo.good, slo.total
        )
    return out


def _check_samples(
    triggers: tuple[AnyTrigger, ...], rate: float, paths: int, interval_s: float
) -> None:
    """A trigger that can never have enough samples in a window would never judge: refuse it
    now rather than watch blind for 24 hours."""
    from mytrader_ops.monitor.triggers import ErrorRateTrigger, LatencyTrigger

    expected = rate * paths * interval_s
    for t in triggers:
        if isinstance(t, ErrorRateTrigger | LatencyTrigger) and expected < t.min_samples * 1.1:
            need = t.min_samples * 1.1 / (paths * interval_s)
            raise MonitorUsageError(
                f"trigger {t.id} needs {t.min_samples} requests per window, but {rate:g}/s on "
                f"{paths} path(s) over {interval_s:g} s gives about {expected:.0f}: use "
                f"--rate {need:.2g} or more, or a longer --interval"
            )
        sampled = isinstance(t, BurnRateTrigger) and t.signal != "promql"
        if (
            sampled
            and isinstance(t, BurnRateTrigger)
            and rate * paths * t.long_s < t.min_events * 1.1
        ):
            raise MonitorUsageError(
                f"trigger {t.id} needs {t.min_events} events over {t.long}, but {rate:g}/s on "
                f"{paths} path(s) gives about {rate * paths * t.long_s:.0f}: raise --rate"
            )


def _stored_triggers(raw: object) -> tuple[AnyTrigger, ...]:
    from pydantic import TypeAdapter

    from mytrader_ops.monitor.triggers import TriggerSpec

    adapter: TypeAdapter[AnyTrigger] = TypeAdapter(TriggerSpec)
    assert isinstance(raw, list)
    return tuple(adapter.validate_python(t) for t in raw)


def _settings_doc(
    rate: float,
    paths: tuple[str, ...],
    triggers: tuple[AnyTrigger, ...],
    thresholds: Thresholds,
    frontend: str | None,
    coverage_floor: float,
) -> dict[str, object]:
    return {
        "rate": rate,
        "paths": list(paths),
        "triggers": [t.model_dump(by_alias=True, exclude_none=True) for t in triggers],
        "thresholds": thresholds.model_dump(),
        "frontend": frontend,
        "coverage_floor": coverage_floor,
    }


def run_monitor(
    req: MonitorRequest,
    *,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    redactor: Redactor | None = None,
    extra_observers: tuple[Observer, ...] = (),
    clock: Callable[[], float] = time.time,
) -> MonitorOutcome:
    """Raises OpsError (exit 2) for usage/configuration problems; everything else is an outcome."""
    from mytrader_ops.rollback.service import default_state_dir
    from mytrader_ops.validate.plan import build_plan

    out = out or sys.stdout
    err = err or sys.stderr
    redactor = redactor or Redactor()
    run_plan = build_plan(
        config_file=req.config_file,
        env_name=req.env,
        target=req.target,
        frontend=req.frontend,
        duration_s=None,
        rate=None,
    )
    env = run_plan.environment
    redactor.add_secret(env.credentials.password)
    file = load_monitor_file(req.monitor_config) if req.monitor_config else MonitorFile()
    Paging.check(file.sinks, redactor)  # an unset ${VAR} is exit 2 now, not at 3 a.m.
    state_dir = req.state_dir or default_state_dir()
    rollback = _rollback_settings(req, file)
    if rollback is not None and file.on_fire == "keep-watching":
        raise MonitorUsageError(
            "on_fire: keep-watching cannot be combined with --auto-rollback: the rollback "
            "runs as soon as a trigger fires"
        )
    overrides = dict(req.rollback_overrides)
    if rollback is not None:
        _check_rollback_plan(rollback, state_dir, overrides)
    store = WatchStore(req.store or state_dir / "monitor.db")
    now = clock()
    if req.resume:
        rec = store.latest_running(env.backend, run_plan.env_name)
        if rec is None:
            raise MonitorUsageError(
                f"nothing to resume: no unfinished watch of {env.backend} ({run_plan.env_name}) "
                f"in {store.path}"
            )
        rec, prior = store.load(rec.watch_id)
        s = rec.settings
        triggers = _stored_triggers(s["triggers"])
        thresholds = Thresholds.model_validate(s["thresholds"])
        rate = float(s["rate"])
        paths = tuple(str(p) for p in s["paths"])
        phase: Phase = rec.phase  # type: ignore[assignment]
        interval_s, start_s, deadline_s = rec.interval_s, rec.start_s, rec.deadline_s
        hist_all, hist_critical = (
            LatencyHistogram.decode(rec.hist_all),
            LatencyHistogram.decode(rec.hist_critical),
        )
        watch_id = rec.watch_id
        frontend = s.get("frontend") if isinstance(s.get("frontend"), str) else None
        # a watch stored before the floor was recorded is held to the default
        coverage_floor = float(s.get("coverage_floor", DEFAULT_COVERAGE_FLOOR))
        err.write(
            f"Resuming watch {watch_id}: {len(prior)} window(s) measured, started "
            f"{dt.datetime.fromtimestamp(start_s, dt.UTC):%Y-%m-%d %H:%M:%S}Z, deadline "
            f"{dt.datetime.fromtimestamp(deadline_s, dt.UTC):%Y-%m-%d %H:%M:%S}Z\n"
        )
    else:
        phase = req.phase
        interval_s = parse_duration(req.interval or file.interval or f"{DEFAULT_INTERVAL_S}")
        duration_s = parse_duration(req.duration) if req.duration else phase_span(phase)
        if interval_s < 0.5 or interval_s > duration_s:
            raise MonitorUsageError(
                "--interval must be at least 0.5 s and no longer than --duration"
            )
        rate = req.rate or file.rate or DEFAULT_RATE
        paths = tuple(file.paths) if file.paths else DEFAULT_PATHS
        triggers = tuple(file.triggers) if file.triggers is not None else default_triggers()
        triggers += slo_triggers(run_plan.slos)
        thresholds = file.thresholds
        start_s, deadline_s = now, now + duration_s
        watch_id = (
            f"mon-{dt.datetime.fromtimestamp(now, dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
        )
        frontend = env.frontend
        coverage_floor = file.coverage_floor
        prior, hist_all, hist_critical = [], None, None
        store.create(
            WatchRecord(
                watch_id,
                env.backend,
                run_plan.env_name,
                phase,
                interval_s,
                start_s,
                deadline_s,
                _settings_doc(rate, paths, triggers, thresholds, frontend, coverage_floor),
                "running",
                None,
                "",
                "",
            )
        )
    _check_samples(triggers, rate, len(paths), interval_s)
    queries = [
        t.id for t in triggers if t.id in {q[0].split(":")[0] for q in prom_queries(triggers)}
    ]
    if queries and env.prometheus is None:
        raise MonitorUsageError(
            f"trigger(s) {', '.join(queries)} query Prometheus, but the environment names no "
            "prometheus: URL"
        )
    plan = WatchPlan(
        watch_id=watch_id,
        target=env.backend,
        frontend=frontend,
        env_name=run_plan.env_name,
        credentials=env.credentials,
        tls_verify=env.tls_verify,
        ca_file=env.ca_file,
        follow_redirects=env.follow_redirects,
        auth=env.auth,
        phase=phase,
        start_s=start_s,
        deadline_s=deadline_s,
        collect=CollectSettings(
            interval_s=interval_s,
            rate=rate,
            api_paths=paths,
            request_timeout_s=min(5.0, max(1.0, interval_s)),
            probe_timeout_s=min(5.0, max(1.0, interval_s)),
            gap_threshold_s=thresholds.max_stream_gap_s,
            prometheus=env.prometheus,
            prom_queries=prom_queries(triggers),
            slow_thresholds_ms=tuple(
                sorted(
                    {
                        t.threshold_ms
                        for t in triggers
                        if isinstance(t, BurnRateTrigger) and t.threshold_ms is not None
                    }
                )
            ),
        ),
        triggers=triggers,
        thresholds=thresholds,
        stream=req.stream,
        coverage_floor=coverage_floor,
        resumed=req.resume,
        stop_on_fire=file.on_fire == "stop",
    )
    paging = Paging.start(
        file.sinks,
        redactor,
        watch_id=watch_id,
        env=plan.env_name,
        target=plan.target,
        runbook_url=file.runbook_url,
        rollback="automatic rollback on firing" if rollback is not None else "not configured",
        audit_file=state_dir / "rollback-audit.jsonl",
        rollback_id=f"rb-{watch_id}" if rollback is not None else None,
    )
    observers: list[Observer] = [paging, *extra_observers]
    live: LiveDashboard | None = None
    if req.json:
        observers.append(JsonLines(watch_id, out, redactor))
        observers.append(PlainLines(err, redactor))
    elif out.isatty():
        live = LiveDashboard(
            f"mytrader-ops monitor {watch_id}: {plan.target} ({plan.env_name})",
            redactor,
            req.no_color,
        )
        observers.append(live)
    else:
        observers.append(PlainLines(out, redactor))
    exporter = None
    if req.metrics_port is not None:
        from mytrader_ops.monitor.exporter import Exporter

        exporter = Exporter(req.metrics_port)
        observers.append(exporter)
        err.write(f"Monitor metrics: http://127.0.0.1:{exporter.port}/metrics\n")
    err.write(
        redactor.redact(
            f"Watching {plan.target} ({plan.env_name}), phase {phase}: window "
            f"{interval_s:g} s, {plan.window_count} window(s), {rate:g} requests/s per path; "
            f"triggers: {', '.join(f'{t.id} ({t.bound()})' for t in triggers)}\n"
        )
    )
    if live is not None:
        live.start()
    try:
        result: WatchResult = asyncio.run(
            run_watch(plan, store, redactor, observers, prior, hist_all, hist_critical)
        )
    except BaseException:
        paging.close(0.5)
        raise
    finally:
        if live is not None:
            live.stop()
        if exporter is not None:
            exporter.close()
    code = exit_code_for(result.fired is not None, result.evidence)
    rollback_message = ""
    if result.fired is not None:
        fired = result.fired
        err.write(redactor.redact(f"TRIGGER FIRED {fired.trigger_id}: {fired.summary}\n"))
        store.event(watch_id, "fired", fired.to_dict())
        if rollback is not None:
            # The page went out in the background when the trigger fired: the rollback starts
            # now, whatever the sinks are doing.
            code, rollback_message = _auto_rollback(
                rollback, state_dir, overrides, result, plan, redactor, err
            )
            status = "rolled-back" if code == 1 else "rollback-failed"
            store.event(watch_id, status, {"message": rollback_message, "exit_code": code})
            paging.rollback_ended(code == 1, rollback_message)
    deliveries = paging.close(PAGING_DEADLINE_S)
    for d in deliveries:
        if not d.ok:
            err.write(
                redactor.redact(
                    f"alert sink {d.sink} failed ({d.action} {d.trigger}): {d.detail}\n"
                )
            )
    end_s = clock()
    report = build_report(
        watch_id=watch_id,
        env_name=plan.env_name,
        target=plan.target,
        frontend=plan.frontend,
        phase=phase,
        interval_s=interval_s,
        rate=rate,
        start_s=start_s,
        end_s=end_s,
        deadline_s=deadline_s,
        totals=result.totals,
        hist_all=result.hist_all,
        hist_critical=result.hist_critical,
        specs=triggers,
        states=result.states,
        evidence=result.evidence,
        coverage_floor=coverage_floor,
        thresholds=thresholds,
        exit_code=code,
        has_credentials=env.credentials.complete,
        ending=result.ending,
    )
    from mytrader_ops.report.model import redact_report

    if file.sinks:
        report = dataclasses.replace(
            report, verdicts=(*report.verdicts, paging.verdict(deliveries))
        )
    report = redact_report(report, redactor)
    if req.report_dir is not None:
        from mytrader_ops.report.files import write_reports

        write_reports(report, req.report_dir, redactor)
    store.finish(watch_id, "fired" if result.fired else "ended", code)
    return MonitorOutcome(
        code,
        report,
        result.fired,
        rollback_message,
        deliveries,
        watch_id,
        start_s,
        result.evidence,
    )


def _say(err: IO[str], redactor: Redactor, message: str) -> None:
    err.write(redactor.redact(message) + "\n")


def _auto_rollback(
    rb: RollbackSettings,
    state_dir: Path,
    overrides: dict[str, str],
    result: WatchResult,
    plan: WatchPlan,
    redactor: Redactor,
    err: IO[str],
) -> tuple[int, str]:
    """Run the rollback plan with the trigger's evidence; (monitor exit code, message)."""
    from mytrader_ops.errors import OpsError
    from mytrader_ops.rollback.errors import LockedError
    from mytrader_ops.rollback.service import RollbackRequest, resolve, run_rollback

    w = result.fired_window
    evidence: dict[str, object] = {
        "source": "mytrader-ops monitor --auto-rollback",
        "watch_id": plan.watch_id,
        "target": plan.target,
        "triggers": result.board.evidence(),
        "window": None
        if w is None
        else {
            "index": w.index,
            "requests": w.requests,
            "errors": w.errors,
            "p95_ms": w.p95_ms,
            "db_status": w.db_status,
            "hubs": f"{w.hub_ok}/{w.hub_attempts}",
            "auth": w.auth,
        },
    }
    reason = f"monitor: {result.board.reason()}"
    request = RollbackRequest(
        Path(rb.plan),
        rb.env,
        rb.to_version,
        reason,
        state_dir,
        evidence=evidence,
        new=True,
        overrides=overrides or None,
        # One rollback per watch: a monitor resumed after dying mid-rollback continues that
        # rollback from its audit log instead of starting another one.
        rollback_id=f"rb-{plan.watch_id}",
    )
    err.write(
        f"Rolling back with {rb.plan}" + (f" to {rb.to_version}" if rb.to_version else "") + "\n"
    )
    try:
        resolved = resolve(request)
        done = run_rollback(
            request,
            resolved,
            redactor=redactor,
            notice=lambda m: _say(err, redactor, m),
        )
    except LockedError as exc:
        err.write(redactor.redact(f"rollback not started: {exc}\n"))
        return EXIT_LOCKED, f"another rollback holds the lock: {exc}"
    except OpsError as exc:
        err.write(redactor.redact(f"rollback failed: {exc}\n"))
        return EXIT_ROLLBACK_FAILED, f"rollback failed: {exc}"
    err.write(redactor.redact(done.message + "\n"))
    if done.exit_code == 0:
        return 1, done.message
    return EXIT_ROLLBACK_FAILED, done.message
