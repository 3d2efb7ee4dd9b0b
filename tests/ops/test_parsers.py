"""Pure parsers: health formats, Prometheus text (C15), JSON asserts, SignalR, HTTP heads."""

from __future__ import annotations

import json

import pytest

from mytrader_ops import healthformat, jsonassert, promtext, signalr
from mytrader_ops.config import JsonAssertion
from mytrader_ops.probes.httpwire import WireError, parse_head

IETF = json.dumps(
    {
        "status": "pass",
        "checks": {
            "database:responseTime": [
                {
                    "componentType": "datastore",
                    "observedValue": 1.2,
                    "observedUnit": "ms",
                    "status": "pass",
                }
            ],
            "market-data:freshness": [{"status": "fail", "observedValue": 9, "observedUnit": "s"}],
        },
    }
)
ASPNET_UI = json.dumps(
    {
        "status": "Unhealthy",
        "totalDuration": "00:00:00.0123456",
        "entries": {
            "database": {
                "status": "Unhealthy",
                "duration": "00:00:00.01",
                "description": "refused",
            },
            "self": {"status": "Healthy"},
        },
    }
)
SPRING = json.dumps(
    {
        "status": "UP",
        "components": {
            "db": {"status": "UP"},
            "group": {"status": "UP", "components": {"inner": {"status": "DOWN"}}},
        },
    }
)


@pytest.mark.parametrize(
    ("code", "ctype", "body", "status", "fmt", "components"),
    [
        (
            200,
            "application/health+json",
            IETF,
            "pass",
            "ietf-health+json",
            {"database:responseTime": "pass", "market-data:freshness": "fail"},
        ),
        (503, "application/health+json", '{"status":"pass"}', "fail", "ietf-health+json", {}),
        (200, "text/plain", "Healthy", "pass", "aspnet-text", {}),
        (200, "text/plain", "Degraded", "warn", "aspnet-text", {}),
        (503, "text/plain", "Unhealthy", "fail", "aspnet-text", {}),
        (
            503,
            "application/json",
            ASPNET_UI,
            "fail",
            "aspnet-healthchecks-ui",
            {"database": "fail", "self": "pass"},
        ),
        (
            200,
            "application/vnd.spring-boot.actuator.v3+json",
            SPRING,
            "pass",
            "spring-actuator",
            {"db": "pass", "group": "pass", "group/inner": "fail"},
        ),
        (200, "text/plain", "ok", "pass", "kubernetes", {}),
        (
            200,
            "text/plain",
            "[+]ping ok\n[+]etcd ok\nreadyz check passed",
            "pass",
            "kubernetes",
            {"ping": "pass", "etcd": "pass"},
        ),
        (
            500,
            "text/plain",
            "[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed",
            "fail",
            "kubernetes",
            {"ping": "pass", "etcd": "fail"},
        ),
        (200, "application/json", '{"status":"UNKNOWN"}', "unknown", "json", {}),
        (200, "application/json", '{"status":', "unknown", "malformed-json", {}),
        (200, "application/json", '{"status":"error"}', "fail", "json", {}),  # 200 + error body
    ],
)
def test_health_formats(
    code: int, ctype: str, body: str, status: str, fmt: str, components: dict[str, str]
) -> None:
    report = healthformat.classify(code, ctype, body.encode())
    assert report.status == status
    assert report.format == fmt
    assert {c.name: c.status for c in report.components} == components


def test_prometheus_good_and_malformed() -> None:
    good = (
        "# HELP a_total x\n# TYPE a_total counter\n"
        'a_total{route="/hubs/{hub}",status="200"} 3\nh_bucket{le="+Inf"} 2\nproc 1.5e3\n'
    )
    expo = promtext.parse(good)
    assert not expo.problems
    assert {"a_total", "a", "h", "h_bucket", "proc"} <= expo.families
    bad = 'ok 1\nbroken{x=1} 2\nname value\n{no_name="x"} 1\n# TYPE z bogus\n'
    problems = promtext.parse(bad).problems
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 5"]


DOC = {
    "most_actives": [{"symbol": "A", "volume": 30}, {"symbol": "B", "volume": 10}],
    "list": ["AAPL", "MSFT"],
    "n": None,
}


@pytest.mark.parametrize(
    ("assertion", "ok"),
    [
        ({"path": "most_actives", "min_length": 1, "max_length": 10}, True),
        ({"path": "most_actives.*.volume", "sorted_desc": True}, True),
        ({"path": "most_actives.0.symbol", "equals": "A"}, True),
        ({"path": "most_actives.5.symbol", "exists": True}, False),
        ({"path": "list", "contains": ["AAPL", "BTCUSD"]}, False),
        ({"path": "n", "exists": True}, False),
        ({"path": "missing", "exists": False}, True),
        ({"path": "", "min_length": 5}, False),
        ({"path": "most_actives.*.symbol", "sorted_desc": True}, False),
    ],
)
def test_json_assertions(assertion: dict[str, object], ok: bool) -> None:
    result = jsonassert.check(DOC, JsonAssertion.model_validate(assertion))  # type: ignore[arg-type]
    assert result.ok is ok, result.detail


def test_signalr_records_split_across_frames() -> None:
    buf = signalr.RecordBuffer()
    assert buf.feed('{"type":6}\x1e{"type":1,"tar') == ['{"type":6}']
    assert buf.feed('get":"X","arguments":[]}\x1e') == ['{"type":1,"target":"X","arguments":[]}']
    assert signalr.handshake_error("{}") is None
    assert "refused" in (signalr.handshake_error('{"error":"nope"}') or "")
    neg = signalr.parse_negotiate(
        {
            "connectionId": "a",
            "connectionToken": "t",
            "negotiateVersion": 1,
            "availableTransports": [{"transport": "WebSockets"}],
        }
    )
    assert isinstance(neg, signalr.Negotiated)
    assert neg.connection_id == "t"
    assert signalr.parse_negotiate({"url": "https://elsewhere"}) == (
        "negotiate redirected to another URL (not followed)"
    )
    assert "WebSockets" in str(
        signalr.parse_negotiate(
            {"connectionId": "a", "availableTransports": [{"transport": "LongPolling"}]}
        )
    )
    assert (
        signalr.ws_url("https://h/hubs/x", "a b", "tok")
        == "wss://h/hubs/x?id=a%20b&access_token=tok"
    )


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", (200, 5, False, False)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", (200, None, True, False)),
        (b"HTTP/1.1 204 No\r\nConnection: close\r\n\r\n", (204, 0, False, True)),
        (b"HTTP/1.0 200 OK\r\n\r\n", (200, None, False, True)),
    ],
)
def test_parse_head(head: bytes, expected: tuple[int, int | None, bool, bool]) -> None:
    assert parse_head(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    ],
)
def test_parse_head_rejects_garbage(head: bytes) -> None:
    with pytest.raises(WireError):
        parse_head(head)
