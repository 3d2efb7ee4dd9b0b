"""The command registers in one line and keeps `mytrader-ops --help` light."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer.testing import CliRunner

from mytrader_ops.commands_rollback import ROLLBACK_EXIT_CODES, rollback
from mytrader_ops.resources import data_dir
from tests.rollback.conftest import REPO
from tests.support.live import cli_env, scaled


def test_one_line_registration_and_dry_run() -> None:
    app = typer.Typer()

    @app.command()
    def other() -> None:  # a second command, as in the real multi-command CLI
        """Another command."""

    app.command("rollback", epilog=ROLLBACK_EXIT_CODES)(rollback)
    runner = CliRunner()
    result = runner.invoke(app, ["rollback", "--help"])
    assert result.exit_code == 0
    assert "--dry-run" in result.output
    plan = data_dir("rollback") / "kubernetes.yaml"
    result = runner.invoke(
        app,
        ["rollback", "--plan", str(plan), "--env", "staging", "--to", "41", "--dry-run"],
    )
    assert result.exit_code == 0, result.output
    assert "--to-revision=41" in result.output


def test_importing_the_command_loads_no_heavy_modules() -> None:
    code = (
        "import sys, mytrader_ops.commands_rollback\n"
        "heavy = [m for m in ('yaml', 'httpx', 'websockets', 'pydantic') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=cli_env(),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=scaled(60),
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
