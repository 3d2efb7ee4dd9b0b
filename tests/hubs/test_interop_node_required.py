"""The @microsoft/signalr interop tests cannot pass silently in CI without Node: with
MYTRADER_TEST_REQUIRE_SERVICES=1 a missing node or npm is a failure that says what to install;
without it, a skip that says why."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hubs.test_interop_node import node_and_npm
from tests.support.live import scaled

REPO = Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
TEST = "test_js_client_gets_401_without_a_token"


def _only(*tools: str) -> Callable[[str], str | None]:
    return lambda name: f"/usr/bin/{name}" if name in tools else None


def test_both_present_returns_their_paths() -> None:
    assert node_and_npm(_only("node", "npm"), require=True) == ("/usr/bin/node", "/usr/bin/npm")


@pytest.mark.parametrize("present", [(), ("node",), ("npm",)], ids=["none", "no-npm", "no-node"])
def test_missing_tools_fail_when_services_are_required(present: tuple[str, ...]) -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        node_and_npm(_only(*present), require=True)
    assert "MYTRADER_TEST_REQUIRE_SERVICES=1: install nodejs and npm" in str(failed.value)
    for tool in {"node", "npm"} - set(present):
        assert tool in str(failed.value).rsplit("PATH:", 1)[1]


def test_missing_tools_skip_otherwise() -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        node_and_npm(_only("npm"), require=False)
    assert "not found on PATH: node" in str(skipped.value)


@pytest.mark.parametrize(("required", "outcome"), [("1", "1 error"), ("", "1 skipped")])
def test_a_run_without_node_on_path(tmp_path: Path, required: str, outcome: str) -> None:
    """The real fixture, in a pytest run whose PATH has no node or npm."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYTRADER_TEST_")}
    env.update(PATH=str(tmp_path), MYTRADER_TEST_REQUIRE_SERVICES=required)
    done = subprocess.run(
        [*PYTEST, "-k", "sqlite", f"tests/hubs/test_interop_node.py::{TEST}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )
    assert outcome in done.stdout, done.stdout[-3000:]
    assert done.returncode == (1 if required else 0), done.stdout[-3000:]
    if required:
        assert "not found on PATH: node, npm" in done.stdout, done.stdout[-3000:]
