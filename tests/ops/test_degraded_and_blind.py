"""Issue 9, items 4 and 6: degraded health is WARN (never a silent PASS), a probe that saw
nothing is INCONCLUSIVE, a WebSocket's close code is judged and the worst database component
counts. Real probes against small local servers; judgement through `judge_observation`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve

from mytrader_ops.config import DatabaseCheck, HealthCheck, WebSocketCheck
from mytrader_ops.observation import Observation, Step
from mytrader_ops.probes.context import ProbeContext, open_context
from mytrader_ops.probes.database import probe_database
from mytrader_ops.probes.http import probe_health
from mytrader_ops.probes.websocket import probe_websocket
from mytrader_ops.redaction import Redactor
from mytrader_ops.validate.evaluate import CheckMeta, judge_observation
from mytrader_ops.verdict import Status
from tests.ops.conftest import ThreadedServer, read_request, response

Serve = Callable[..., ThreadedServer]
META = CheckMeta("h", "health")


@asynccontextmanager
async def context(url: str) -> AsyncIterator[ProbeContext]:
    async with open_context(
        backend=url, frontend=None, username=None, password=None, redactor=Redactor()
    ) as ctx:
        yield ctx


def answering(status: int, body: str, ctype: str) -> Callable[..., object]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(status, body.encode(), ctype=ctype))
        await writer.drain()

    return handler


ASPNET_UI_DEGRADED = json.dumps(
    {
        "status": "Degraded",
        "totalDuration": "00:00:00.01",
        "entries": {
            "db": {"status": "Healthy", "duration": "00:00:00.005"},
            "cache": {"status": "Degraded", "description": "slow", "duration": "00:00:00.2"},
        },
    }
)
IETF_WARN = json.dumps(
    {"status": "warn", "checks": {"database:responseTime": [{"status": "warn", "output": "slow"}]}}
)
IETF_PASS_COMPONENT_WARN = json.dumps(
    {"status": "pass", "checks": {"cache:responseTime": [{"status": "warn"}]}}
)
DEGRADED = [
    pytest.param(200, "Degraded", "text/plain", id="aspnet-text"),
    pytest.param(200, ASPNET_UI_DEGRADED, "application/json", id="healthchecks-ui"),
    pytest.param(200, IETF_WARN, "application/health+json", id="ietf-warn"),
    pytest.param(200, IETF_PASS_COMPONENT_WARN, "application/health+json", id="ietf-component"),
]


@pytest.mark.parametrize(("status", "body", "ctype"), DEGRADED)
@pytest.mark.parametrize("allow_warn", [True, False])
async def test_degraded_health_is_warn_or_with_allow_warn_false_fail(
    serve: Serve, status: int, body: str, ctype: str, allow_warn: bool
) -> None:
    server = serve(answering(status, body, ctype))
    check = HealthCheck.model_validate(
        {"id": "h", "title": "t", "kind": "health", "path": "/health", "allow_warn": allow_warn}
    )
    async with context(server.url) as ctx:
        verdict = judge_observation(META, await probe_health(ctx, check))
    if allow_warn:
        assert verdict.status is Status.WARN, verdict.summary
        assert verdict.summary.startswith("degraded: ")
        assert any(e.startswith("[WARN]") for e in verdict.evidence)
    else:
        assert verdict.status is Status.FAIL, verdict.summary


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        ("Healthy", "text/plain"),
        (json.dumps({"status": "pass"}), "application/health+json"),
        (json.dumps({"status": "UP", "components": {"db": {"status": "UP"}}}), "application/json"),
        ("ok", "text/plain"),
    ],
)
async def test_healthy_health_is_still_pass(serve: Serve, body: str, ctype: str) -> None:
    server = serve(answering(200, body, ctype))
    check = HealthCheck.model_validate({"id": "h", "title": "t", "kind": "health", "path": "/"})
    async with context(server.url) as ctx:
        assert judge_observation(META, await probe_health(ctx, check)).status is Status.PASS


@pytest.mark.parametrize(
    "steps",
    [(), (Step("login", "skipped", "no token"), Step("read", "skipped", "no token"))],
    ids=["no-steps", "only-skipped"],
)
def test_an_observation_that_saw_nothing_is_inconclusive_never_pass(
    steps: tuple[Step, ...],
) -> None:
    obs = Observation("x", "http", "2026-12-02T00:00:00Z", 1.0, steps=steps)
    verdict = judge_observation(CheckMeta("x", "X"), obs)
    assert verdict.status is Status.INCONCLUSIVE
    assert "no evidence" in verdict.summary


@pytest.mark.parametrize(
    ("close_code", "status"),
    [(1000, Status.PASS), (1001, Status.PASS), (1011, Status.FAIL), (1008, Status.FAIL)],
)
async def test_plain_websocket_probe_judges_the_close_code(close_code: int, status: Status) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("hello")
        await ws.close(close_code, "server says so")

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        check = WebSocketCheck.model_validate(
            {"id": "w", "title": "t", "kind": "websocket", "url": f"ws://127.0.0.1:{port}/"}
        )
        async with context(f"http://127.0.0.1:{port}") as ctx:
            verdict = judge_observation(CheckMeta("w", "t"), await probe_websocket(ctx, check))
    assert verdict.status is status, verdict.summary
    if status is Status.FAIL:
        assert f"close code {close_code}" in verdict.summary


@pytest.mark.parametrize(
    ("first", "second", "status"),
    [
        ("pass", "fail", Status.FAIL),
        ("fail", "pass", Status.FAIL),
        ("pass", "warn", Status.WARN),
        ("pass", "pass", Status.PASS),
    ],
)
async def test_the_worst_database_component_counts(
    serve: Serve, first: str, second: str, status: Status
) -> None:
    body = json.dumps(
        {
            "status": "pass",
            "checks": {
                "database:responseTime": [{"status": first, "observedValue": 2}],
                "database-replica:responseTime": [{"status": second, "observedValue": 3}],
            },
        }
    )
    server = serve(answering(200, body, "application/health+json"))
    check = DatabaseCheck.model_validate(
        {"id": "d", "title": "t", "kind": "database", "round_trip": False}
    )
    async with context(server.url) as ctx:
        verdict = judge_observation(CheckMeta("d", "t"), await probe_database(ctx, check))
    assert verdict.status is status, verdict.summary


@pytest.mark.parametrize(
    ("first", "second", "worst"),
    [("pass", "fail", "fail"), ("fail", "pass", "fail"), ("warn", "pass", "warn")],
)
async def test_the_monitor_reads_the_worst_database_component(
    serve: Serve, first: str, second: str, worst: str
) -> None:
    """The monitor used to keep whichever database component came last, so a failing
    primary followed by a healthy replica read as a healthy database."""
    from mytrader_ops.monitor.collect import CollectSettings, _health

    body = json.dumps(
        {
            "status": "pass",
            "checks": {
                "database:responseTime": [{"status": first, "observedValue": 2}],
                "database-replica:responseTime": [{"status": second, "observedValue": 7}],
            },
        }
    )
    server = serve(answering(200, body, "application/health+json"))
    async with context(server.url) as ctx:
        _ok, db, db_ms, _note = await _health(ctx, CollectSettings(interval_s=1, rate=1))
    assert db == worst
    if worst != "fail":
        assert db_ms == 7.0  # the slowest component's round trip
