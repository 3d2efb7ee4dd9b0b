"""The hub probe against a minimal ASP.NET Core-style hub (not MyTrader's implementation).

It speaks negotiate v0 (connectionId only, no token), sends the handshake reply and a ping in
one frame (as ASP.NET Core may), pushes with a differently-cased target name, and answers an
unknown method with the .NET error string.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

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


@pytest.fixture(scope="module")
def aspnet_like_hub() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/hubs/x/negotiate", negotiate, methods=["POST"]),
            WebSocketRoute("/hubs/x", hub),
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
