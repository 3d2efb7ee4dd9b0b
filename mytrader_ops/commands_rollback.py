"""`mytrader-ops rollback`: thin CLI over `mytrader_ops.rollback`.

Register with one line in `mytrader_ops/cli.py`:

    app.command("rollback", epilog=ROLLBACK_EXIT_CODES)(rollback)

Only typer is imported at module level; plans, YAML, pydantic and httpx load inside the
command so `mytrader-ops --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from mytrader_ops.cli_options import fail_with_problems

ROLLBACK_EXIT_CODES = """Exit codes: 0 rolled back and verified (or already rolled back and
verified again; a dry run), 2 usage or plan error, 4 a step or the verification failed,
5 another rollback of this environment holds the lock."""


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"mytrader-ops rollback: error: {message}", err=True)
    raise typer.Exit(code)


PLAN_VAR = "MYTRADER_OPS_ROLLBACK_PLAN"


def _find_plan(given: Path | None) -> Path:
    """--plan FILE, or the name of a shipped plan (`kubernetes`), or $MYTRADER_OPS_ROLLBACK_PLAN.

    There is deliberately no silent default: running the wrong plan is worse than asking.
    """
    from mytrader_ops.resources import data_dir

    shipped_dir = data_dir("rollback")
    shipped = sorted(p.stem for p in shipped_dir.glob("*.yaml"))
    raw = str(given) if given is not None else os.environ.get(PLAN_VAR)
    if not raw:
        _fail(
            f"no plan: pass --plan FILE (or a shipped plan: {', '.join(shipped)}) "
            f"or set {PLAN_VAR}",
            2,
        )
    path = Path(raw)
    if path.is_file():
        return path
    if raw in shipped:
        return shipped_dir / f"{raw}.yaml"
    _fail(f"plan {raw!r} not found (shipped plans: {', '.join(shipped)})", 2)


def _evidence(raw: str | None) -> dict[str, object] | None:
    import json

    if raw is None:
        return None
    text = raw
    if raw.startswith("@"):
        try:
            text = Path(raw[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            _fail(f"--evidence {raw}: cannot read: {exc.strerror}", 2)
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": raw}
    return value if isinstance(value, dict) else {"value": value}


def rollback(
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="Rollback plan YAML, or a shipped plan's name (systemd, kubernetes, "
            "docker-compose, nginx-blue-green, local-mytrader). Default: "
            "$MYTRADER_OPS_ROLLBACK_PLAN.",
            dir_okay=False,
        ),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            help="Environment to roll back (one rollback at a time). Optional when the plan "
            "defines exactly one environment.",
        ),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Release to go back to; fills {to_version}.")
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why: goes to the audit log and to notifications."),
    ] = None,
    evidence: Annotated[
        str | None,
        typer.Option("--evidence", help="Evidence for the audit log: JSON text or @FILE."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="NAME=VALUE for a plan variable (or target=URL); repeatable; passed as data.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the exact resolved plan; change nothing."),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (scripts, CI).")
    ] = False,
    new: Annotated[
        bool,
        typer.Option(
            "--new",
            help="Start a new rollback even if the audit log shows this one already done "
            "(after a newer deployment).",
        ),
    ] = False,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="Locks and audit log. Default $MYTRADER_OPS_STATE_DIR or "
            "~/.local/state/mytrader-ops.",
            file_okay=False,
        ),
    ] = None,
    audit_log: Annotated[
        Path | None,
        typer.Option(
            "--audit-log",
            help="Audit log file (JSON lines). Default <state-dir>/rollback-audit.jsonl.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Roll an environment back with a plan: ordered steps, each with a timeout, audited.

    Re-running after a crash resumes where the audit log says it stopped; re-running a
    completed rollback only verifies again. Without --yes it asks on a terminal and
    refuses when stdin is not one.
    """
    from mytrader_ops.errors import ConfigError, OpsError
    from mytrader_ops.interrupts import sigterm_as_interrupt
    from mytrader_ops.redaction import Redactor
    from mytrader_ops.rollback.errors import EXIT_ROLLBACK_FAILED
    from mytrader_ops.rollback.plan import format_plan
    from mytrader_ops.rollback.service import (
        RollbackRequest,
        default_state_dir,
        missing_optional_secrets,
        preview_resume,
        read_secrets,
        resolve,
        run_rollback,
    )

    redactor = Redactor()
    plan_file = _find_plan(plan)
    if reason is None:
        if dry_run:
            reason = "(dry run)"
        else:
            _fail("--reason is required: say why (it goes to the audit log)", 2)
    overrides: dict[str, str] = {}
    for item in set_ or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            _fail(f"--set {item!r}: expected NAME=VALUE", 2)
        overrides[name] = value
    request = RollbackRequest(
        plan_file=plan_file,
        env=env,
        to_version=to,
        reason=reason,
        state_dir=state_dir or default_state_dir(),
        audit_path=audit_log,
        evidence=_evidence(evidence),
        new=new,
        overrides=overrides,
    )
    try:
        resolved = resolve(request)
    except ConfigError as exc:
        fail_with_problems(" in the plan", exc.problems, redactor.redact)
    except OpsError as exc:
        _fail(redactor.redact(str(exc)), exc.exit_code)

    text = format_plan(resolved)
    if not dry_run:
        try:
            read_secrets(resolved)  # before asking: a missing secret is a usage error
        except OpsError as exc:
            _fail(str(exc), exc.exit_code)
        for name in missing_optional_secrets(resolved):
            typer.echo(f"warning: ${{{name}}} is not set: the optional steps using it will fail")
    if dry_run:
        typer.echo(redactor.redact(text), nl=False)
        try:
            preview = preview_resume(request, resolved)
        except OpsError as exc:
            typer.echo(f"(audit log not readable: {exc})")
        else:
            if preview.message:
                typer.echo(f"A real run now: {preview.message}")
        typer.echo("Dry run: nothing was run, locked or written.")
        return
    if not yes:
        if not sys.stdin.isatty():
            _fail("refusing to roll back without --yes: stdin is not a terminal", 2)
        typer.echo(redactor.redact(text), nl=False)
        if not typer.confirm(f"Roll back {resolved.env!r} now?", default=False):
            _fail("not confirmed; nothing was done", 2)

    def progress(step: object, result: object) -> None:
        from mytrader_ops.rollback.execute import StepResult
        from mytrader_ops.rollback.plan import ResolvedStep

        assert isinstance(step, ResolvedStep)
        total = len(resolved.steps)
        if result is None:
            typer.echo(f"[{step.index}/{total}] {step.kind} {step.name} ...")
            return
        assert isinstance(result, StepResult)
        line = f"[{step.index}/{total}] {step.kind} {step.name}: {result.outcome}"
        line += f" ({result.detail}"
        line += f", {result.duration_s:.1f} s)" if result.outcome != "skipped" else ")"
        typer.echo(redactor.redact(line))
        if result.outcome in ("failed", "timed_out") and result.output.strip():
            tail = "\n".join(result.output.strip().splitlines()[-15:])
            typer.echo(
                redactor.redact("    output (last lines):\n    " + tail.replace("\n", "\n    "))
            )

    try:
        with sigterm_as_interrupt():
            result = run_rollback(
                request,
                resolved,
                redactor=redactor,
                progress=progress,
                notice=lambda m: typer.echo(redactor.redact(m)),
            )
    except KeyboardInterrupt:
        _fail(
            "interrupted; the audit log records where it stopped. Re-run the same command "
            "to resume.",
            EXIT_ROLLBACK_FAILED,
        )
    except OpsError as exc:
        _fail(redactor.redact(str(exc)), exc.exit_code)
    typer.echo(redactor.redact(result.message))
    typer.echo(f"Audit log: {request.audit_file} (rollback id {resolved.rollback_id})")
    raise typer.Exit(result.exit_code)


def _main() -> None:  # `python -m mytrader_ops.commands_rollback` (tests; before registration)
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("rollback", epilog=ROLLBACK_EXIT_CODES)(rollback)
    app(args=sys.argv[1:], prog_name="mytrader-ops rollback")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    _main()
