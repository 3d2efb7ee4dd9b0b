"""The hub probe against a minimal ASP.NET Core-style hub (not MyTrader's implementation).

It speaks negotiate v0 (connectionId only, no token), sends the handshake reply and a ping in
one frame (as ASP.NET Core may), pushes with a differently-cased target name, and answers an
unknown method with the .NET error string.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from mytrader_ops.config import HubCheck
from mytrader_ops.probes.context import open_context
from mytrader_ops.probes.hub import probe_hub
from mytrader_ops.redaction import Redactor
from mytrader_ops.validate.evaluate import CheckMeta, judge_observation
from mytrader_ops.verdict import Status
from tests.ops.conftest import run_cli

RS = "\x1e"


async def negotiate(request: Request) -> JSONResponse:
    assert "negotiateVersion=1" in str(request.url)
    # A v0-only server ignores the requested version: no connectionToken, id = connectionId.
    return JSONResponse(
        {
            "connectionId": "conn-v0",
            "negotiateVersion": 0,
            "availableTransports": [
                {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}
            ],
        }
    )


async def hub(ws: WebSocket) -> None:
    if ws.query_params.get("id") != "conn-v0":
        await ws.close(code=1008)
        return
    await ws.accept()
    handshake = await ws.receive_text()
    assert json.loads(handshake.rstrip(RS)) == {"protocol": "json", "version": 1}
    await ws.send_text("{}" + RS + json.dumps({"type": 6}) + RS)
    try:
        while True:
            for record in (await ws.receive_text()).split(RS):
                if not record:
                    continue
                msg = json.loads(record)
                if msg.get("type") == 1 and msg.get("target", "").lower() == "subscribe":
                    await ws.send_text(
                        json.dumps({"type": 3, "invocationId": msg["invocationId"], "result": None})
                        + RS
                    )
                    push = {"type": 1, "target": "receivemarketdata", "arguments": [{"p": 1}]}
                    await ws.send_text(json.dumps(push) + RS)
                elif msg.get("type") == 1:
                    error = f"Unknown hub method '{msg['target']}'"
                    await ws.send_text(
                        json.dumps({"type": 3, "invocationId": msg["invocationId"], "error": error})
                        + RS
                    )
                elif msg.get("type") == 7:
                    await ws.close(code=1000)
                    return
    except WebSocketDisconnect:
        return


async def dropping_hub(ws: WebSocket) -> None:
    """Accepts, answers invocations for a second, then drops the connection with 1011."""
    await ws.accept()
    await ws.receive_text()  # handshake
    await ws.send_text("{}" + RS)
    loop = asyncio.get_running_loop()
    until = loop.time() + 1.0
    try:
        while (left := until - loop.time()) > 0:
            try:
                text = await asyncio.wait_for(ws.receive_text(), timeout=left)
            except TimeoutError:
                break
            for record in text.split(RS):
                if record and json.loads(record).get("type") == 1:
                    inv = json.loads(record)["invocationId"]
                    done = {"type": 3, "invocationId": inv, "result": None}
                    await ws.send_text(json.dumps(done) + RS)
        await ws.close(code=1011, reason="backend exploded")
    except WebSocketDisconnect:
        return


@pytest.fixture(scope="module")
def aspnet_like_hub() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/hubs/x/negotiate", negotiate, methods=["POST"]),
            WebSocketRoute("/hubs/x", hub),
            Route("/hubs/drop/negotiate", negotiate, methods=["POST"]),
            WebSocketRoute("/hubs/drop", dropping_hub),
        ]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def _check(target: str) -> HubCheck:
    return HubCheck.model_validate(
        {
            "id": "h",
            "title": "t",
            "kind": "hub",
            "path": "/hubs/x",
            "timeout_s": 5,
            "invoke": {"target": target, "arguments": [["AAPL"]]},
            "expect_message": "ReceiveMarketData",
            "first_message_within_ms": 2000,
        }
    )


async def _run(url: str, target: str) -> tuple[Status, str, list[str]]:
    async with open_context(
        backend=url, frontend=None, username=None, password=None, redactor=Redactor()
    ) as ctx:
        obs = await probe_hub(ctx, _check(target))
    verdict = judge_observation(CheckMeta("h", "t"), obs)
    return verdict.status, verdict.summary, list(verdict.evidence)


async def test_v0_negotiate_trailing_records_and_case_insensitive_push(
    aspnet_like_hub: str,
) -> None:
    status, summary, evidence = await _run(aspnet_like_hub, "Subscribe")
    assert status is Status.PASS, (summary, evidence)
    assert any("negotiate" in e and "v0" in e for e in evidence)
    assert any("close" in e and "1000" in e for e in evidence)


async def test_error_completion_is_reported_with_the_server_text(aspnet_like_hub: str) -> None:
    status, summary, _ = await _run(aspnet_like_hub, "Nope")
    assert status is Status.FAIL
    assert summary == "invoke failed: Nope: Unknown hub method 'Nope'"


async def test_keep_alive_ping_is_observed(aspnet_like_hub: str) -> None:
    check = HubCheck.model_validate(
        {
            "id": "h",
            "title": "t",
            "kind": "hub",
            "path": "/hubs/x",
            "timeout_s": 5,
            "wait_ping": True,
        }
    )
    async with open_context(
        backend=aspnet_like_hub, frontend=None, username=None, password=None, redactor=Redactor()
    ) as ctx:
        obs = await probe_hub(ctx, check)
    steps = {s.name: s for s in obs.steps}
    assert steps["keep-alive ping"].outcome == "ok"
    assert judge_observation(CheckMeta("h", "t"), obs).status is Status.PASS


DROPPING = """version: 1
checks:
  - id: hub-latency
    title: Hub invoke round trip
    kind: hub-latency
    path: /hubs/drop
    invoke: {target: Subscribe, arguments: [[AAPL]]}
    rate: 25
    max_ms: 1000
"""


@pytest.mark.slow
def test_a_hub_that_drops_every_connection_mid_run_is_a_failure(
    aspnet_like_hub: str, tmp_path: Path
) -> None:
    """Issue 9.2: the hub answers for a second, then closes 1011, on every connection. This
    used to be INCONCLUSIVE ("19 samples, 59 needed"): failed invocations and dropped
    connections were not counted. It is the target's doing, so it is a FAIL that says so."""
    cfg = tmp_path / "drop.yaml"
    cfg.write_text(DROPPING)
    res = run_cli(
        "validate", "--config", str(cfg), "--target", aspnet_like_hub, "--duration", "4",
        "--report-dir", str(tmp_path / "r"), "--no-store", "--no-color",
    )  # fmt: skip
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert (res.code, doc["decision"]) == (1, "NO-GO"), res.stdout + res.stderr
    (v,) = doc["verdicts"]
    assert v["status"] == "FAIL"
    summary = v["summary"]
    for fact in ("invocations sent", "completed", "failed", "connections dropped", "close 1011"):
        assert fact in summary, summary
    assert "backend exploded" in summary
    # every dropped connection is over its bound (max_drops 0); how many invocations were in
    # flight at each drop depends on the machine's load, so their fraction is only reported
    drops = next(m for m in v["measurements"] if m["name"] == "connections dropped by the target")
    assert drops["value"] > drops["threshold"] == 0
    failures = next(m for m in v["measurements"] if m["name"].startswith("invocation failures"))
    assert failures["value"] > 0
    (stream,) = doc["streams"]
    assert stream["errors"] > 0
    assert stream["responses"] + stream["errors"] <= stream["scheduled"]
