"""Command-line options that several mytrader-ops commands share, declared once.

Only typer is imported here, so ``mytrader-ops --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
