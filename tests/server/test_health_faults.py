"""Health in health+json, metrics, and each injected fault turning health and routes."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from mytrader_server.app import create_app
from mytrader_server.settings import Settings
from tests.server.helpers import login, wait_for
from tests.support.live import scaled


def _admin(client: TestClient) -> dict[str, str]:
    from mytrader_server.trading.users import create_user

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    password_hash = client.portal.call(ctx.passwords.hash, "admin-password-1")  # type: ignore[union-attr]
    client.portal.call(  # type: ignore[union-attr]
        lambda: create_user(
            ctx.writer_sessions, "admin", password_hash, ctx.settings.starting_cash, True
        )
    )
    token = client.post(
        "/api/auth/login", json={"username": "admin", "password": "admin-password-1"}
    ).json()["accessToken"]
    return {"authorization": f"Bearer {token}"}


def test_live_is_trivial(client: TestClient) -> None:
    r = client.get("/health/live")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/health+json"
    assert r.json() == {"status": "pass"}


def test_live_answered_by_the_middleware_matches_the_route_and_is_counted(
    client: TestClient,
) -> None:
    """RequestMiddleware answers GET /health/live without routing: the same status, headers and
    body as the FastAPI route it stands in for, a request id, and the request in the metrics."""
    import asyncio

    from mytrader_server.api.health import live

    route = asyncio.run(live())
    counted = re.compile(
        r'^mytrader_http_requests_total\{method="GET",route="/health/live",status="200"\} (\S+)$',
        re.M,
    )

    def count() -> float:
        match = counted.search(client.get("/metrics").text)
        return float(match.group(1)) if match else 0.0

    before = count()
    r = client.get("/health/live", headers={"x-request-id": "probe-1"})
    assert r.status_code == route.status_code
    assert r.content == route.body
    for name, value in route.headers.items():
        assert r.headers[name] == value
    assert r.headers["x-request-id"] == "probe-1"
    assert client.get("/health/live").headers["x-request-id"] != "probe-1"
    assert count() == before + 2
    # not GET: routed as before (405 from FastAPI), not answered as if it were
    assert client.post("/health/live").status_code == 405


def test_ready_reports_each_component(client: TestClient) -> None:
    assert wait_for(lambda: client.get("/health/ready").json()["status"] == "pass")
    for path in ("/health", "/health/ready"):
        r = client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/health+json"
        assert "no-store" in r.headers["cache-control"]
        body = r.json()
        db = body["checks"]["database:responseTime"][0]
        assert db["componentType"] == "datastore"
        assert db["observedUnit"] == "ms"
        assert db["observedValue"] > 0
        assert db["status"] == "pass"
        assert "time" in db
        feed = body["checks"]["market-data:freshness"][0]
        assert feed["status"] == "pass"
        assert feed["observedUnit"] == "s"


def test_database_outage_fails_health_and_db_routes_but_not_market_data(client: TestClient) -> None:
    admin = _admin(client)
    user = login(client, "victim")
    r = client.put("/api/admin/faults", headers=admin, json={"database_down": True})
    assert r.status_code == 200
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "fail"
    assert health.json()["checks"]["database:responseTime"][0]["status"] == "fail"
    assert client.get("/api/account", headers=user).status_code == 503
    assert client.get("/api/market-data/quotes/AAPL").status_code == 200
    assert client.get("/health/live").status_code == 200
    assert client.delete("/api/admin/faults", headers=admin).status_code == 204
    assert client.get("/health").status_code == 200


def test_feed_stall_fails_freshness(settings_for: Callable[..., Settings]) -> None:
    s = settings_for(feed_stale_after_s=0.5)
    with TestClient(create_app(s)) as c:
        admin = _admin(c)
        assert wait_for(lambda: c.get("/health").status_code == 200)
        c.put("/api/admin/faults", headers=admin, json={"feed_stalled": True})
        assert wait_for(lambda: c.get("/health").status_code == 503)
        feed = c.get("/health").json()["checks"]["market-data:freshness"][0]
        assert feed["status"] == "fail"
        assert re.fullmatch(r"last tick \d+\.\d s ago \(limit 0\.5 s\)", feed["output"])
        c.delete("/api/admin/faults", headers=admin)
        assert wait_for(lambda: c.get("/health").status_code == 200)


def test_route_errors_and_latency_faults(client: TestClient) -> None:
    admin = _admin(client)
    client.put(
        "/api/admin/faults",
        headers=admin,
        json={"error_rate": {"/api/market-data/": 1.0}, "latency_ms": {"/api/symbols": 200}},
    )
    r = client.get("/api/market-data/volume-leaders")
    assert r.status_code == 500
    assert r.json()["message"] == "injected fault"
    import time

    started = time.perf_counter()
    assert client.get("/api/symbols").status_code == 200
    assert time.perf_counter() - started >= 0.2
    assert client.get("/health").status_code == 200  # health is never failed by route faults
    bad = client.put("/api/admin/faults", headers=admin, json={"error_rate": {"*": 2}})
    assert bad.status_code == 422
    unknown = client.put("/api/admin/faults", headers=admin, json={"explode": True})
    assert unknown.status_code == 422


def test_faults_need_an_admin(client: TestClient) -> None:
    user = login(client, "plain")
    assert client.put("/api/admin/faults", json={"database_down": True}).status_code == 401
    assert (
        client.put("/api/admin/faults", headers=user, json={"database_down": True}).status_code
        == 403
    )


def test_faults_are_off_unless_enabled(settings_for: Callable[..., Settings]) -> None:
    with TestClient(create_app(settings_for(faults_enabled=False))) as c:
        admin = _admin(c)
        r = c.put("/api/admin/faults", headers=admin, json={"database_down": True})
        assert r.status_code == 403
        assert c.get("/health").status_code == 200


def test_startup_fault_profile(settings_for: Callable[..., Settings]) -> None:
    s = settings_for(faults_enabled=False, fault_profile='{"database_down": true}')
    with TestClient(create_app(s)) as c:
        assert c.get("/health").status_code == 503


def test_metrics_expose_routes_latency_db_and_feed(client: TestClient) -> None:
    client.get("/api/symbols")
    client.get("/api/symbols/NOPE")
    client.get("/health")
    text = client.get("/metrics").text
    # the samples, not the names: a name alone is in the HELP line of any registered metric
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    route_404 = (
        'mytrader_http_requests_total{method="GET",route="/api/symbols/{symbol}",status="404"}'
    )
    assert float(samples[route_404]) == 1
    assert re.search(
        r'mytrader_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="/api/symbols"\}',
        text,
    )
    assert float(samples["mytrader_http_requests_in_flight"]) == 1  # this scrape
    assert float(samples['mytrader_db_query_duration_seconds_count{operation="ping"}']) == 1
    assert float(samples["process_resident_memory_bytes"]) > 0
    assert float(samples["process_cpu_seconds_total"]) > 0
    lag = re.search(r"^mytrader_feed_lag_seconds (\S+)$", text, re.M)
    assert lag is not None
    assert 0 <= float(lag.group(1)) < scaled(5)


def test_request_ids(client: TestClient) -> None:
    r = client.get("/api/symbols", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = client.get("/api/symbols", headers={"x-request-id": "bad id with spaces"})
    assert generated.headers["x-request-id"] != "bad id with spaces"
    assert len(generated.headers["x-request-id"]) == 32
    assert generated.headers["x-request-id"] != client.get("/health/live").headers["x-request-id"]


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/orders" in spec["paths"]
    assert "/api/market-data/volume-leaders" in spec["paths"]


def test_database_health_is_shared_for_half_a_second(client: TestClient) -> None:
    """A burst of health checks costs one database round trip; ``time`` says when it ran."""
    import time

    first = client.get("/health").json()["checks"]["database:responseTime"][0]
    second = client.get("/health").json()["checks"]["database:responseTime"][0]
    assert second["time"] == first["time"]
    time.sleep(0.6)
    third = client.get("/health").json()["checks"]["database:responseTime"][0]
    assert third["time"] > first["time"]
    assert third["status"] == "pass"
