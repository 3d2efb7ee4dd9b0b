"""Authentication the way real services do it (issue 10, part 1): the real CLI against a
service this project did not write.

The service is a small Starlette app: a real OAuth2 token endpoint built on oauthlib's
`BackendApplicationServer` (the client-credentials grant, RFC 6749 4.4; not a hand-rolled
fake), a custom login route, resources that accept its tokens, a static bearer token or an
API key, and a SignalR hub that refuses anonymous negotiate and upgrade.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import uvicorn
from oauthlib.oauth2 import BackendApplicationServer, RequestValidator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from mytrader_ops.config import OAuth2Auth
from mytrader_ops.probes.context import open_context
from mytrader_ops.redaction import Redactor
from tests.ops.conftest import run_cli
from tests.support.live import scaled

RS = "\x1e"
CLIENT_ID, CLIENT_SECRET = "svc-client", "oauth-secret-7Hq2"
STATIC_TOKEN, API_KEY = "static-bearer-Xk91", "api-key-Pz44"
LOGIN_USER, LOGIN_PASS = "alice", "login-pass-Wm3"


class _Validator(RequestValidator):  # type: ignore[misc]
    """oauthlib's validator for the client-credentials grant: one confidential client."""

    def __init__(self, issued: dict[str, float]) -> None:
        self.issued = issued

    def client_authentication_required(self, request: Any, *a: Any, **kw: Any) -> bool:
        return True

    def authenticate_client(self, request: Any, *a: Any, **kw: Any) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        if unquote(user) != CLIENT_ID or unquote(password) != CLIENT_SECRET:
            return False
        request.client_id = CLIENT_ID
        request.client = type("Client", (), {"client_id": CLIENT_ID})()
        return True

    def validate_grant_type(self, client_id: str, grant_type: str, *a: Any, **kw: Any) -> bool:
        return grant_type == "client_credentials"

    def validate_scopes(self, client_id: str, scopes: list[str], *a: Any, **kw: Any) -> bool:
        return set(scopes) <= {"read", "gate"}

    def get_default_scopes(self, client_id: str, request: Any, *a: Any, **kw: Any) -> list[str]:
        return ["read"]

    def save_bearer_token(self, token: dict[str, Any], request: Any, *a: Any, **kw: Any) -> None:
        self.issued[token["access_token"]] = token["expires_in"]


class Service:
    """The app's state: issued tokens and how often the token endpoint answered."""

    def __init__(self, token_lifetime_s: int) -> None:
        self.issued: dict[str, float] = {}
        self.token_requests = 0
        self.logins: dict[str, bool] = {}
        self.oauth = BackendApplicationServer(
            _Validator(self.issued), token_expires_in=token_lifetime_s
        )

    def authorized(self, headers: Any, query: Any) -> bool:
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else query.get("access_token", "")
        if token and (token in self.issued or token == STATIC_TOKEN or token in self.logins):
            return True
        return headers.get("x-api-key") == API_KEY

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            self.token_requests += 1
            body = (await request.body()).decode()
            headers, text, status = self.oauth.create_token_response(
                str(request.url), "POST", body, dict(request.headers)
            )
            return Response(text, status, headers=headers)

        async def login(request: Request) -> JSONResponse:
            doc = await request.json()
            if doc.get("user") != LOGIN_USER or doc.get("pass") != LOGIN_PASS:
                return JSONResponse({"error": "bad login"}, 401)
            jwt = secrets.token_urlsafe(16)
            self.logins[jwt] = True
            return JSONResponse({"data": {"jwt": jwt, "expires_in": 3600}})

        async def guarded(request: Request) -> JSONResponse:
            if not self.authorized(request.headers, request.query_params):
                return JSONResponse({"error": "unauthorized"}, 401)
            return JSONResponse({"id": "svc-account", "ok": True})

        async def negotiate(request: Request) -> JSONResponse:
            if not self.authorized(request.headers, request.query_params):
                return JSONResponse({"error": "unauthorized"}, 401)
            transports = [{"transport": "WebSockets", "transferFormats": ["Text"]}]
            return JSONResponse(
                {"connectionId": "c1", "negotiateVersion": 0, "availableTransports": transports}
            )

        async def hub(ws: WebSocket) -> None:
            if not self.authorized(ws.headers, ws.query_params):
                await ws.close(code=1008)  # refused before the upgrade completes
                return
            await ws.accept()
            await ws.receive_text()
            await ws.send_text("{}" + RS)
            try:
                while True:
                    for record in (await ws.receive_text()).split(RS):
                        msg = json.loads(record) if record else {}
                        if msg.get("type") == 1:
                            done = {"type": 3, "invocationId": msg["invocationId"], "result": 1}
                            await ws.send_text(json.dumps(done) + RS)
                        elif msg.get("type") == 7:
                            await ws.close(code=1000)
                            return
            except WebSocketDisconnect:
                return

        return Starlette(
            routes=[
                Route("/oauth/token", token, methods=["POST"]),
                Route("/custom/login", login, methods=["POST"]),
                Route("/api/auth/me", guarded),
                Route("/api/data", guarded),
                Route("/hubs/secure/negotiate", negotiate, methods=["POST"]),
                WebSocketRoute("/hubs/secure", hub),
            ]
        )


def _serve(service: Service) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(service.app(), log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def service() -> Iterator[tuple[Service, str]]:
    svc = Service(token_lifetime_s=3600)
    for url in _serve(svc):
        yield svc, url


CHECKS = """
checks:
  - {id: data, title: A protected resource, kind: http, path: /api/data, auth: true}
  - id: secure-hub
    title: A hub that refuses anonymous clients
    kind: hub
    path: /hubs/secure
    auth: true
    require_auth: true
    invoke: {target: Echo, arguments: []}
  - {id: mobile, title: Mobile client, kind: mobile, path: /hubs/secure, auth: true}
  - {id: auth-flow, title: Authentication, kind: auth}
"""


def _config(tmp: Path, url: str, auth: str) -> Path:
    cfg = tmp / "svc.yaml"
    cfg.write_text(
        f"version: 1\ndefault_env: svc\nenvironments:\n  svc:\n    backend: {url}\n"
        f"    auth:\n{auth}" + CHECKS
    )
    return cfg


def _validate(tmp: Path, cfg: Path, env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    res = run_cli(
        "validate", "--config", str(cfg), "--report-dir", str(tmp / "r"), "--no-store",
        "--no-color", env=env, timeout=scaled(120),
    )  # fmt: skip
    doc = json.loads((tmp / "r" / "report.json").read_text())
    texts = [res.stdout, res.stderr, *(p.read_text() for p in (tmp / "r").iterdir())]
    return res.code, {v["check_id"]: v for v in doc["verdicts"]}, "\n".join(texts)


OAUTH = """      type: oauth2
      token_url: URL/oauth/token
      client_id: svc-client
      client_secret: ${TEST_OAUTH_SECRET}
      scope: read
"""


def test_oauth2_client_credentials_against_a_real_token_endpoint(
    service: tuple[Service, str], tmp_path: Path
) -> None:
    svc, url = service
    cfg = _config(tmp_path, url, OAUTH.replace("URL", url))
    code, verdicts, out = _validate(tmp_path, cfg, {"TEST_OAUTH_SECRET": CLIENT_SECRET})
    failing = {k: v["summary"] for k, v in verdicts.items() if v["status"] != "PASS"}
    assert code == 0, (failing, out)
    assert svc.token_requests == 1  # fetched once per run, shared by every check
    assert "authenticate" in str(verdicts["auth-flow"]["evidence"])
    assert CLIENT_SECRET not in out
    assert not any(token in out for token in svc.issued)


def test_a_failing_token_endpoint_is_a_named_failure_and_no_secret_is_unset(
    service: tuple[Service, str], tmp_path: Path
) -> None:
    _svc, url = service
    cfg = _config(tmp_path, url, OAUTH.replace("URL", url))
    code, verdicts, out = _validate(tmp_path, cfg, {"TEST_OAUTH_SECRET": "wrong-secret-1"})
    assert code == 1, out
    summary = str(verdicts["data"]["summary"])
    assert f"OAuth2 token endpoint {url}/oauth/token answered HTTP 401 (invalid_client)" in summary
    assert "wrong-secret-1" not in out
    code, verdicts, out = _validate(tmp_path, cfg, {})  # the secret's variable is unset
    assert code == 3, out
    assert "${TEST_OAUTH_SECRET} is not set" in str(verdicts["data"]["summary"])


async def test_an_oauth2_token_is_fetched_again_before_it_expires() -> None:
    """A long monitor watch keeps authenticating: a 2 s token is renewed in its last fifth."""
    svc = Service(token_lifetime_s=2)
    for url in _serve(svc):
        spec = OAuth2Auth(
            type="oauth2",
            token_url=f"{url}/oauth/token",
            client_id=CLIENT_ID,
            client_secret="${TEST_OAUTH_SECRET_2}",  # type: ignore[arg-type]
        )
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TEST_OAUTH_SECRET_2", CLIENT_SECRET)
            spec = OAuth2Auth.model_validate(spec.model_dump())
            async with open_context(
                backend=url,
                frontend=None,
                username=None,
                password=None,
                redactor=Redactor(),
                auth=spec,
            ) as ctx:
                first, _r, _f = await ctx.credential()
                again, _r, _f = await ctx.credential()
                assert again is first  # fresh: no second request
                await asyncio.sleep(1.7)
                renewed, _r, _f = await ctx.credential()
        assert first is not None
        assert renewed is not None
        assert renewed.token != first.token
        assert svc.token_requests == 2


BEARER = """      type: bearer
      token: ${TEST_BEARER}
"""


@pytest.mark.parametrize(("token", "code"), [(STATIC_TOKEN, 0), ("not-the-token", 1)])
def test_a_bearer_token_opens_a_hub_that_refuses_anonymous_clients(
    service: tuple[Service, str], tmp_path: Path, token: str, code: int
) -> None:
    _svc, url = service
    got, verdicts, out = _validate(tmp_path, _config(tmp_path, url, BEARER), {"TEST_BEARER": token})
    assert got == code, out
    hub_evidence = " ".join(verdicts["secure-hub"]["evidence"])
    assert "anonymous negotiate refused" in hub_evidence  # and the token is what opens it
    if code == 0:
        assert verdicts["secure-hub"]["status"] == "PASS"
        assert verdicts["mobile"]["status"] == "PASS"  # access_token in negotiate and upgrade
    else:
        assert verdicts["secure-hub"]["status"] == "FAIL"
        assert "negotiate" in str(verdicts["secure-hub"]["summary"])
    assert token not in out


def test_an_api_key_header_and_a_custom_login(service: tuple[Service, str], tmp_path: Path) -> None:
    _svc, url = service
    key = "      type: header\n      name: X-API-Key\n      value: ${TEST_API_KEY}\n"
    _code, verdicts, out = _validate(
        tmp_path, _config(tmp_path, url, key), {"TEST_API_KEY": API_KEY}
    )
    assert verdicts["data"]["status"] == "PASS", out
    assert verdicts["secure-hub"]["status"] == "PASS", out
    assert API_KEY not in out
    login = (
        "      type: login\n      path: /custom/login\n      token_path: data.jwt\n"
        "      body:\n        user: ${TEST_USER}\n        pass: ${TEST_PASS}\n"
    )
    env = {"TEST_USER": LOGIN_USER, "TEST_PASS": LOGIN_PASS}
    code, verdicts, out = _validate(tmp_path, _config(tmp_path, url, login), env)
    assert code == 0, out
    assert LOGIN_PASS not in out
