"""Probes against hostile local servers: checklist rows C9-C15.

Every probe must end within its deadline with an observation (never an exception, never a
pass) whatever the target does.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from mytrader_ops.config import HttpCheck, MetricsCheck, WebSocketCheck
from mytrader_ops.probes.context import ProbeContext, open_context
from mytrader_ops.probes.http import probe_http, probe_metrics
from mytrader_ops.probes.sampler import StreamSpec, run_sampler
from mytrader_ops.probes.websocket import probe_websocket
from mytrader_ops.redaction import Redactor
from mytrader_ops.validate.evaluate import CheckMeta, judge_observation, judge_rate_below
from mytrader_ops.verdict import Status
from tests.ops.conftest import ThreadedServer, read_request, response
from tests.support.live import scaled

Serve = Callable[..., ThreadedServer]


@asynccontextmanager
async def context(url: str, **kw: object) -> AsyncIterator[ProbeContext]:
    async with open_context(
        backend=url, frontend=None, username=None, password=None, redactor=Redactor(), **kw
    ) as ctx:  # type: ignore[arg-type]
        yield ctx


def http_check(path: str = "/", timeout_s: float = 2.0, **kw: object) -> HttpCheck:
    return HttpCheck.model_validate(
        {"id": "c", "title": "t", "kind": "http", "path": path, "timeout_s": timeout_s, **kw}
    )


async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.8)


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


async def test_c9_slow_drip_cannot_stretch_the_deadline(serve: Serve) -> None:
    server = serve(drip)
    t0 = time.perf_counter()
    async with context(server.url) as ctx:
        obs = await probe_http(ctx, http_check(timeout_s=2.0))
    took = time.perf_counter() - t0
    assert took < scaled(3.5), took
    assert obs.error is not None
    assert "deadline of 2 s" in obs.error
    assert judge_observation(CheckMeta("c", "t"), obs).status is Status.FAIL


@pytest.mark.parametrize("handler", [silent, drip])
async def test_c9_c10_sampler_against_hanging_target_ends_on_time(
    serve: Serve, handler: object
) -> None:
    server = serve(handler)
    t0 = time.perf_counter()
    result = await run_sampler(
        server.url,
        [StreamSpec("/")],
        rate=10,
        duration_s=1.0,
        request_timeout_s=1.0,
        max_connections=4,
    )
    assert time.perf_counter() - t0 < scaled(1.0 + 1.0 + 2.0)
    stream = result.streams["/"]
    n, errors = result.total()
    assert n == stream.scheduled == 10
    assert errors == 10  # timeouts and drops, none a success
    assert stream.responses == 0
    # timed-out requests are recorded at their full latency (no flattering omission)
    assert stream.histogram.count == 0 or stream.histogram.percentile_ms(50) >= 900
    verdict = judge_rate_below(CheckMeta("e", "e"), "error rate", errors, n, 0.05, 5)
    assert verdict.status is Status.FAIL


async def test_c10_accept_and_never_answer(serve: Serve) -> None:
    server = serve(silent)
    async with context(server.url) as ctx:
        t0 = time.perf_counter()
        obs = await probe_http(ctx, http_check(timeout_s=1.0))
    assert time.perf_counter() - t0 < scaled(2.0)
    assert obs.error is not None
    assert "deadline" in obs.error


async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
    while True:
        writer.write(chunk)
        await writer.drain()


async def test_c11_endless_body_is_capped(serve: Serve) -> None:
    server = serve(endless)
    async with context(server.url) as ctx:
        obs = await probe_http(ctx, http_check(max_bytes=65536, timeout_s=5.0))
    assert obs.error is not None
    assert "exceeds 65536 bytes" in obs.error
    assert obs.elapsed_ms < scaled(5.0) * 1000
    result = await run_sampler(
        server.url, [StreamSpec("/")], rate=5, duration_s=0.4, request_timeout_s=3.0
    )
    kinds = " ".join(result.streams["/"].error_kinds)
    assert "exceeds" in kinds


def redirect_to(location: Callable[[], str], seen: list[bytes] | None = None) -> object:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await read_request(reader)
            if seen is not None:
                seen.append(head)
            writer.write(response(302, b"", extra=f"Location: {location()}\r\n"))
            await writer.drain()

    return handler


async def test_c12_redirects_not_followed_by_default(serve: Serve) -> None:
    holder: dict[str, str] = {}
    server = serve(redirect_to(lambda: holder["url"] + "/again"))
    holder["url"] = server.url
    async with context(server.url) as ctx:
        obs = await probe_http(ctx, http_check())
    verdict = judge_observation(CheckMeta("c", "t"), obs)
    assert verdict.status is Status.FAIL
    assert "HTTP 302" in verdict.summary


async def test_c12_redirect_loop_capped_when_following(serve: Serve) -> None:
    holder: dict[str, str] = {}
    seen: list[bytes] = []
    server = serve(redirect_to(lambda: holder["url"] + "/loop", seen))
    holder["url"] = server.url
    async with context(server.url, follow_redirects=True) as ctx:
        obs = await probe_http(ctx, http_check())
    assert obs.error is not None
    assert "more than 5 redirects" in obs.error
    assert len(seen) == 6


async def test_c12_credentials_dropped_on_host_change(serve: Serve) -> None:
    seen: list[bytes] = []

    async def other_host(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(response(200, b"{}"))
        await writer.drain()

    other = serve(other_host)
    first = serve(redirect_to(lambda: other.url + "/x"))
    async with context(first.url, follow_redirects=True) as ctx:
        got = await ctx.fetch("GET", first.url + "/", headers={"Authorization": "Bearer sekrit"})
    assert got.status == 200
    assert b"authorization" not in seen[0].lower()


def _self_signed(tmp: Path) -> ssl.SSLContext:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available to make a throwaway certificate")
    key, cert = tmp / "k.pem", tmp / "c.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def ok_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(response(200, b'{"status":"pass"}'))
        await writer.drain()


async def test_c13_self_signed_tls_fails_closed(serve: Serve, tmp_path: Path) -> None:
    server = serve(ok_json, ssl_context=_self_signed(tmp_path))
    async with context(server.url) as ctx:
        obs = await probe_http(ctx, http_check())
    assert obs.error is not None
    assert "TLS verification failed" in obs.error
    result = await run_sampler(
        server.url,
        [StreamSpec("/")],
        rate=5,
        duration_s=0.4,
        ssl_context=ssl.create_default_context(),
    )
    assert result.streams["/"].responses == 0
    assert result.streams["/"].errors == result.streams["/"].scheduled


async def test_c13_proxy_and_netrc_in_environment_are_ignored(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxied: list[bytes] = []

    async def fake_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxied.append(await read_request(reader))

    proxy = serve(fake_proxy)
    seen: list[bytes] = []

    async def target(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(response(200, b'{"status":"pass"}'))
        await writer.drain()

    server = serve(target)
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login leak password netrc-secret\n")
    netrc.chmod(0o600)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(var, proxy.url)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    async with context(server.url) as ctx:
        obs = await probe_http(ctx, http_check())
    assert obs.error is None, obs.error
    assert not proxied
    assert seen
    assert b"authorization" not in seen[0].lower()


def ws_check(url: str, **kw: object) -> WebSocketCheck:
    return WebSocketCheck.model_validate(
        {"id": "w", "title": "t", "kind": "websocket", "url": url, "timeout_s": 1.0, **kw}
    )


async def test_c14_websocket_never_completes_handshake(serve: Serve) -> None:
    server = serve(silent)
    async with context(server.url) as ctx:
        t0 = time.perf_counter()
        obs = await probe_websocket(ctx, ws_check(f"ws://127.0.0.1:{server.port}/"))
    assert time.perf_counter() - t0 < scaled(2.5)
    verdict = judge_observation(CheckMeta("w", "t"), obs)
    assert verdict.status is Status.FAIL


async def test_c14_websocket_silent_and_oversized() -> None:
    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/big":
            await ws.send("x" * (2 * 1024 * 1024))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with context(f"http://127.0.0.1:{port}") as ctx:
            quiet = await probe_websocket(ctx, ws_check(f"ws://127.0.0.1:{port}/quiet"))
            big = await probe_websocket(
                ctx, ws_check(f"ws://127.0.0.1:{port}/big", max_message_bytes=65536)
            )
    assert [s.outcome for s in quiet.steps if s.name == "first message"] == ["failed"]
    big_steps = {s.name: s for s in big.steps}
    assert big_steps["first message"].outcome == "failed"
    assert "65536" in big_steps["first message"].detail


async def test_c15_malformed_metrics_fail_with_line_numbers(serve: Serve) -> None:
    async def metrics(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = b"# TYPE up gauge\nup 1\nup{job=unterminated 1\n"
        writer.write(response(200, body, ctype="text/plain"))
        await writer.drain()

    server = serve(metrics)
    check = MetricsCheck.model_validate(
        {"id": "m", "title": "t", "kind": "metrics", "require": ["up", "absent_metric"]}
    )
    async with context(server.url) as ctx:
        obs = await probe_metrics(ctx, check)
    verdict = judge_observation(CheckMeta("m", "t"), obs)
    assert verdict.status is Status.FAIL
    assert "line 3" in verdict.summary
    assert any("absent_metric" in e and "FAILED" in e for e in verdict.evidence)


async def test_c15_200_with_error_body_is_a_failure(serve: Serve) -> None:
    async def lying(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(200, b'{"error":"database unavailable"}'))
        await writer.drain()

    server = serve(lying)
    async with context(server.url) as ctx:
        obs = await probe_http(ctx, http_check())
    verdict = judge_observation(CheckMeta("c", "t"), obs)
    assert verdict.status is Status.FAIL
    assert "error body" in verdict.summary


async def test_c15_flapping_endpoint_counts_every_failure(serve: Serve) -> None:
    """Cumulative over the window, stated in the verdict: one bad response in three fails."""
    counter = {"n": 0}

    async def flapping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            counter["n"] += 1
            status = 500 if counter["n"] % 3 == 0 else 200
            writer.write(response(status, b"{}"))
            await writer.drain()

    server = serve(flapping)
    result = await run_sampler(server.url, [StreamSpec("/")], rate=100, duration_s=1.5)
    n, errors = result.total()
    verdict = judge_rate_below(CheckMeta("e", "e"), "error rate", errors, n, 0.05, 73)
    assert verdict.status is Status.FAIL
    assert f"n={n}" in verdict.summary
    assert 0.25 < errors / n < 0.40


async def test_header_assertions(serve: Serve) -> None:
    async def with_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # keep-alive, as a real server
            await read_request(reader)
            writer.write(response(200, b"{}", extra="Cache-Control: no-store, no-cache\r\n"))
            await writer.drain()

    server = serve(with_headers)
    good = http_check(expect_headers={"cache-control": "NO-STORE"})
    bad = http_check(expect_headers={"strict-transport-security": "max-age"})
    async with context(server.url) as ctx:
        assert judge_observation(CheckMeta("c", "t"), await probe_http(ctx, good)).status is (
            Status.PASS
        )
        verdict = judge_observation(CheckMeta("c", "t"), await probe_http(ctx, bad))
    assert verdict.status is Status.FAIL
    assert "strict-transport-security failed" in verdict.summary


def test_messageless_transport_errors_are_described_from_their_cause() -> None:
    import httpx

    from mytrader_ops.probes.context import describe_error

    wrapped = httpx.ReadError("")
    wrapped.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert describe_error(wrapped) == "ReadError: [Errno 104] Connection reset by peer"
    bare = describe_error(httpx.ReadError(""))
    assert bare == "ReadError: connection reset or closed while reading the response"
