"""Hub behaviour on a real server process: shutdown, slow consumers, idle sockets, limits, logs.

A plain ``websockets`` client speaks the SignalR JSON protocol by hand here, so each test sees
the exact frames and close codes.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.hubs.wsclient import RS, drain, open_hub, records, ws_url
from tests.support.live import LiveServer, scaled, server_env, start_server

pytestmark = pytest.mark.slow


def metric(server: LiveServer, name: str) -> float:
    status, _ = server.request("GET", "/health/live")
    assert status == 200
    import urllib.request

    with urllib.request.urlopen(server.url + "/metrics", timeout=scaled(5)) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def hub_connections(server: LiveServer) -> int:
    status, body = server.request("GET", "/health")
    assert status == 200, body
    assert isinstance(body, dict)
    return int(body["checks"]["hubs:connections"][0]["observedValue"])


async def until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_shutdown_sends_close_message_then_1001(
    tmp_path: Path, server_db_env: dict[str, str]
) -> None:
    server = start_server(tmp_path, server_env(tmp_path / "data", **server_db_env))
    try:
        ws = await open_hub(server)
        server.process.send_signal(signal.SIGTERM)
        got, closed = await drain(ws)
        assert got[-1] == {"type": 7, "error": "Server is shutting down.", "allowReconnect": True}
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1001
    finally:
        # uvicorn (>= 0.29; we require >= 0.30) re-raises the SIGTERM it caught once the
        # shutdown is done, so a clean exit is -SIGTERM; a process killed outright by the signal
        # exits the same way, so the log's last lifespan line is what shows it was clean
        assert server.stop() == -signal.SIGTERM, server.log()[-2000:]
        assert "Application shutdown complete." in server.log()


async def test_slow_consumer_is_closed_and_never_delays_others(
    tmp_path: Path, server_db_env: dict[str, str]
) -> None:
    """S17: a subscriber that stops reading while ticks flow at full rate is dropped alone."""
    env = server_env(
        tmp_path / "data",
        **server_db_env,
        MYTRADER_HUB_SEND_QUEUE="8",
        MYTRADER_FEED_INTERVAL_S="0.02",
    )
    server = start_server(tmp_path, env)
    try:
        everything = [
            "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "BTCUSD", "ETHUSD",
        ]  # fmt: skip
        host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, port))
        # max_queue=1: the websockets client stops reading from the socket once one message
        # waits unread, and this test never reads it: the server's writes back up
        slow = await open_hub(server, sock=sock, max_queue=1)
        await slow.send(
            json.dumps({"type": 1, "target": "SubscribeToSymbols", "arguments": [everything]}) + RS
        )
        fast = await open_hub(server)
        await fast.send(
            json.dumps({"type": 1, "target": "SubscribeToSymbols", "arguments": [["AAPL"]]}) + RS
        )
        gaps: list[float] = []
        last = time.monotonic()
        deadline = time.monotonic() + scaled(20)
        while metric(server, 'mytrader_hub_messages_total{direction="dropped"') == 0:
            assert time.monotonic() < deadline, "the slow consumer was never dropped"
            for _ in range(20):
                await records(fast)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
        # the fast client kept receiving at the feed's pace while the other one backed up
        for _ in range(50):
            await records(fast)
            now = time.monotonic()
            gaps.append(now - last)
            last = now
        assert max(gaps) < scaled(1.0), max(gaps)
        await until(lambda: metric(server, "mytrader_hub_connections{") == 1)
        status, _ = server.request("GET", "/health")
        assert status == 200
        await fast.close()
        slow.transport.abort()
    finally:
        server.stop()


async def test_many_idle_sockets_keep_health_and_rest_available(hub_server: LiveServer) -> None:
    """S16: hundreds of idle WebSockets (handshaken or not) must not starve HTTP."""
    token = hub_server.register("idler")
    baseline = hub_connections(hub_server)
    idle = [await open_hub(hub_server) for _ in range(150)]
    silent = [await connect(ws_url(hub_server, "/hubs/market-data")) for _ in range(50)]
    try:
        # every socket counts, handshaken or not (the handshake deadline is 15 s away)
        assert hub_connections(hub_server) == baseline + 200
        started = time.monotonic()
        for _ in range(5):
            status, body = await asyncio.to_thread(hub_server.request, "GET", "/health")
            assert status == 200, body
            status, account = await asyncio.to_thread(
                hub_server.request, "GET", "/api/account", None, token
            )
            assert status == 200, account
        elapsed = time.monotonic() - started
        assert elapsed < scaled(10), f"10 requests took {elapsed:.1f} s beside 200 idle sockets"
        assert isinstance(body, dict)
        assert body["checks"]["hubs:connections"][0]["status"] == "pass"
    finally:
        for ws in idle + silent:
            await ws.close()


async def test_per_user_cap_on_the_live_server(
    tmp_path: Path, server_db_env: dict[str, str]
) -> None:
    env = server_env(tmp_path / "data", **server_db_env, MYTRADER_HUB_MAX_CONNECTIONS_PER_USER="3")
    server = start_server(tmp_path, env)
    try:
        token = server.register("greedy")
        auth = {"Authorization": f"Bearer {token}"}
        held = [await open_hub(server, "/hubs/trading", additional_headers=auth) for _ in range(3)]
        with pytest.raises(InvalidStatus) as refused:
            await connect(ws_url(server, "/hubs/portfolio"), additional_headers=auth)
        assert refused.value.response.status_code == 429
        # another user is not affected
        other = server.register("modest")
        ws = await open_hub(server, f"/hubs/portfolio?access_token={other}")
        await ws.close()
        for h in held:
            await h.close()
    finally:
        server.stop()


@pytest.mark.parametrize("shared", [False, True], ids=["alone", "redis"])
async def test_connection_caps_hold_under_a_burst_of_upgrades(
    tmp_path: Path, request: pytest.FixtureRequest, shared: bool, server_db_env: dict[str, str]
) -> None:
    """Forty upgrades at once against caps of 5 (process) and 3 (per user): the caps hold
    exactly; a slot is taken when the upgrade is admitted, not when it is accepted (with Redis
    the claim of a negotiated id awaits a round trip in between)."""
    extra = {}
    if shared:
        extra = {
            "MYTRADER_REDIS_URL": request.getfixturevalue("redis_url"),
            "MYTRADER_REDIS_PREFIX": f"mytrader-test-{tmp_path.name[-12:]}-{time.time_ns()}",
        }
    env = server_env(
        tmp_path / "data",
        **server_db_env,
        MYTRADER_HUB_MAX_CONNECTIONS="5",
        MYTRADER_HUB_MAX_CONNECTIONS_PER_USER="3",
        **extra,
    )
    server = start_server(tmp_path, env)
    try:
        token = server.register("burst")
        auth = {"Authorization": f"Bearer {token}"}

        async def attempt(path: str, headers: dict[str, str] | None) -> object:
            try:
                return await connect(ws_url(server, path), additional_headers=headers)
            except InvalidStatus as refused:
                return refused.response.status_code

        async def negotiated() -> str:  # the upgrade then claims the negotiated id (an await)
            status, body = await asyncio.to_thread(
                server.request, "POST", "/hubs/trading/negotiate?negotiateVersion=1", None, token
            )
            assert status == 200, body
            assert isinstance(body, dict)
            return f"/hubs/trading?id={body['connectionToken']}"

        paths = [*await asyncio.gather(*(negotiated() for _ in range(10))), *["/hubs/trading"] * 10]
        user = await asyncio.gather(*(attempt(path, auth) for path in paths))
        anonymous = await asyncio.gather(*(attempt("/hubs/market-data", None) for _ in range(20)))
        opened = [r for r in user + anonymous if not isinstance(r, int)]
        try:
            # the user's twenty come first: three open, the other seventeen meet the per-user
            # cap (429; the process has room for two more); then the anonymous twenty: two
            # open, eighteen meet the process cap (503)
            assert sorted(r for r in user if isinstance(r, int)) == [429] * 17
            assert sorted(r for r in anonymous if isinstance(r, int)) == [503] * 18
            assert len(opened) == 5
        finally:
            for ws in opened:
                await ws.close()  # type: ignore[attr-defined]
    finally:
        server.stop()


async def test_refusals_are_http_statuses_before_accept(hub_server: LiveServer) -> None:
    for path, status in [
        ("/hubs/market-data?id=unknown", 404),
        ("/hubs/trading", 401),
        ("/hubs/trading?access_token=junk", 401),
        ("/hubs/unknown", 404),
    ]:
        with pytest.raises(InvalidStatus) as refused:
            await connect(ws_url(hub_server, path))
        assert refused.value.response.status_code == status, path
    _, body = hub_server.request("POST", "/hubs/market-data/negotiate?negotiateVersion=1")
    assert isinstance(body, dict)
    ws = await open_hub(hub_server, f"/hubs/market-data?id={body['connectionToken']}")
    with pytest.raises(InvalidStatus) as refused:
        await connect(ws_url(hub_server, f"/hubs/market-data?id={body['connectionToken']}"))
    assert refused.value.response.status_code == 409
    await ws.close()


async def test_oversize_frame_closes_1009(hub_server: LiveServer) -> None:
    ws = await open_hub(hub_server, max_size=None)
    await ws.send('{"type":1,"target":"' + "x" * 40_000 + '","arguments":[]}' + RS)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), scaled(5))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_handshake_timeout_on_the_live_server(
    tmp_path: Path, server_db_env: dict[str, str]
) -> None:
    env = server_env(tmp_path / "data", **server_db_env, MYTRADER_HUB_HANDSHAKE_TIMEOUT_S="0.5")
    server = start_server(tmp_path, env)
    try:
        ws = await connect(ws_url(server, "/hubs/market-data"))
        assert await asyncio.wait_for(ws.recv(), scaled(5)) == (
            '{"error":"Handshake was canceled."}' + RS
        )
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), scaled(5))
    finally:
        server.stop()


async def test_tokens_and_message_headers_never_reach_the_log(hub_server: LiveServer) -> None:
    token = hub_server.register("logged")
    ws = await open_hub(hub_server, f"/hubs/trading?access_token={token}")
    secret = "header-secret-" + "z" * 20
    await ws.send(
        json.dumps(
            {
                "type": 1,
                "invocationId": "1",
                "target": "Missing",
                "arguments": [],
                "headers": {"Authorization": f"Bearer {secret}"},
            }
        )
        + RS
    )
    assert (await records(ws))[0]["error"] == "Unknown hub method 'Missing'"
    await ws.send('{"type":1,"arguments":[],"headers":{"x":"' + secret + '"}}' + RS)  # invalid
    got, _ = await drain(ws)
    assert got == [{"type": 7, "error": "Connection closed with an error."}]
    log = hub_server.log()
    assert "/hubs/trading" in log  # the server did log the request line...
    assert token not in log  # ...without the access_token
    assert secret not in log


async def test_ticks_take_the_direct_write_path_on_the_default_server(
    hub_server: LiveServer,
) -> None:
    """Each tick is framed once and written straight to idle subscribers' sockets. On the
    default server (httptools + uvloop) this path was silently off: uvloop's transports are not
    ``asyncio.Transport`` instances, and the check refused them, so every tick went through a
    writer task per connection (1.8x the reference's CPU per message instead of ~1.1x)."""
    before = metric(hub_server, 'mytrader_hub_direct_writes_total{hub="market-data"}')
    ws = await open_hub(hub_server, "/hubs/market-data")
    try:
        await ws.send(
            json.dumps({"type": 1, "target": "SubscribeToSymbols", "arguments": [["AAPL"]]}) + RS
        )
        got: list[dict[str, object]] = []
        while sum(r.get("target") == "ReceiveMarketData" for r in got) < 5:
            got += await records(ws)
    finally:
        await ws.close()
    after = metric(hub_server, 'mytrader_hub_direct_writes_total{hub="market-data"}')
    assert after - before >= 3, (before, after)
