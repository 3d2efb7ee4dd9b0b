"""Hubs in process (starlette TestClient): negotiate, connect, auth, methods, isolation, timers."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from mytrader_server.app import create_app
from mytrader_server.auth.tokens import Principal
from mytrader_server.settings import Settings
from tests.hubs.inproc import RS, Hub, connect
from tests.server.helpers import login
from tests.support.live import scaled


def app_client(settings_for: Callable[..., Settings], **overrides: object) -> Iterator[TestClient]:
    """An app with ``overrides`` on the test's back end (``settings_for`` is the fixture)."""
    with TestClient(create_app(settings_for(**overrides))) as c:
        yield c


@pytest.fixture
def fast_client(settings_for: Callable[..., Settings]) -> Iterator[TestClient]:
    """Short keep-alive, client and handshake timeouts; small per-user cap."""
    yield from app_client(
        settings_for,
        hub_keepalive_s=0.2,
        hub_client_timeout_s=0.8,
        hub_handshake_timeout_s=0.4,
        hub_max_connections_per_user=2,
    )


# ---- negotiate ---------------------------------------------------------------------------


def test_negotiate_v1_has_token_and_text_first(client: TestClient) -> None:
    body = client.post("/hubs/market-data/negotiate?negotiateVersion=1").json()
    assert body["negotiateVersion"] == 1
    assert body["connectionToken"] != body["connectionId"]
    assert body["availableTransports"] == [
        {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}
    ]
    assert "useStatefulReconnect" not in body


@pytest.mark.parametrize("query", ["", "?negotiateVersion=0", "?negotiateVersion=x"])
def test_negotiate_v0_has_no_token(client: TestClient, query: str) -> None:
    body = client.post(f"/hubs/market-data/negotiate{query}").json()
    assert body["negotiateVersion"] == 0
    assert "connectionToken" not in body
    with client.websocket_connect(f"/hubs/market-data?id={body['connectionId']}") as ws:
        Hub(ws).handshake(version=0)  # signalrcore sends version 0


def test_negotiate_higher_version_answers_1(client: TestClient) -> None:
    assert (
        client.post("/hubs/market-data/negotiate?negotiateVersion=5").json()["negotiateVersion"]
        == 1
    )


def test_unknown_hub_is_404(client: TestClient) -> None:
    assert client.post("/hubs/nope/negotiate").status_code == 404
    with pytest.raises(WebSocketDenialResponse) as denied:
        client.websocket_connect("/hubs/nope").__enter__()
    assert denied.value.status_code == 404


# ---- connect -------------------------------------------------------------------------------


def test_connect_by_token_by_connection_id_and_skip_negotiation(client: TestClient) -> None:
    body = client.post("/hubs/market-data/negotiate?negotiateVersion=1").json()
    for url in (f"/hubs/market-data?id={body['connectionToken']}", "/hubs/market-data"):
        with client.websocket_connect(url) as ws:
            hub = Hub(ws)
            hub.handshake()
            assert hub.invoke("SubscribeToSymbols", ["AAPL"])["result"] == ["AAPL"]
    # a v1 id, once its socket closed, is gone
    with pytest.raises(WebSocketDenialResponse) as denied:
        client.websocket_connect(f"/hubs/market-data?id={body['connectionToken']}").__enter__()
    assert denied.value.status_code == 404
    body = client.post("/hubs/market-data/negotiate?negotiateVersion=1").json()
    with client.websocket_connect(f"/hubs/market-data?id={body['connectionId']}") as ws:
        Hub(ws).handshake()


def test_unknown_id_404_and_second_socket_409(client: TestClient) -> None:
    with pytest.raises(WebSocketDenialResponse) as denied:
        client.websocket_connect("/hubs/market-data?id=not-a-known-id").__enter__()
    assert denied.value.status_code == 404
    token = client.post("/hubs/market-data/negotiate?negotiateVersion=1").json()["connectionToken"]
    with client.websocket_connect(f"/hubs/market-data?id={token}") as ws:
        Hub(ws).handshake()
        with pytest.raises(WebSocketDenialResponse) as denied:
            client.websocket_connect(f"/hubs/market-data?id={token}").__enter__()
        assert denied.value.status_code == 409
    # an id negotiated for one hub cannot open another: 404, the id is unknown on that hub.
    # (Were the hub not compared, the anonymous id would reach the auth check and get 401,
    # and the user's own id below would open the portfolio hub.)
    token = client.post("/hubs/market-data/negotiate?negotiateVersion=1").json()["connectionToken"]
    with pytest.raises(WebSocketDenialResponse) as denied:
        client.websocket_connect(f"/hubs/portfolio?id={token}").__enter__()
    assert denied.value.status_code == 404
    alice = login(client, "alice")
    token = client.post("/hubs/market-data/negotiate?negotiateVersion=1", headers=alice).json()[
        "connectionToken"
    ]
    with pytest.raises(WebSocketDenialResponse) as denied:
        client.websocket_connect(f"/hubs/portfolio?id={token}", headers=alice).__enter__()
    assert denied.value.status_code == 404


# ---- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("hub", ["trading", "portfolio"])
def test_authenticated_hubs_refuse_without_token(client: TestClient, hub: str) -> None:
    r = client.post(f"/hubs/{hub}/negotiate?negotiateVersion=1")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.post(
        f"/hubs/{hub}/negotiate?negotiateVersion=1", headers={"authorization": "Bearer junk"}
    )
    assert r.status_code == 401
    for url in (f"/hubs/{hub}", f"/hubs/{hub}?access_token=junk"):
        with pytest.raises(WebSocketDenialResponse) as denied:
            client.websocket_connect(url).__enter__()
        assert denied.value.status_code == 401


@pytest.mark.parametrize("hub", ["trading", "portfolio"])
def test_auth_by_header_and_by_access_token_query(client: TestClient, hub: str) -> None:
    headers = login(client, "alice")
    token = headers["authorization"].removeprefix("Bearer ")
    _h, cm = connect(client, hub, headers=headers)
    cm.__exit__(None, None, None)
    _h, cm = connect(client, hub, query=f"&access_token={token}")
    cm.__exit__(None, None, None)
    # negotiate with credentials, WebSocket without: the connection keeps the negotiated user
    r = client.post(f"/hubs/{hub}/negotiate", headers=headers)
    with client.websocket_connect(f"/hubs/{hub}?id={r.json()['connectionId']}") as ws:
        Hub(ws).handshake()
    # skipNegotiation with access_token only (browsers cannot set headers)
    with client.websocket_connect(f"/hubs/{hub}?access_token={token}") as ws:
        Hub(ws).handshake()


def test_connection_negotiated_by_one_user_cannot_be_claimed_by_another(
    client: TestClient,
) -> None:
    alice, bob = login(client, "alice"), login(client, "bob")
    r = client.post("/hubs/trading/negotiate?negotiateVersion=1", headers=alice)
    with pytest.raises(WebSocketDenialResponse) as denied:
        client.websocket_connect(
            f"/hubs/trading?id={r.json()['connectionToken']}", headers=bob
        ).__enter__()
    assert denied.value.status_code == 403


def test_market_data_is_anonymous_and_ignores_a_bad_token(client: TestClient) -> None:
    assert client.post("/hubs/market-data/negotiate").status_code == 200
    r = client.post("/hubs/market-data/negotiate", headers={"authorization": "Bearer junk"})
    assert r.status_code == 200


def test_per_user_connection_cap(fast_client: TestClient) -> None:
    headers = login(fast_client, "capped")
    opened = [connect(fast_client, "trading", headers=headers) for _ in range(2)]
    assert fast_client.post("/hubs/portfolio/negotiate", headers=headers).status_code == 429
    with pytest.raises(WebSocketDenialResponse) as denied:
        fast_client.websocket_connect("/hubs/portfolio", headers=headers).__enter__()
    assert denied.value.status_code == 429
    for _, cm in opened:
        cm.__exit__(None, None, None)
    _h, cm = connect(fast_client, "portfolio", headers=headers)  # freed again
    cm.__exit__(None, None, None)


def test_process_wide_connection_cap_bounds_anonymous_connections(
    settings_for: Callable[..., Settings],
) -> None:
    for client in app_client(settings_for, hub_max_connections=2):
        opened = [connect(client, "market-data") for _ in range(2)]
        assert client.post("/hubs/market-data/negotiate").status_code == 503
        with pytest.raises(WebSocketDenialResponse) as denied:
            client.websocket_connect("/hubs/market-data").__enter__()
        assert denied.value.status_code == 503
        assert client.get("/health/live").status_code == 200  # REST is unaffected
        opened.pop()[1].__exit__(None, None, None)
        _h, cm = connect(client, "market-data")  # a freed slot is usable again
        cm.__exit__(None, None, None)
        for _, cm in opened:
            cm.__exit__(None, None, None)


def _token_expiring_in(client: TestClient, username: str, seconds: float) -> dict[str, str]:
    """A real token for ``username`` whose accepted life (exp plus leeway) ends in ``seconds`` to
    ``seconds + 1``."""
    from mytrader_server.auth.tokens import LEEWAY_S

    login(client, username)
    tokens = client.app.state.ctx.tokens  # type: ignore[attr-defined]
    me = client.get("/api/auth/me", headers=login(client, username)).json()
    principal = Principal(str(me["id"]), username, False)
    # issue() keeps whole seconds (int): round up so the life is never shorter than asked
    issued = math.ceil(time.time() - tokens.ttl_s - LEEWAY_S + seconds)
    return {"authorization": f"Bearer {tokens.issue(principal, now=issued)}"}


def test_trading_connection_is_closed_when_its_token_expires(
    settings_for: Callable[..., Settings],
) -> None:
    for client in app_client(settings_for, hub_keepalive_s=0.2):  # sweeps every 40 ms
        headers = _token_expiring_in(client, "expiring", 3)
        hub, cm = connect(client, "trading", headers=headers)
        try:
            assert hub.invoke("GetOpenOrders")["result"] == []  # usable until then
            # pings every 0.2 s keep this loop from blocking
            deadline = time.monotonic() + scaled(10)
            record = hub.next(pings=True)
            while record.get("type") == 6 and time.monotonic() < deadline:
                record = hub.next(pings=True)
            assert record == {
                "type": 7,
                "error": "Connection closed because the access token expired.",
                "allowReconnect": True,
            }
            with pytest.raises(WebSocketDisconnect) as closed:
                hub.ws.receive_text()
            assert closed.value.code == 1008
        finally:
            cm.__exit__(None, None, None)
        # reconnecting with the same token is refused; a fresh one is welcome
        assert client.post("/hubs/trading/negotiate", headers=headers).status_code == 401
        _h, cm = connect(client, "trading", headers=login(client, "expiring"))
        cm.__exit__(None, None, None)


def test_token_expiry_close_can_be_switched_off(settings_for: Callable[..., Settings]) -> None:
    for client in app_client(settings_for, hub_keepalive_s=0.2, hub_close_on_token_expiry=False):
        headers = _token_expiring_in(client, "lenient", 1)
        hub, cm = connect(client, "portfolio", headers=headers)
        try:
            time.sleep(2.5)  # past the token's life
            assert hub.invoke("GetPortfolio")["type"] == 3  # still open and answering
        finally:
            cm.__exit__(None, None, None)


# ---- handshake ------------------------------------------------------------------------------


def test_handshake_error_reply_then_close(client: TestClient) -> None:
    with client.websocket_connect("/hubs/market-data") as ws:
        ws.send_text('{"protocol":"messagepack","version":1}' + RS)
        assert ws.receive_text() == (
            '{"error":"Requested protocol \'messagepack\' is not available."}' + RS
        )
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()


def test_handshake_timeout(fast_client: TestClient) -> None:
    with fast_client.websocket_connect("/hubs/market-data") as ws:
        assert ws.receive_text() == '{"error":"Handshake was canceled."}' + RS
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()


def test_handshake_split_across_frames_with_trailing_message(client: TestClient) -> None:
    with client.websocket_connect("/hubs/market-data") as ws:
        ws.send_text('{"protocol":"js')
        ws.send_text('on","version":1}' + RS + '{"type":1,"invocationId":"9","tar')
        ws.send_text('get":"SubscribeToSymbols","arguments":[["MSFT"]]}' + RS)
        hub = Hub(ws)
        assert hub.next() == {}
        assert hub.next() == {"type": 3, "invocationId": "9", "result": ["MSFT"]}


# ---- methods -----------------------------------------------------------------------------


def test_invocations_results_and_dotnet_errors(client: TestClient) -> None:
    with client.websocket_connect("/hubs/market-data") as ws:
        hub = Hub(ws)
        hub.handshake()
        # case-insensitive method names; headers ignored
        hub.send(
            {
                "type": 1,
                "invocationId": "a",
                "target": "subscribetosymbols",
                "arguments": [["aapl", "BTC/USD"]],
                "headers": {"Authorization": "Bearer secret"},
            }
        )
        assert hub.next() == {"type": 3, "invocationId": "a", "result": ["AAPL", "BTCUSD"]}
        snapshot = hub.next()
        assert snapshot["target"] == "ReceiveMarketData"
        assert set(snapshot["arguments"][0]) >= {
            "symbol",
            "price",
            "bid",
            "ask",
            "volume",
            "timestamp",
        }
        assert hub.invoke("Nope", invocation_id="b") == {
            "type": 3,
            "invocationId": "b",
            "error": "Unknown hub method 'Nope'",
        }
        assert hub.invoke("SubscribeToSymbols", ["ZZZZ"], invocation_id="c")["error"] == (
            "An unexpected error occurred invoking 'SubscribeToSymbols' on the server. "
            "HubException: Unknown symbol 'ZZZZ'."
        )
        assert hub.invoke("SubscribeToSymbols", invocation_id="d")["error"] == (
            "Failed to invoke 'SubscribeToSymbols' due to an error on the server."
        )
        assert hub.invoke("SubscribeToSymbols", [1], invocation_id="e")["error"] == (
            "Failed to invoke 'SubscribeToSymbols' due to an error on the server."
        )
        assert hub.invoke("StreamPrices", "AAPL", invocation_id="f")["error"] == (
            "The client attempted to invoke the streaming 'StreamPrices' method with a "
            "non-streaming invocation."
        )
        hub.send(
            {"type": 4, "invocationId": "g", "target": "SubscribeToSymbols", "arguments": [[]]}
        )
        while (record := hub.next()).get("invocationId") != "g":
            pass
        assert record["error"] == (
            "The client attempted to invoke the non-streaming 'SubscribeToSymbols' method "
            "with a streaming invocation."
        )
        # no invocationId: no reply, not even for an error; the next reply is for "h"
        hub.send({"type": 1, "target": "Nope", "arguments": []})
        hub.send({"type": 1, "target": "UnsubscribeFromSymbols", "arguments": [["AAPL"]]})
        reply = hub.invoke("UnsubscribeFromSymbols", ["BTCUSD"], invocation_id="h")
        assert reply == {"type": 3, "invocationId": "h", "result": []}
        assert all(r.get("type") != 3 for r in hub.pending)


def test_stream_with_count_completes(client: TestClient) -> None:
    with client.websocket_connect("/hubs/market-data") as ws:
        hub = Hub(ws)
        hub.handshake()
        hub.send(
            {
                "type": 4,
                "invocationId": "s",
                "target": "streamprices",
                "arguments": ["MSFT", 3],
                "streamIds": [],
            }
        )
        items = [hub.next() for _ in range(3)]
        assert [i["type"] for i in items] == [2, 2, 2]
        assert {i["item"]["symbol"] for i in items} == {"MSFT"}
        assert hub.next() == {"type": 3, "invocationId": "s"}


def test_stream_cancel_completes_and_stops(client: TestClient) -> None:
    with client.websocket_connect("/hubs/market-data") as ws:
        hub = Hub(ws)
        hub.handshake()
        hub.send({"type": 4, "invocationId": "s", "target": "StreamPrices", "arguments": ["AAPL"]})
        assert hub.next()["type"] == 2
        assert hub.next()["type"] == 2  # a live tick after the snapshot
        hub.send({"type": 5, "invocationId": "s"})
        while (record := hub.next())["type"] == 2:
            pass
        assert record == {"type": 3, "invocationId": "s"}
        # nothing more from the stream: the next record is this invocation's completion
        assert hub.invoke("UnsubscribeFromSymbols", [], invocation_id="z")["result"] == []
        assert not [r for r in hub.pending if r.get("invocationId") == "s"]


def test_stream_unknown_symbol_is_a_completion_error(client: TestClient) -> None:
    with client.websocket_connect("/hubs/market-data") as ws:
        hub = Hub(ws)
        hub.handshake()
        hub.send({"type": 4, "invocationId": "s", "target": "StreamPrices", "arguments": ["NOPE"]})
        assert hub.next() == {
            "type": 3,
            "invocationId": "s",
            "error": "An unexpected error occurred invoking 'StreamPrices' on the server. "
            "HubException: Unknown symbol 'NOPE'.",
        }


def test_protocol_error_closes_with_close_message(client: TestClient) -> None:
    with client.websocket_connect("/hubs/market-data") as ws:
        hub = Hub(ws)
        hub.handshake()
        ws.send_text('{"type":1,"arguments":[]}' + RS)
        assert hub.next() == {"type": 7, "error": "Connection closed with an error."}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1002


def test_oversize_record_across_frames_closes_1009(settings_for: Callable[..., Settings]) -> None:
    for c in app_client(settings_for, hub_max_message_bytes=1024):
        with c.websocket_connect("/hubs/market-data") as ws:
            hub = Hub(ws)
            hub.handshake()
            ws.send_text('{"type":1,"target":"' + "x" * 700)
            ws.send_text("y" * 700)
            assert hub.next()["type"] == 7
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == 1009


def test_close_message_from_client_closes_normally(client: TestClient) -> None:
    with client.websocket_connect("/hubs/market-data") as ws:
        hub = Hub(ws)
        hub.handshake()
        hub.send({"type": 7})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1000


# ---- keep-alive ----------------------------------------------------------------------------


def test_keepalive_ping_then_client_timeout(fast_client: TestClient) -> None:
    with fast_client.websocket_connect("/hubs/market-data") as ws:
        hub = Hub(ws)
        hub.handshake()
        assert hub.next(pings=True) == {"type": 6}  # nothing else is sent on an idle socket
        while (record := hub.next(pings=True)) == {"type": 6}:
            pass
        assert record == {
            "type": 7,
            "error": "Connection closed with an error.",
            "allowReconnect": True,
        }
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()


def test_client_pings_keep_the_connection(fast_client: TestClient) -> None:
    with fast_client.websocket_connect("/hubs/market-data") as ws:
        hub = Hub(ws)
        hub.handshake()
        pings = 0
        while pings < 8:  # 8 x 0.2 s > the 0.8 s client timeout
            assert hub.next(pings=True) == {"type": 6}
            pings += 1
            hub.send({"type": 6})
        assert hub.invoke("SubscribeToSymbols", ["AAPL"])["result"] == ["AAPL"]


# ---- user isolation (S1) -------------------------------------------------------------------


def test_user_events_reach_only_their_owner(client: TestClient) -> None:
    alice, bob = login(client, "alice"), login(client, "bob")
    a_trading, a_cm1 = connect(client, "trading", headers=alice)
    a_portfolio, a_cm2 = connect(client, "portfolio", headers=alice)
    b_trading, b_cm1 = connect(client, "trading", headers=bob)
    b_portfolio, b_cm2 = connect(client, "portfolio", headers=bob)
    r = client.post(
        "/api/orders", headers=alice, json={"symbol": "AAPL", "qty": "1", "side": "buy"}
    )
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    events = [a_trading.next(), a_trading.next()]
    assert [e["target"] for e in events] == ["OrderUpdate", "OrderUpdate"]
    assert [e["arguments"][0]["event"] for e in events] == ["new", "fill"]
    assert {e["arguments"][0]["order"]["id"] for e in events} == {order_id}
    update = a_portfolio.next()
    assert update["target"] == "PortfolioUpdate"
    assert set(update["arguments"][0]) == {"account", "positions"}
    assert [p["symbol"] for p in update["arguments"][0]["positions"]] == ["AAPL"]
    # fan-out is synchronous: had Bob's connections been sent anything, it would be queued first
    assert b_trading.invoke("GetOpenOrders") == {"type": 3, "invocationId": "1", "result": []}
    reply = b_portfolio.invoke("GetPortfolio")
    assert reply["result"]["positions"] == []
    assert not b_trading.pending
    assert not b_portfolio.pending
    # and OrderUpdate never goes to the portfolio hub, nor PortfolioUpdate to trading
    assert a_trading.invoke("GetOpenOrders", invocation_id="x")["result"] == []
    assert not a_trading.pending
    for cm in (a_cm1, a_cm2, b_cm1, b_cm2):
        cm.__exit__(None, None, None)


# ---- health, faults, metrics ----------------------------------------------------------------


def test_health_probe_counts_connections_and_hubs_down_fault(client: TestClient) -> None:
    def hubs_check() -> dict[str, object]:
        body = client.get("/health").json()
        entry: dict[str, object] = body["checks"]["hubs:connections"][0]
        return entry

    with client.websocket_connect("/hubs/market-data") as ws:
        Hub(ws).handshake()
        assert hubs_check()["observedValue"] == 1
        assert hubs_check()["status"] == "pass"
        metrics = client.get("/metrics").text
        assert 'mytrader_hub_connections{hub="market-data"} 1.0' in metrics
    admin = _admin(client)
    assert (
        client.put("/api/admin/faults", headers=admin, json={"hubs_down": True}).status_code == 200
    )
    assert client.post("/hubs/market-data/negotiate").status_code == 503
    with pytest.raises(WebSocketDenialResponse) as denied:
        client.websocket_connect("/hubs/market-data").__enter__()
    assert denied.value.status_code == 503
    assert hubs_check()["status"] == "fail"
    assert client.get("/health").status_code == 503
    assert client.delete("/api/admin/faults", headers=admin).status_code == 204
    assert hubs_check()["status"] == "pass"


def _admin(client: TestClient) -> dict[str, str]:
    import asyncio

    from mytrader_server.cli import _add_user

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    asyncio.run(_add_user(ctx.settings, "hub-admin", "admin-password-123", True))
    r = client.post(
        "/api/auth/login", json={"username": "hub-admin", "password": "admin-password-123"}
    )
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['accessToken']}"}


def test_messages_metrics(client: TestClient) -> None:
    with client.websocket_connect("/hubs/market-data") as ws:
        hub = Hub(ws)
        hub.handshake()
        hub.invoke("SubscribeToSymbols", ["AAPL"])
        hub.next()
    text = client.get("/metrics").text
    lines = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("mytrader_hub_messages_total{")
    }
    # in: exactly the one invocation (the handshake is not a hub message); out: at least the
    # handshake reply, the completion and the snapshot the client read (live ticks and pings
    # may follow before the socket closes); nothing was dropped
    assert lines['mytrader_hub_messages_total{direction="in",hub="market-data"}'] == 1
    assert lines['mytrader_hub_messages_total{direction="out",hub="market-data"}'] >= 3
    assert 'mytrader_hub_messages_total{direction="dropped",hub="market-data"}' not in lines


def test_streams_per_connection_are_capped(client: TestClient) -> None:
    with client.websocket_connect("/hubs/market-data") as ws:
        hub = Hub(ws)
        hub.handshake()
        for i in range(51):
            hub.send(
                {"type": 4, "invocationId": f"s{i}", "target": "StreamPrices", "arguments": ["SPY"]}
            )
        while (record := hub.next()).get("invocationId") != "s50" or record["type"] != 3:
            pass
        assert record["error"] == (
            "An unexpected error occurred invoking 'StreamPrices' on the server. "
            "HubException: At most 50 streams per connection."
        )


def test_hubs_down_fault_closes_open_connections(client: TestClient) -> None:
    admin = _admin(client)
    with client.websocket_connect("/hubs/market-data") as ws:
        hub = Hub(ws)
        hub.handshake()
        r = client.put("/api/admin/faults", headers=admin, json={"hubs_down": True})
        assert r.status_code == 200
        while (record := hub.next(pings=True))["type"] != 7:
            pass
        assert record == {"type": 7, "error": "Hubs are unavailable.", "allowReconnect": True}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1013
