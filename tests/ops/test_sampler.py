"""The open-model sampler: constant rate, no coordinated omission, counts every send."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from mytrader_ops.probes.sampler import StreamSpec, judge_sampler, run_sampler
from mytrader_ops.stats import LatencyHistogram
from tests.ops.conftest import ThreadedServer, read_request, response
from tests.support.live import scaled


def stalling_server(
    serve: Callable[..., ThreadedServer], stall_from: float, stall_s: float
) -> ThreadedServer:
    """Answers at once, except that nothing is answered during one stall window."""
    t0 = time.perf_counter()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            now = time.perf_counter() - t0
            if stall_from <= now < stall_from + stall_s:
                await asyncio.sleep(stall_from + stall_s - now)
            writer.write(response(200, b"{}"))
            await writer.drain()

    return serve(handler)


@pytest.mark.parametrize("connections", [1, 32])
async def test_a_stall_is_measured_not_omitted(
    serve: Callable[..., ThreadedServer], connections: int
) -> None:
    server = stalling_server(serve, stall_from=0.6, stall_s=0.5)
    result = await run_sampler(
        server.url, [StreamSpec("/")], rate=100, duration_s=2.0, max_connections=connections
    )
    stream = result.streams["/"]
    assert stream.scheduled == 200
    assert stream.errors == 0
    assert stream.responses == 200
    # Every send due during the 0.5 s stall waits for its end: about 50 samples, from ~500 ms
    # down to ~0 ms. A closed-loop tester would have recorded one slow sample instead.
    summary = stream.histogram.summary()
    assert summary.max_ms >= 400
    assert stream.histogram.percentile_ms(90) >= 150, summary  # ~1 in 4 samples waited
    assert summary.p50_ms < 50, summary


async def test_rate_is_honoured_whatever_the_target(serve: Callable[..., ThreadedServer]) -> None:
    server = stalling_server(serve, stall_from=0.0, stall_s=0.0)
    t0 = time.perf_counter()
    result = await run_sampler(
        server.url, [StreamSpec("/a"), StreamSpec("/b")], rate=50, duration_s=1.0
    )
    took = time.perf_counter() - t0
    assert [s.scheduled for s in result.streams.values()] == [50, 50]
    assert 0.9 < took < scaled(2.5)
    assert result.health.valid, result.health.note


@pytest.mark.parametrize(
    ("lag_ms", "cpu_s", "valid", "fragment"),
    [
        (0.5, 0.1, True, "own scheduling lag"),
        (2000.0, 0.1, False, "far behind its schedule"),
        (0.5, 0.9, False, "CPU-bound"),
    ],
)
def test_judge_sampler(lag_ms: float, cpu_s: float, valid: bool, fragment: str) -> None:
    lag = LatencyHistogram()
    for _ in range(100):
        lag.record_ms(lag_ms)
    health = judge_sampler(lag.summary(), cpu_s=cpu_s, wall_s=1.0, sends=100, lag_limit_ms=1000)
    assert health.valid is valid
    assert fragment in health.note
    assert health.cpu_us_per_request == pytest.approx(cpu_s / 100 * 1e6)


async def test_keep_alive_race_is_retried_once_not_counted(
    serve: Callable[..., ThreadedServer],
) -> None:
    """A server that silently closes idle keep-alive connections is not an erroring server."""

    async def one_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        writer.write(response(200, b"{}"))  # no "Connection: close", then close anyway
        await writer.drain()

    server = serve(one_per_connection)
    result = await run_sampler(
        server.url, [StreamSpec("/")], rate=50, duration_s=1.0, max_connections=2
    )
    stream = result.streams["/"]
    assert (stream.responses, stream.errors) == (50, 0), dict(stream.error_kinds)


async def test_connection_closed_without_answer_is_an_error(
    serve: Callable[..., ThreadedServer],
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    server = serve(hang_up)
    result = await run_sampler(server.url, [StreamSpec("/")], rate=20, duration_s=0.5)
    stream = result.streams["/"]
    assert stream.errors == stream.scheduled == 10
    assert "connection closed before a response" in " ".join(stream.error_kinds)
