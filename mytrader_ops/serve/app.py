"""The gate's HTTP face: Starlette routes on one uvicorn server (the only module here that
speaks HTTP; a lint rule keeps starlette and uvicorn in it).

- `POST /gate`: Flagger's webhook payload, `{"name", "namespace", "phase", "metadata"}`;
  `metadata.env` and `metadata.suite` are names (gate.py); other metadata is ignored.
- `GET /gate?env=&suite=`: Argo Rollouts' `web` metric provider (`jsonPath: "{$.decision}"`).
- `GET /healthz`: 200 while serving.

With a token configured, both gate routes need `Authorization: Bearer <token>` (compared in
constant time): 401 otherwise. Bodies over 64 KiB: 413. A request that is not JSON, or whose
fields have the wrong types: 400. uvicorn runs on h11 with capped header sizes, a keep-alive
timeout and a connection limit, and stops within the per-request deadline on SIGTERM.
"""

from __future__ import annotations

import hmac
import json
import socket
import sys
from pathlib import Path
from typing import IO

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mytrader_ops.redaction import Redactor
from mytrader_ops.serve.gate import Caller, Gate, GateAnswer
from mytrader_ops.serve.settings import GateSettings

MAX_BODY = 64 * 1024
_KEEP = frozenset({"decision", "exit_code", "env", "suite", "run_id", "status", "id", "critical"})


def create_app(settings: GateSettings, redactor: Redactor, log: IO[str] | None = None) -> Starlette:
    gate = Gate(settings, redactor)
    token = settings.token.reveal() if settings.token is not None else None
    out = log or sys.stderr

    def respond(answer: GateAnswer, route: str) -> Response:
        body = redactor.redact_json(answer.body, _KEEP, frozenset())
        headers = {"cache-control": "no-store"}
        if answer.retry_after_s is not None:
            headers["retry-after"] = str(answer.retry_after_s)
        line = f"gate: {route} -> {answer.status}"
        if "decision" in body:
            line += (
                f" {body['decision']} env={body.get('env')} suite={body.get('suite')} "
                f"run={body.get('run_id')}"
            )
        out.write(redactor.redact(line) + "\n")
        out.flush()
        return JSONResponse(body, status_code=answer.status, headers=headers)

    def authorized(request: Request) -> bool:
        if token is None:
            return True
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), token.encode())

    def unauthorized() -> Response:
        return JSONResponse(
            {"error": "a bearer token is required"},
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="mytrader-ops gate"'},
        )

    async def run(env: object, suite: object, caller: Caller, route: str) -> Response:
        for name, value in (("env", env), ("suite", suite)):
            if value is not None and not isinstance(value, str):
                return respond(GateAnswer(400, {"error": f"{name} must be a string"}), route)
        answer = await gate.answer(env or None, suite or None, caller)  # type: ignore[arg-type]
        return respond(answer, route)

    async def get_gate(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        q = request.query_params
        return await run(q.get("env"), q.get("suite"), "argo", "GET /gate")

    async def post_gate(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                return respond(GateAnswer(413, {"error": "body over 64 KiB"}), "POST /gate")
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            return respond(GateAnswer(400, {"error": "the body is not JSON"}), "POST /gate")
        if not isinstance(payload, dict):
            return respond(GateAnswer(400, {"error": "the body must be an object"}), "POST /gate")
        metadata = payload.get("metadata") or {}
        if not isinstance(metadata, dict):
            return respond(GateAnswer(400, {"error": "metadata must be an object"}), "POST /gate")
        who = f"POST /gate {payload.get('namespace')}/{payload.get('name')} {payload.get('phase')}"
        return await run(metadata.get("env"), metadata.get("suite"), "flagger", who[:200])

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "pass"})

    return Starlette(
        routes=[
            Route("/gate", get_gate, methods=["GET"]),
            Route("/gate", post_gate, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen must be HOST:PORT like 127.0.0.1:8470, got {text!r}")
    return host.strip("[]"), int(port)


def serve(
    settings: GateSettings, listen: str, redactor: Redactor, ready_file: Path | None = None
) -> None:
    """Bind, say where (ready file), serve until SIGTERM/SIGINT."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {listen}: {exc.strerror}") from None
    sock.listen(128)  # connections queue from now on, before the ready file says where
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, redactor),
        http="h11",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=5,
        limit_concurrency=settings.max_concurrent + settings.max_queued + 16,
        h11_max_incomplete_event_size=16 * 1024,
        timeout_graceful_shutdown=int(settings.deadline_s) + 5,
    )
    server = uvicorn.Server(config)
    url = f"http://{host}:{bound}"
    print(
        f"mytrader-ops gate on {url}: POST /gate (Flagger), GET /gate (Argo Rollouts)", flush=True
    )
    if ready_file is not None:
        ready_file.write_text(url + "\n")
    server.run(sockets=[sock])
