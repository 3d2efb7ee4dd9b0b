"""Helpers for rollback tests: write plans, run the real command in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.live import cli_env, scaled

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def py_step(code: str) -> list[str]:
    """argv for a Python one-liner step (portable; no shell anywhere)."""
    return [PY, "-c", textwrap.dedent(code)]


def rollback_argv(*args: str) -> list[str]:
    return [PY, "-m", "mytrader_ops.commands_rollback", *args]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, stdin: int | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        rollback_argv(*args),
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        cwd=REPO,
    )


def audit_records(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


@pytest.fixture
def write_plan(tmp_path: Path) -> Callable[[dict[str, object]], Path]:
    """Write a plan given as data (JSON is valid YAML) and return its path."""
    counter = iter(range(1000))

    def write(plan: dict[str, object]) -> Path:
        path = tmp_path / f"plan-{next(counter)}.yaml"
        path.write_text(json.dumps(plan, indent=2))
        return path

    return write
