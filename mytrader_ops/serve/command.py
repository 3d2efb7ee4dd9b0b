"""`mytrader-ops serve`: thin CLI over `mytrader_ops.serve` (registered in cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SERVE_EXIT_CODES = """Exit codes: 0 stopped (SIGTERM/SIGINT); 2 usage or configuration error
(file, line and key named). Answers: 200 GO (GET: every decision), 412 NO-GO, 503 INCONCLUSIVE
or deadline, 400 unknown env/suite, 401 token, 429 busy."""


def serve(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to listen on, e.g. 127.0.0.1:8470.")
    ],
    config: Annotated[
        Path,
        typer.Option("--config", help="The gate's config (suites, token, limits).", dir_okay=False),
    ],
    ready_file: Annotated[
        Path | None,
        typer.Option(
            "--ready-file", help="Write the base URL here once listening.", dir_okay=False
        ),
    ] = None,
) -> None:
    """Serve the gate to rollout controllers: POST /gate (Flagger webhooks), GET /gate (Argo
    Rollouts web metrics). Environments and suites come from --config only."""
    from mytrader_ops.errors import ConfigError, OpsError
    from mytrader_ops.redaction import Redactor
    from mytrader_ops.serve.app import parse_listen
    from mytrader_ops.serve.app import serve as run_server
    from mytrader_ops.serve.settings import load_gate_settings

    redactor = Redactor()
    try:
        parse_listen(listen)
        settings = load_gate_settings(config)
    except ConfigError as exc:
        for p in exc.problems:
            typer.echo(f"mytrader-ops serve: error: {redactor.redact(str(p))}", err=True)
        raise typer.Exit(2) from None
    except (OpsError, ValueError) as exc:
        typer.echo(f"mytrader-ops serve: error: {redactor.redact(str(exc))}", err=True)
        raise typer.Exit(2) from None
    redactor.add_secret(settings.token)
    try:
        run_server(settings, listen, redactor, ready_file)
    except ValueError as exc:
        typer.echo(f"mytrader-ops serve: error: {exc}", err=True)
        raise typer.Exit(2) from None
