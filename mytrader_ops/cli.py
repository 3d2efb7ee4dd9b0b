"""mytrader-ops command line. Thin: parse options, call the library, render, exit.

Heavy modules (httpx, websockets, yaml, pydantic) are imported inside the commands so
`mytrader-ops --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from mytrader_ops.cli_options import EnvOpt, ReportDirOpt, TargetOpt, fail_with_problems

if TYPE_CHECKING:
    from mytrader_ops.monitor.settings import MonitorFile
    from mytrader_ops.redaction import Redactor
    from mytrader_ops.validate.plan import RunPlan
from mytrader_ops.commands_monitor import MONITOR_EXIT_CODES, monitor
from mytrader_ops.commands_rollback import ROLLBACK_EXIT_CODES, rollback
from mytrader_ops.serve.command import SERVE_EXIT_CODES, serve

EXIT_CODES = """Exit codes: 0 GO (with or without known issues), 1 NO-GO,
2 usage or configuration error, 3 INCONCLUSIVE (missing evidence; also internal errors)."""
ALL_EXIT_CODES = f"""{EXIT_CODES}
monitor and rollback also use 4 (rollback or verification failed) and 5 (another rollback
holds the lock); see each command's --help."""

app = typer.Typer(
    name="mytrader-ops",
    help="Evidence-based go/no-go gate, post-release monitor and audited rollback for "
    f"MyTrader deployments.\n\n{ALL_EXIT_CODES}",
    epilog=ALL_EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # tracebacks with locals could print secrets
    add_completion=False,
    rich_markup_mode=None,  # plain click help: rich's markdown stack costs ~140 ms at start-up
)
config_app = typer.Typer(
    help="Validate configuration files and export their JSON Schema.", no_args_is_help=True
)
app.add_typer(config_app, name="config")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"mytrader-ops: error: {message}", err=True)
    raise typer.Exit(code)


def _store_path(store: Path | None) -> Path:
    from mytrader_ops.store import default_store

    return store or default_store()


@app.command(epilog=EXIT_CODES)
def validate(
    config: Annotated[
        Path | None, typer.Option("--config", help="Config or suite YAML file.", dir_okay=False)
    ] = None,
    env: EnvOpt = None,
    target: TargetOpt = None,
    frontend: Annotated[
        str | None, typer.Option("--frontend", help="Web frontend base URL.")
    ] = None,
    report_dir: ReportDirOpt = None,
    duration: Annotated[float | None, typer.Option("--duration", help="Sampling seconds.")] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", help="Requests per second per sampled endpoint.")
    ] = None,
    until_decisive: Annotated[
        bool,
        typer.Option(
            "--until-decisive",
            help="Stop sampling as soon as every criterion is decided (after 10 s at least).",
        ),
    ] = False,
    max_duration: Annotated[
        float | None,
        typer.Option(
            "--max-duration",
            help="Budget for sampling a marginal criterion longer (default 3x --duration).",
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Also judge every sampled stream against a stored run: latest-go or a run id.",
        ),
    ] = None,
    compare_to: Annotated[
        str | None,
        typer.Option(
            "--compare-to",
            help="Also sample this deployment (e.g. the stable fleet) on the same schedule, "
            "interleaved, and judge every stream against it.",
        ),
    ] = None,
    monitor_store: Annotated[
        Path | None,
        typer.Option(
            "--monitor-store",
            help="The monitor's store, for error-budget checks (default: the monitor's own).",
            dir_okay=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the decision.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No ANSI colours.")] = False,
    store: Annotated[
        Path | None, typer.Option("--store", help="Run store (SQLite file).", dir_okay=False)
    ] = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not record the run.")] = False,
    notify: Annotated[
        Path | None,
        typer.Option(
            "--notify",
            help="Send the decision to the sinks of this monitor config (NO-GO/INCONCLUSIVE "
            "page, GO resolves).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Probe a deployment and decide GO / NO-GO / INCONCLUSIVE.

    `--target URL` alone validates a MyTrader API with the shipped go-live suite; credentials
    come from MYTRADER_OPS_USERNAME / MYTRADER_OPS_PASSWORD.
    """
    import asyncio

    from mytrader_ops.errors import OpsError
    from mytrader_ops.redaction import Redactor
    from mytrader_ops.report.files import write_reports
    from mytrader_ops.report.terminal import Progress, make_console, render
    from mytrader_ops.store import RunStore
    from mytrader_ops.validate.plan import UsageError, build_plan
    from mytrader_ops.validate.runner import execute

    redactor = Redactor()
    try:
        plan = build_plan(
            config_file=config,
            env_name=env,
            target=target,
            frontend=frontend,
            duration_s=duration,
            rate=rate,
            until_decisive=until_decisive or None,
            max_duration_s=max_duration,
            compare_to=compare_to,
        )
        if baseline is not None and compare_to is not None:
            raise UsageError("give --baseline or --compare-to, not both")
        notifier = _load_notifier(notify, redactor) if notify is not None else None
    except OpsError as exc:
        _ci_usage_error(exc.exit_code)
        _fail(redactor.redact(str(exc)), exc.exit_code)
    base_run = None
    if baseline is not None:
        runs = RunStore(_store_path(store))
        try:
            base_run = (
                runs.latest_go(plan.env_name, plan.environment.backend)
                if baseline == "latest-go"
                else runs.load(baseline)
            )
        except OpsError as exc:
            _fail(redactor.redact(str(exc)), 2)
    budget_source = None
    if any(c.kind == "error-budget" for c in plan.checks):
        from mytrader_ops.monitor.budget import StoredWindows
        from mytrader_ops.monitor.store import default_monitor_store

        budget_source = StoredWindows(monitor_store or default_monitor_store())
    console = make_console(no_color or "NO_COLOR" in os.environ)
    try:
        stranger = (
            config is None and target is not None and not _looks_like_mytrader(plan, redactor)
        )
    except KeyboardInterrupt:
        _fail("interrupted: no verdict", 3)
    if stranger:
        console.print(
            redactor.redact(
                f"{plan.environment.backend} does not look like a MyTrader API (no /api/symbols,"
                " no MyTrader health components): the default suite is MyTrader's go-live "
                "suite. For another service, start from `mytrader-ops init --target "
                f"{plan.environment.backend}`."
            ),
            markup=False,
            soft_wrap=True,
        )
    if not quiet:
        console.print(
            redactor.redact(
                f"Validating {plan.environment.backend} ({plan.env_name}) with "
                f"{len(plan.checks)} checks; sampling {plan.sampler.duration_s:g} s at "
                f"{plan.sampler.rate:g}/s per endpoint"
                + (" until decisive" if plan.sampler.until_decisive else "")
            ),
            markup=False,
        )
    try:
        report = asyncio.run(
            execute(
                plan,
                redactor,
                Progress(console, redactor, quiet),
                baseline=base_run,
                budget_source=budget_source,
            )
        )
    except KeyboardInterrupt:
        _fail("interrupted: no verdict", 3)
    render(report, console, redactor, quiet)
    try:
        if report_dir is not None:
            written = write_reports(report, report_dir, redactor)
            if not quiet:
                console.print(f"Reports: {', '.join(str(p) for p in written)}", markup=False)
        if not no_store:
            RunStore(_store_path(store)).save(report)
    except OSError as exc:
        _fail(f"cannot write reports: {exc}", 3)
    except OpsError as exc:
        _fail(str(exc), 3)
    from mytrader_ops.ci.runner import publish_to_runner

    for problem in publish_to_runner(report, report_dir, redactor):
        typer.echo(f"mytrader-ops: warning: {problem}", err=True)
    if notifier is not None:
        from mytrader_ops.monitor.paging import notify_validate

        for d in notify_validate(notifier.sinks, report, redactor, notifier.runbook_url):
            if not d.ok:
                typer.echo(redactor.redact(f"alert sink {d.sink} failed: {d.detail}"), err=True)
    raise typer.Exit(report.exit_code)


def _looks_like_mytrader(plan: RunPlan, redactor: Redactor) -> bool:
    import asyncio

    from mytrader_ops.probes.context import open_context
    from mytrader_ops.probes.discover import looks_like_mytrader

    async def ask() -> bool:
        env = plan.environment
        async with open_context(
            backend=env.backend,
            frontend=None,
            username=None,
            password=None,
            redactor=redactor,
            tls_verify=env.tls_verify,
            ca_file=env.ca_file,
        ) as ctx:
            async with asyncio.timeout(5):
                return await looks_like_mytrader(ctx)

    try:
        return asyncio.run(ask())
    except TimeoutError:
        return True  # no answer at all: the run itself will say what failed


@app.command()
def init(
    target: Annotated[str, typer.Option("--target", help="The deployment's base URL.")],
    frontend: Annotated[
        str | None, typer.Option("--frontend", help="Its web frontend (hubs in its scripts).")
    ] = None,
    hub: Annotated[
        list[str] | None, typer.Option("--hub", help="A SignalR hub path to try (repeatable).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the config here (default: stdout).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Discover what a deployment exposes and write a commented starter config.

    Health endpoints at their usual paths, SignalR hubs (--hub, or found in the frontend's
    scripts), /metrics and an OpenAPI document: one check per thing that answered.
    """
    import asyncio

    from mytrader_ops.probes.context import open_context
    from mytrader_ops.probes.discover import discover
    from mytrader_ops.redaction import Redactor
    from mytrader_ops.starter import render_starter
    from mytrader_ops.validate.plan import UsageError, check_url

    try:
        base = check_url("--target", target)
        front = check_url("--frontend", frontend) if frontend else None
    except UsageError as exc:
        _fail(str(exc))
    for path in hub or []:
        if not path.startswith("/") or any(c.isspace() for c in path):
            _fail(f"--hub must be a path like /hubs/chat, got {path!r}")
    if out is not None and out.exists() and not force:
        _fail(f"{out} exists: give --force to overwrite it")

    async def run() -> str:
        async with open_context(
            backend=base, frontend=front, username=None, password=None, redactor=Redactor()
        ) as ctx:
            return render_starter(await discover(ctx, list(hub or [])))

    text = asyncio.run(run())
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text)
    typer.echo(f"wrote {out}: check it with `mytrader-ops config check {out}`", err=True)


def _load_notifier(path: Path, redactor: Redactor) -> MonitorFile:
    from mytrader_ops.monitor.paging import Paging
    from mytrader_ops.monitor.settings import load_monitor_file

    file = load_monitor_file(path)
    Paging.check(file.sinks, redactor)
    return file


def _ci_usage_error(code: int) -> None:
    """A usage error still tells a GitHub runner the step's outcome (decision=ERROR)."""
    from mytrader_ops.ci.runner import write_outputs

    write_outputs({"decision": "ERROR", "exit-code": str(code)})


@app.command(epilog=EXIT_CODES)
def report(
    args: Annotated[list[str], typer.Argument(help="RUN (id, prefix or 'latest'), or: diff A B")],
    report_dir: Annotated[Path | None, typer.Option("--report-dir", file_okay=False)] = None,
    store: Annotated[Path | None, typer.Option("--store", dir_okay=False)] = None,
    no_color: Annotated[bool, typer.Option("--no-color")] = False,
    fmt: Annotated[
        str,
        typer.Option("--format", help="diff only: text, or markdown for a pull-request comment."),
    ] = "text",
) -> None:
    """Re-render a stored run (`report RUN`) or compare two (`report diff A B`).

    `report diff A B` judges B against A (every shared stream: Mann-Whitney U and
    Kolmogorov-Smirnov, Holm-corrected; p95 may grow 20%) and exits 0 no regression,
    1 regression, 3 inconclusive.
    """
    from mytrader_ops.errors import OpsError
    from mytrader_ops.redaction import Redactor
    from mytrader_ops.report.diff import diff_reports
    from mytrader_ops.report.files import write_reports
    from mytrader_ops.report.terminal import make_console, render
    from mytrader_ops.store import RunStore

    runs = RunStore(_store_path(store))
    redactor = Redactor()
    try:
        if args and args[0] == "diff":
            if len(args) != 3:
                _fail("usage: mytrader-ops report diff RUN_A RUN_B [--format markdown]")
            if fmt not in ("text", "markdown"):
                _fail(f"--format must be text or markdown, got {fmt!r}")
            from mytrader_ops.report.diff import regression_section
            from mytrader_ops.validate.baseline import diff_exit_code, judge_runs

            run_a, run_b = runs.load(args[1]), runs.load(args[2])
            rows = judge_runs(run_a, run_b)
            judged = [(name, j.status, j.summary) for name, j in rows]
            text = diff_reports(run_a, run_b) + regression_section(judged, fmt == "markdown")
            typer.echo(redactor.redact(text), nl=False)
            raise typer.Exit(diff_exit_code(rows))
        if len(args) != 1:
            _fail("usage: mytrader-ops report RUN  |  mytrader-ops report diff RUN_A RUN_B")
        stored = runs.load(args[0])
    except OpsError as exc:
        _fail(str(exc), exc.exit_code)
    render(stored, make_console(no_color or "NO_COLOR" in os.environ), redactor)
    if report_dir is not None:
        write_reports(stored, report_dir, redactor)


@app.command()
def runs(
    store: Annotated[Path | None, typer.Option("--store", dir_okay=False)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
) -> None:
    """List stored runs, newest first."""
    from mytrader_ops.errors import OpsError
    from mytrader_ops.store import RunStore

    try:
        rows = RunStore(_store_path(store)).list(limit)
    except OpsError as exc:
        _fail(str(exc), exc.exit_code)
    for run_id, started, env, decision in rows:
        typer.echo(f"{run_id}  {started}  {env:<16} {decision}")


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="YAML configuration or suite.", dir_okay=False)],
    env: Annotated[
        str | None,
        typer.Option(
            "--env", help="Also ask this environment's Prometheus to parse every PromQL query."
        ),
    ] = None,
) -> None:
    """Validate a configuration file without probing anything (with --env: except asking
    the environment's Prometheus whether it accepts each query)."""
    from mytrader_ops.config import parse_config
    from mytrader_ops.errors import ConfigError, ConfigProblem, OpsError
    from mytrader_ops.yamlsafe import format_path, read_yaml

    try:
        doc = read_yaml(file)
        cfg = parse_config(doc)
    except ConfigError as exc:
        fail_with_problems("", exc.problems)
    except OpsError as exc:
        _fail(str(exc), exc.exit_code)
    if env is not None:
        import asyncio

        from mytrader_ops.validate.queries import rejected_queries

        try:
            rejected = asyncio.run(rejected_queries(cfg, env))
        except LookupError as exc:
            _fail(str(exc))
        if rejected:
            problems = [
                ConfigProblem(
                    doc.file,
                    doc.line_of(("checks", i, "query")),
                    format_path(("checks", i, "query")),
                    f"Prometheus rejects it: {why}",
                )
                for i, why in rejected
            ]
            fail_with_problems("", problems)
    typer.echo(f"{file}: OK ({len(cfg.checks)} checks, {len(cfg.environments)} environments)")


@config_app.command("schema")
def config_schema_cmd() -> None:
    """Print the JSON Schema of the configuration format."""
    import json

    from mytrader_ops.config import config_schema

    typer.echo(json.dumps(config_schema(), indent=2))


app.command("monitor", epilog=MONITOR_EXIT_CODES)(monitor)
app.command("rollback", epilog=ROLLBACK_EXIT_CODES)(rollback)
app.command("serve", epilog=SERVE_EXIT_CODES)(serve)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: short message, no traceback with locals, not a GO
        if os.environ.get("MYTRADER_OPS_DEBUG"):
            raise
        typer.echo(
            f"mytrader-ops: internal error ({type(exc).__name__}); no verdict. "
            "Set MYTRADER_OPS_DEBUG=1 for a traceback.",
            err=True,
        )
        sys.exit(3)
