"""The sliced fan-out on a real server (uvicorn on uvloop, in this process so that the slice can
be shrunk), with real WebSocket clients: a burst of ticks whose fan-out is spread over many loop
iterations still sends each client its first tick straight to the socket and the rest through
its writer (which coalesces what is queued when it runs), in order."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect

from mytrader_server.events import Tick
from mytrader_server.hubs import fanout as fanout_module
from mytrader_server.server import MyTraderServer, build_server
from mytrader_server.settings import load_settings
from tests.support.live import scaled

RS = "\x1e"
BURST = 10
CLIENTS = 4


@pytest.fixture
def in_thread_server(tmp_path: Path) -> Iterator[tuple[str, FastAPI]]:
    settings = load_settings(
        port=0,
        data_dir=tmp_path / "data",
        env="test",
        jwt_secret="a-test-secret-that-is-long-enough-0123456789",
        log_level="warning",
    )
    ready = tmp_path / "ready"
    server: MyTraderServer = build_server(settings, ready_file=ready)
    app = server.config.app.app  # behind the HubMiddleware front
    app.state.ctx.market.runs_feed = False  # only the test's ticks

    async def burst() -> dict[str, int]:
        """Publish BURST ticks in one loop iteration, as a feed step or a Redis batch does."""
        for seq in range(1, BURST + 1):
            app.state.ctx.bus.publish(
                Tick("AAPL", f"{seq}.00", "0.99", "1.01", seq, seq, "2026-01-01T00:00:00Z", seq)
            )
        return {"published": BURST}

    app.add_api_route("/test/burst", burst, methods=["POST"])
    thread = threading.Thread(target=server.run, daemon=True, name="in-thread-server")
    thread.start()
    deadline = time.monotonic() + scaled(20)
    while not ready.exists():
        assert thread.is_alive(), "the server exited"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield ready.read_text().strip(), app
    finally:
        server.should_exit = True
        thread.join(scaled(20))


def _direct_writes(url: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=scaled(5)) as response:
        text = response.read().decode()
    name = 'mytrader_hub_direct_writes_total{hub="market-data"}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def test_a_sliced_burst_goes_direct_once_per_client_and_the_rest_through_its_writer(
    in_thread_server: tuple[str, FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = in_thread_server
    ws_base = url.replace("http://", "ws://")
    clients = []
    for _ in range(CLIENTS):
        ws = await connect(ws_base + "/hubs/market-data")
        await ws.send('{"protocol":"json","version":1}' + RS)
        assert await asyncio.wait_for(ws.recv(), scaled(5)) == "{}" + RS
        await ws.send(
            json.dumps(
                {
                    "type": 1,
                    "invocationId": "1",
                    "target": "SubscribeToSymbols",
                    "arguments": [["AAPL"]],
                }
            )
            + RS
        )
        completion = json.loads(str(await asyncio.wait_for(ws.recv(), scaled(5))).split(RS)[0])
        assert completion["type"] == 3, completion
        clients.append(ws)
    # every connection written in its own loop iteration: the burst's fan-out spans ~40
    monkeypatch.setattr(fanout_module, "SLICE_S", 0.0)
    monkeypatch.setattr(fanout_module, "CLOCK_EVERY", 1)
    before = await asyncio.to_thread(_direct_writes, url)
    request = urllib.request.Request(url + "/test/burst", method="POST")
    await asyncio.to_thread(urllib.request.urlopen, request, None, scaled(5))
    try:
        for ws in clients:
            got: list[int] = []
            while len(got) < BURST:
                text = str(await asyncio.wait_for(ws.recv(), scaled(10)))
                for raw in text.split(RS)[:-1]:
                    record = json.loads(raw)
                    if record.get("target") == "ReceiveMarketData":
                        got.append(int(record["arguments"][0]["volume"]))
            assert got == list(range(1, BURST + 1))  # every tick, in order
    finally:
        for ws in clients:
            await ws.close()
    after = await asyncio.to_thread(_direct_writes, url)
    # one tick per client straight to the socket: the first of the burst; with a batch number
    # taken at each slice instead of at the burst, every slice's tick would go direct
    assert after - before == CLIENTS
