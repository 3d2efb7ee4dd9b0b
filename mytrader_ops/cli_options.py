"""Command-line options that several mytrader-ops commands share, declared once.

Only typer is imported here, so ``mytrader-ops --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer

EnvOpt = Annotated[str | None, typer.Option("--env", help="Environment name in the config.")]
TargetOpt = Annotated[
    str | None, typer.Option("--target", help="Backend base URL, e.g. http://127.0.0.1:5002.")
]
ReportDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--report-dir",
        help="Write report.md, report.json, junit.xml, report.html here.",
        file_okay=False,
    ),
]


def fail_with_problems(
    heading: str, problems: Sequence[object], redact: Callable[[str], str] = str
) -> NoReturn:
    """Print each problem of a rejected file (file, line, key path) and exit 2."""
    typer.echo(f"{len(problems)} problem(s){heading}:", err=True)
    for problem in problems:
        typer.echo(f"  {redact(str(problem))}", err=True)
    raise typer.Exit(2)
