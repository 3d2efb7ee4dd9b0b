"""Interop with Microsoft's own client, @microsoft/signalr 10.0.11 on Node, against a real server.

npm installs the pinned client into tests/hubs/node on first use (package-lock.json is
committed). Without node or npm the tests skip, with the reason, on a developer machine; with
MYTRADER_TEST_REQUIRE_SERVICES=1 (as .ci/run sets) they fail instead, so CI cannot pass
without having run them.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.support.live import LiveServer, scaled, server_env, start_server

NODE_DIR = Path(__file__).parent / "node"
pytestmark = [pytest.mark.node, pytest.mark.slow]


def node_and_npm(
    which: Callable[[str], str | None] = shutil.which, require: bool = REQUIRE_SERVICES
) -> tuple[str, str]:
    """The node and npm executables; when either is missing, skip, or fail when required."""
    found = {tool: which(tool) for tool in ("node", "npm")}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        reason = (
            f"Node.js and npm are needed for the @microsoft/signalr interop tests; "
            f"not found on PATH: {', '.join(missing)}"
        )
        if require:
            pytest.fail(f"{reason} (MYTRADER_TEST_REQUIRE_SERVICES=1: install nodejs and npm)")
        pytest.skip(reason)
    node_bin, npm_bin = found["node"], found["npm"]
    assert node_bin is not None
    assert npm_bin is not None
    return node_bin, npm_bin


@pytest.fixture(scope="module")
def node() -> str:
    node_bin, npm_bin = node_and_npm()
    if not (NODE_DIR / "node_modules" / "@microsoft" / "signalr").is_dir():
        command = "ci" if (NODE_DIR / "package-lock.json").exists() else "install"
        done = subprocess.run(
            [npm_bin, command, "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=scaled(300),
        )
        assert done.returncode == 0, f"npm {command} failed: {done.stderr[-2000:]}"
    return node_bin


def run(node: str, **opts: Any) -> dict[str, Any]:
    done = subprocess.run(
        [node, "scenario.js", json.dumps(opts)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=scaled(90),
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result (rc={done.returncode}): {done.stdout} {done.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert done.returncode == 0, result.get("failure")
    return result


@pytest.mark.parametrize("skip_negotiation", [False, True], ids=["negotiate-v1", "skip"])
def test_market_data_with_the_js_client(
    node: str, hub_server: LiveServer, skip_negotiation: bool
) -> None:
    result = run(
        node,
        base=hub_server.url,
        scenario="market",
        auth="none",
        skipNegotiation=skip_negotiation,
        serverTimeoutMs=int(scaled(1500)),
        idleMs=int(scaled(2500)),
    )
    assert result["subscribed"] == ["AAPL", "MSFT"]
    assert set(result["push"]) >= {"symbol", "price", "bid", "ask", "volume", "timestamp"}
    assert result["error"] == (
        "An unexpected error occurred invoking 'SubscribeToSymbols' on the server. "
        "HubException: Unknown symbol 'NOPE'."
    )
    assert result["unknown"] == "Unknown hub method 'NoSuchMethod'"
    assert result["unsubscribed"] == []
    assert [i["symbol"] for i in result["streamItems"]] == ["MSFT"] * 3
    assert result["cancelledAfter"] <= 1  # at most one item was already in flight
    assert result["streamError"] == (
        "An unexpected error occurred invoking 'StreamPrices' on the server. "
        "HubException: Unknown symbol 'NOPE'."
    )
    # idle for longer than the client's (scaled) 1.5 s server timeout: only our pings kept it
    # open
    assert result["stateAfterIdle"] == "Connected"
    assert result["stateAfterStop"] == "Disconnected"
    assert result["events"] == [{"closed": None}]


@pytest.mark.parametrize("auth", ["header", "query"])
def test_trading_and_portfolio_with_the_js_client(
    node: str, hub_server: LiveServer, auth: str
) -> None:
    token = hub_server.register(f"js-{auth}")
    result = run(node, base=hub_server.url, scenario="trading", auth=auth, token=token)
    assert result["openOrders"] == []
    assert result["orderStatus"] == 201
    assert result["updates"] == [
        {"event": "new", "id": result["orderId"]},
        {"event": "fill", "id": result["orderId"]},
    ]
    assert result["portfolioKeys"] == ["account", "positions"]
    assert [p["symbol"] for p in result["portfolio"]["positions"]] == ["AAPL"]


def test_js_client_gets_401_without_a_token(node: str, hub_server: LiveServer) -> None:
    result = run(node, base=hub_server.url, scenario="denied", hub="trading", auth="none")
    assert result.get("started") is None
    assert "Status code '401'" in result["error"], result["error"]


def test_js_client_sees_the_close_message_on_shutdown(
    node: str, tmp_path: Path, server_db_env: dict[str, str]
) -> None:
    server = start_server(tmp_path, server_env(tmp_path / "data", **server_db_env))
    try:
        proc = subprocess.Popen(
            [node, "scenario.js", json.dumps({"base": server.url, "scenario": "shutdown"})],
            cwd=NODE_DIR,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        server.process.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=scaled(30))
    finally:
        server.stop()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["events"] == [
        {"closed": "Server returned an error on close: Server is shutting down."}
    ]
