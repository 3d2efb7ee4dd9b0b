"""The web front against a real API process: static files, HTTP and WebSocket relay, failures.

Every request here goes browser-style through ``mytrader-server web`` (a real process on an
ephemeral port) to a real ``mytrader-server``; the hub client is ``websockets`` speaking the
SignalR JSON protocol by hand, so the exact frames and statuses are visible.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.live import LiveServer, scaled, server_env, start_server
from tests.web.support import WebFront, free_port, start_web

pytestmark = pytest.mark.slow
RS = "\x1e"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, WebFront]]:
    tmp = tmp_path_factory.mktemp("proxy")
    api = start_server(tmp, server_env(tmp / "data"))
    try:
        web = start_web(tmp, api.url)
        try:
            yield api, web
        finally:
            web.stop()
    finally:
        api.stop()  # also when the front cannot start: no server left running


def ws_url(web: WebFront, path: str) -> str:
    return web.url.replace("http://", "ws://") + path


def test_serves_the_app_with_a_strict_content_security_policy(
    stack: tuple[LiveServer, WebFront],
) -> None:
    _, web = stack
    page = httpx.get(web.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/main.js">' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    script = httpx.get(web.url + "/js/signalr.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert '<script src="vendor/microsoft-signalr/signalr.min.js"></script>' in page.text
    client = httpx.get(web.url + "/vendor/microsoft-signalr/signalr.min.js")
    assert client.status_code == 200
    assert "javascript" in client.headers["content-type"]
    assert client.headers["content-security-policy"] == csp  # the CSP is the same everywhere
    assert httpx.get(web.url + "/nope.js").status_code == 404


def test_app_makes_no_request_to_another_origin(stack: tuple[LiveServer, WebFront]) -> None:
    """No CDN fonts or scripts: every URL in the shipped files is relative to this origin."""
    from mytrader_server.web import STATIC_DIR

    for path in STATIC_DIR.rglob("*"):
        if "vendor" in path.parts:
            continue  # Microsoft's client names doc links in its error texts; it loads nothing
        if path.suffix in (".html", ".js", ".css"):
            text = path.read_text()
            assert "http://" not in text.replace("http://www.w3.org", ""), path
            assert "https://" not in text, path
            assert "//cdn" not in text, path


def test_api_requests_and_errors_pass_through(stack: tuple[LiveServer, WebFront]) -> None:
    api, web = stack
    direct = httpx.get(api.url + "/api/symbols").json()
    proxied = httpx.get(web.url + "/api/symbols")
    assert proxied.status_code == 200
    assert proxied.json() == direct
    assert "x-request-id" in proxied.headers

    bad = httpx.post(web.url + "/api/auth/login", json={"username": "nobody", "password": "x" * 9})
    assert bad.status_code == 401
    assert bad.json() == {"code": 40100001, "message": "invalid username or password"}

    token = api.register("proxy-user")
    auth = {"authorization": f"Bearer {token}"}
    order = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit",
             "time_in_force": "gtc", "limit_price": "1.00"}  # fmt: skip
    placed = httpx.post(web.url + "/api/orders", json=order, headers=auth)
    assert placed.status_code == 201, placed.text
    listed = httpx.get(web.url + "/api/orders", params={"status": "open"}, headers=auth)
    assert [o["id"] for o in listed.json()] == [placed.json()["id"]]
    gone = httpx.delete(web.url + f"/api/orders/{placed.json()['id']}", headers=auth)
    assert gone.status_code == 204
    invalid = httpx.post(web.url + "/api/orders", json={**order, "qty": "-1"}, headers=auth)
    assert invalid.status_code == 422
    assert "qty" in invalid.json()["message"]


def test_request_body_over_the_limit_is_refused_before_the_api(
    stack: tuple[LiveServer, WebFront],
) -> None:
    _, web = stack
    started = time.monotonic()
    big = httpx.post(
        web.url + "/api/auth/login",
        content=b"x" * (2 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413
    assert big.json() == {"code": 41300000, "message": "request body too large"}
    assert time.monotonic() - started < scaled(5)


def _negotiate(web: WebFront, hub: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{web.url}/hubs/{hub}/negotiate?negotiateVersion=1", headers=headers)


async def _handshake(ws: object) -> None:
    from websockets.asyncio.client import ClientConnection

    assert isinstance(ws, ClientConnection)
    await ws.send('{"protocol":"json","version":1}' + RS)
    assert await asyncio.wait_for(ws.recv(), scaled(5)) == "{}" + RS


async def _records(ws: object, timeout: float = 10) -> list[dict[str, object]]:
    from websockets.asyncio.client import ClientConnection

    assert isinstance(ws, ClientConnection)
    text = await asyncio.wait_for(ws.recv(), scaled(timeout))
    assert isinstance(text, str)
    return [json.loads(r) for r in text.split(RS)[:-1]]


async def _drain(ws: object) -> tuple[list[dict[str, object]], ConnectionClosed]:
    """Read until the connection closes; what arrived and how it closed."""
    got: list[dict[str, object]] = []
    while True:
        try:
            got += await _records(ws)
        except ConnectionClosed as closed:
            return got, closed


async def test_hub_websocket_is_relayed_both_ways(stack: tuple[LiveServer, WebFront]) -> None:
    _, web = stack
    negotiated = _negotiate(web, "market-data")
    assert negotiated.status_code == 200
    conn_token = negotiated.json()["connectionToken"]
    async with connect(ws_url(web, f"/hubs/market-data?id={conn_token}")) as ws:
        await _handshake(ws)
        call = {"type": 1, "invocationId": "1", "target": "SubscribeToSymbols",
                "arguments": [["AAPL"]]}  # fmt: skip
        await ws.send(json.dumps(call) + RS)
        seen: list[dict[str, object]] = []
        while not any(r.get("target") == "ReceiveMarketData" for r in seen):
            seen += await _records(ws)
        assert {"type": 3, "invocationId": "1", "result": ["AAPL"]} in seen
        tick = next(r for r in seen if r.get("target") == "ReceiveMarketData")
        args = tick["arguments"]
        assert isinstance(args, list)
        assert args[0]["symbol"] == "AAPL"


def _hub_connections(api: LiveServer) -> float:
    text = httpx.get(api.url + "/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("mytrader_hub_connections{")
    )


async def test_browser_leaving_releases_the_api_connection(
    stack: tuple[LiveServer, WebFront],
) -> None:
    """A relay must not outlive its browser: closing (or dropping) the client side closes the
    API side, so proxies never pile up idle hub connections."""
    api, web = stack
    baseline = _hub_connections(api)
    ws = await connect(ws_url(web, "/hubs/market-data"))
    await _handshake(ws)
    dropped = await connect(ws_url(web, "/hubs/market-data"))
    await _handshake(dropped)
    assert _hub_connections(api) == baseline + 2
    await ws.close()
    dropped.transport.abort()  # no close frame at all: the TCP connection just goes
    deadline = time.monotonic() + scaled(10)
    while _hub_connections(api) != baseline:
        assert time.monotonic() < deadline, _hub_connections(api)
        await asyncio.sleep(0.05)


async def test_authenticated_hub_with_access_token_query(
    stack: tuple[LiveServer, WebFront],
) -> None:
    """The browser's way: no headers on a WebSocket, so the token rides in the query."""
    api, web = stack
    token = api.register("hub-user")
    assert _negotiate(web, "portfolio").status_code == 401
    negotiated = _negotiate(web, "portfolio", token)
    assert negotiated.status_code == 200
    conn_token = negotiated.json()["connectionToken"]
    url = ws_url(web, f"/hubs/portfolio?id={conn_token}&access_token={token}")
    async with connect(url) as ws:
        await _handshake(ws)
        await ws.send(json.dumps({"type": 1, "invocationId": "7", "target": "GetPortfolio",
                                  "arguments": []}) + RS)  # fmt: skip
        (reply,) = await _records(ws)
        assert reply["invocationId"] == "7"
        result = reply["result"]
        assert isinstance(result, dict)
        assert result["account"]["cash"] == "100000.00"
    assert "access_token=" + token not in web.log()


async def test_api_refusals_of_an_upgrade_keep_their_status(
    stack: tuple[LiveServer, WebFront],
) -> None:
    _, web = stack
    with pytest.raises(InvalidStatus) as unknown:
        await connect(ws_url(web, "/hubs/market-data?id=no-such-connection"))
    assert unknown.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as anonymous:
        await connect(ws_url(web, "/hubs/trading"))
    assert anonymous.value.response.status_code == 401


def test_backend_down_is_a_fast_502(tmp_path: Path) -> None:
    web = start_web(tmp_path, f"http://127.0.0.1:{free_port()}")
    try:
        started = time.monotonic()
        down = httpx.get(web.url + "/api/symbols", timeout=10)
        assert down.status_code == 502
        assert down.json() == {"code": 50200000, "message": "the API is unreachable"}
        assert time.monotonic() - started < scaled(2)
        assert httpx.get(web.url + "/").status_code == 200  # the app itself still loads

        async def upgrade() -> int:
            with pytest.raises(InvalidStatus) as refused:
                await connect(ws_url(web, "/hubs/market-data"), open_timeout=scaled(5))
            return refused.value.response.status_code

        assert asyncio.run(upgrade()) == 502
    finally:
        web.stop()


def test_backend_that_never_answers_is_a_bounded_504(tmp_path: Path) -> None:
    """A backend that accepts connections but never replies (a hung process) costs 1 s."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)  # the kernel completes connections; nobody ever reads them
        port = hole.getsockname()[1]
        web = start_web(tmp_path, f"http://127.0.0.1:{port}", 0, "--backend-timeout", "1")
        try:
            started = time.monotonic()
            hung = httpx.get(web.url + "/api/symbols", timeout=10)
            assert hung.status_code == 504
            assert hung.json()["message"] == "the API did not answer in time"
            assert time.monotonic() - started < scaled(4)
        finally:
            web.stop()


async def test_api_shutdown_reaches_the_browser_as_close_1001(tmp_path: Path) -> None:
    api = start_server(tmp_path, server_env(tmp_path / "data"))
    web = start_web(tmp_path, api.url)
    try:
        async with connect(ws_url(web, "/hubs/market-data")) as ws:
            await _handshake(ws)
            api.process.send_signal(signal.SIGTERM)
            got, closed = await _drain(ws)
            assert got[-1]["type"] == 7
            assert closed.rcvd is not None
            assert closed.rcvd.code == 1001
    finally:
        web.stop()
        api.stop()


def _login_status(web: WebFront, source: str, username: str, spoof: str | None = None) -> int:
    """A login with a wrong password from ``source`` (a loopback address of its own)."""
    headers = {"x-forwarded-for": spoof} if spoof else {}
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        answer = client.post(
            web.url + "/api/auth/login",
            json={"username": username, "password": "wrong-password"},
            headers=headers,
        )
    return answer.status_code


@pytest.mark.parametrize("trusted", [True, False], ids=["proxy-trusted", "proxy-not-trusted"])
def test_client_address_reaches_the_rate_limiter_only_from_a_trusted_proxy(
    tmp_path: Path, trusted: bool
) -> None:
    """Login is limited per client address (2/min here). Two clients, 127.0.0.2 and .3, share
    the proxy: when the API trusts the proxy (MYTRADER_FORWARDED_ALLOW_IPS) it limits each on
    its own; when it does not, it sees only the proxy's address and one client's failures lock
    the other out too. A forged X-Forwarded-For from the client changes nothing."""
    extra = {"MYTRADER_LOGIN_RATE_PER_MINUTE": "2"}
    if trusted:
        extra["MYTRADER_FORWARDED_ALLOW_IPS"] = "127.0.0.1"
    api = start_server(tmp_path, server_env(tmp_path / "data", **extra))
    web = start_web(tmp_path, api.url)
    try:
        first = [
            _login_status(web, "127.0.0.2", f"user-a{i}", spoof=f"10.9.9.{i}") for i in range(3)
        ]
        assert first == [401, 401, 429]
        other = _login_status(web, "127.0.0.3", "user-b")
        assert other == (401 if trusted else 429)
    finally:
        web.stop()
        api.stop()


def test_the_vendored_signalr_client_is_the_pinned_release_with_its_licence() -> None:
    """@microsoft/signalr's browser bundle, byte for byte as VENDORED.json records it (version,
    sha256), with its licence and notices beside it; scripts/vendor-signalr updates all three."""
    import hashlib
    import json

    from mytrader_server.web import STATIC_DIR

    folder = STATIC_DIR / "vendor" / "microsoft-signalr"
    record = json.loads((folder / "VENDORED.json").read_text())
    bundle = (folder / record["file"]).read_bytes()
    assert record["package"] == "@microsoft/signalr"
    assert hashlib.sha256(bundle).hexdigest() == record["sha256"]
    assert b"t.signalR=e()" in bundle  # the UMD build: a global for the app's modules
    assert "MIT License" in (folder / "LICENSE.txt").read_text()
    assert "License notice for" in (folder / "third-party-notices.txt").read_text()
    node_pin = json.loads((STATIC_DIR.parents[2] / "tests/hubs/node/package.json").read_text())[
        "dependencies"
    ]["@microsoft/signalr"]
    assert record["version"] == node_pin  # the app runs the client the hub tests drive
