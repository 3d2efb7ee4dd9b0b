"""`mytrader-ops init` (issue 10, part 4) against a service this project did not write: a
Starlette app with a Kubernetes-style /healthz, a Spring Actuator health report, Prometheus
/metrics, an OpenAPI document, a SignalR hub given with --hub and another found in the
frontend's script. The written file passes `config check`, and validate with it is GO; the
default MyTrader suite against the same service is NO-GO and its first line says why.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.ops.conftest import run_cli
from tests.support.live import scaled

pytestmark = pytest.mark.slow
RS = "\x1e"


async def negotiate(request: Request) -> JSONResponse:
    transports = [{"transport": "WebSockets", "transferFormats": ["Text"]}]
    return JSONResponse(
        {"connectionId": "x", "negotiateVersion": 0, "availableTransports": transports}
    )


async def hub(ws: WebSocket) -> None:
    await ws.accept()
    await ws.receive_text()
    await ws.send_text("{}" + RS)
    try:
        while True:
            for record in (await ws.receive_text()).split(RS):
                if record and json.loads(record).get("type") == 7:
                    await ws.close(code=1000)
                    return
    except WebSocketDisconnect:
        return


def app() -> Starlette:
    openapi = {
        "openapi": "3.0.0",
        "paths": {
            "/api/items": {"get": {}},
            "/api/items/{id}": {"get": {}},
            "/api/orders": {"post": {}},
        },
    }
    spring = {"status": "UP", "components": {"db": {"status": "UP"}, "disk": {"status": "UP"}}}
    metrics = "# TYPE svc_requests_total counter\nsvc_requests_total 5\n"
    page = '<html><body><script src="/app.js"></script></body></html>'
    script = 'const c = new signalR.HubConnectionBuilder().withUrl("/hubs/notify").build();'

    return Starlette(
        routes=[
            Route("/healthz", lambda r: PlainTextResponse("ok")),
            Route("/actuator/health", lambda r: JSONResponse(spring)),
            Route("/metrics", lambda r: PlainTextResponse(metrics)),
            Route("/openapi.json", lambda r: JSONResponse(openapi)),
            Route("/api/items", lambda r: JSONResponse([{"id": 1}])),
            Route("/", lambda r: HTMLResponse(page)),
            Route("/app.js", lambda r: Response(script, media_type="text/javascript")),
            Route("/chat/negotiate", negotiate, methods=["POST"]),
            WebSocketRoute("/chat", hub),
            Route("/hubs/notify/negotiate", negotiate, methods=["POST"]),
            WebSocketRoute("/hubs/notify", hub),
        ]
    )


@pytest.fixture(scope="module")
def stranger() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app(), log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_init_writes_a_starter_that_checks_clean_and_validates_go(
    stranger: str, tmp_path: Path
) -> None:
    out = tmp_path / "svc.yaml"
    res = run_cli("init", "--target", stranger, "--frontend", stranger, "--hub", "/chat",
                  "--out", str(out))  # fmt: skip
    assert res.code == 0, res.stderr
    text = out.read_text()
    for expected in (
        'path: "/healthz"',
        'path: "/actuator/health"',
        "kubernetes",
        "spring-actuator",
        'require: ["svc_requests", "svc_requests_total"]',  # the names it exposes
        'path: "/api/items"',
        'path: "/chat"',
        'path: "/hubs/notify"',  # found in the frontend's script
        "max_ms: 10",  # the shipped suite's thresholds
        "max_ms: 100",
    ):
        assert expected in text, (expected, text)
    assert "/api/items/{id}" not in text  # a route with a parameter is not guessed at
    assert "/api/orders" not in text  # nor a POST
    assert "auth:" not in text  # nothing asked for credentials
    check = run_cli("config", "check", str(out))
    assert check.code == 0, check.stderr
    res = run_cli(
        "validate", "--config", str(out), "--duration", "3", "--report-dir", str(tmp_path / "r"),
        "--no-store", "--no-color", timeout=scaled(120),
    )  # fmt: skip
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    failing = {v["check_id"]: v["summary"] for v in doc["verdicts"] if v["status"] != "PASS"}
    assert (res.code, doc["decision"]) == (0, "GO"), failing
    again = run_cli("init", "--target", stranger, "--out", str(out))
    assert again.code == 2  # an existing file is not overwritten without --force
    assert "--force" in again.stderr


def test_the_default_suite_against_a_stranger_says_so_first_and_points_to_init(
    stranger: str, tmp_path: Path
) -> None:
    res = run_cli(
        "validate", "--target", stranger, "--duration", "2", "--no-store", "--no-color",
        timeout=scaled(120),
    )  # fmt: skip
    assert res.code == 1, res.stdout + res.stderr
    first = res.stdout.splitlines()[0]
    assert first.startswith(f"{stranger} does not look like a MyTrader API")
    assert f"mytrader-ops init --target {stranger}" in res.stdout.replace("\n", " ")
