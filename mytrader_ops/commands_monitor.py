"""`mytrader-ops monitor`: thin CLI over `mytrader_ops.monitor`.

Register with one line in `mytrader_ops/cli.py`:

    app.command("monitor", epilog=MONITOR_EXIT_CODES)(monitor)

Only typer is imported at module level; httpx, websockets, yaml and rich load inside the
command so `mytrader-ops --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from mytrader_ops.cli_options import EnvOpt, ReportDirOpt, TargetOpt
from mytrader_ops.interrupts import sigterm_as_interrupt

MONITOR_EXIT_CODES = """Exit codes: 0 the watch ended and no trigger fired (every trigger had
enough evidence); 1 a trigger fired (with --auto-rollback: and the rollback completed and
verified); 2 usage or configuration error; 3 no trigger fired but a trigger's evidence was
insufficient: coverage below the floor (default 90% of windows) or a blind stretch longer than
its persistence bound; windows missed while the monitor was down count as blind (missing
data is never read as healthy); 4 the automatic rollback failed; 5 another rollback of the
environment holds the lock; 130 interrupted (continue with --resume)."""


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"mytrader-ops monitor: error: {message}", err=True)
    raise typer.Exit(code)


def monitor(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="validate config (environments).", dir_okay=False),
    ] = None,
    env: EnvOpt = None,
    target: TargetOpt = None,
    frontend: Annotated[
        str | None, typer.Option("--frontend", help="Web frontend URL (proxy path).")
    ] = None,
    phase: Annotated[
        str, typer.Option("--phase", help="critical (first 30 min), extended (24 h) or all.")
    ] = "critical",
    duration: Annotated[
        str | None,
        typer.Option("--duration", help="How long to watch: 45s, 30m, 24h. Default: the phase."),
    ] = None,
    interval: Annotated[
        str | None, typer.Option("--interval", help="Window length (default 30s).")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option("--rate", help="Requests per second per sampled path (default 2).", min=0.01),
    ] = None,
    auto_rollback: Annotated[
        bool, typer.Option("--auto-rollback", help="Run the rollback plan when a trigger fires.")
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the unfinished watch of this target.")
    ] = False,
    report_dir: ReportDirOpt = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="One JSON line per window on stdout.")
    ] = False,
    monitor_config: Annotated[
        Path | None,
        typer.Option(
            "--monitor-config", help="Triggers, thresholds, sinks, rollback (YAML).", dir_okay=False
        ),
    ] = None,
    rollback_plan: Annotated[
        Path | None,
        typer.Option("--rollback-plan", help="Plan for --auto-rollback.", dir_okay=False),
    ] = None,
    rollback_env: Annotated[
        str | None, typer.Option("--rollback-env", help="Environment in the rollback plan.")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Release to roll back to.")] = None,
    rollback_set: Annotated[
        list[str] | None,
        typer.Option("--rollback-set", help="NAME=VALUE for the rollback plan (repeatable)."),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Watch store, locks, audit log.", file_okay=False),
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", help="Watch store (SQLite).", dir_okay=False)
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="Serve the monitor's own figures (Prometheus).", min=0),
    ] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="No ANSI colours.")] = False,
) -> None:
    """Watch a fresh deployment window by window; fire typed rollback triggers.

    One evaluation, one dashboard refresh and (with --json) one JSON line per --interval.
    """
    from mytrader_ops.errors import OpsError
    from mytrader_ops.monitor.service import MonitorRequest, run_monitor
    from mytrader_ops.redaction import Redactor

    if phase not in ("critical", "extended", "all"):
        _fail(f"--phase must be critical, extended or all, got {phase!r}")
    overrides: dict[str, str] = {}
    for item in rollback_set or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            _fail(f"--rollback-set {item!r}: expected NAME=VALUE")
        overrides[name] = value
    redactor = Redactor()
    request = MonitorRequest(
        config_file=config,
        env=env,
        target=target,
        frontend=frontend,
        phase=phase,  # type: ignore[arg-type]
        duration=duration,
        interval=interval,
        rate=rate,
        auto_rollback=auto_rollback,
        resume=resume,
        report_dir=report_dir,
        json=json_lines,
        monitor_config=monitor_config,
        store=store,
        metrics_port=metrics_port,
        rollback_plan=rollback_plan,
        rollback_env=rollback_env,
        to_version=to,
        rollback_overrides=tuple(sorted(overrides.items())),
        state_dir=state_dir,
        no_color=no_color or "NO_COLOR" in os.environ,
    )
    try:
        with sigterm_as_interrupt():
            outcome = run_monitor(request, redactor=redactor)
    except OpsError as exc:
        _fail(redactor.redact(str(exc)), exc.exit_code)
    except KeyboardInterrupt:
        typer.echo(
            "mytrader-ops monitor: interrupted; every finished window is stored: "
            "run again with --resume to continue the same watch",
            err=True,
        )
        raise typer.Exit(130) from None
    print(redactor.redact(outcome.summary_line()), file=sys.stderr)
    raise typer.Exit(outcome.exit_code)


if __name__ == "__main__":  # `python -m mytrader_ops.commands_monitor` before registration
    typer.run(monitor)
