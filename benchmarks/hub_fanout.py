"""Hub fan-out benchmark: /hubs/market-data against a plain ``websockets.broadcast`` server.

One run measures, for each server, with N subscribed connections (default 1000) on loopback:

- memory per idle connection (server RSS before and after connecting and subscribing);
- a 10 ticks/s phase: delivered/offered and latency from each tick's *scheduled* time (the
  timestamp carried in the tick, so a stalled server cannot hide its delay);
- a maximum-rate phase: ticks in bursts of ``--burst`` as fast as the server drains them
  (the pacer waits while any connection has more than ``--backlog`` messages pending, so
  neither server drops anything): delivered messages per second.

Both servers push the same SignalR record (``{"type":1,"target":"ReceiveMarketData",...}``),
the same ticks on the same schedule, to the same raw asyncio client (one process, one core;
the server is pinned to the other core). Our server is the production one (``build_server``:
uvicorn, websockets-sansio, the hub middleware); ticks enter through ``ctx.bus.publish`` exactly
as the market feed publishes them (the feed itself is off so that only benchmark ticks flow).

This is the coalesced, feed-off throughput figure. What a feed subscriber sees (the server's
own feed, one record per frame, kernel receive timestamps, delivered against scheduled ticks) is
``benchmarks/hub_wire.py``.

Usage: python benchmarks/hub_fanout.py [--connections 1000] [--output docs/performance-hubs.md]
Not a test: it prints a table (and writes it with --output). Loopback only, about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rawws import PING, PONG, TEXT, client_frame, take_frames, take_upgrade, upgrade_request

RS = b"\x1e"
SYMBOL = "AAPL"
KINDS = ("mytrader", "reference")


# ---- ticks ---------------------------------------------------------------------------------


def tick_record(seq: int, scheduled: float) -> tuple[Any, str]:
    """The Tick and its SignalR push record, identical for both servers."""
    from mytrader_server.events import Tick
    from mytrader_server.hubs.fanout import RECEIVE_MARKET_DATA, tick_json
    from mytrader_server.hubs.protocol import encode_invocation_raw

    stamp = datetime.fromtimestamp(scheduled, UTC).isoformat(timespec="microseconds")
    tick = Tick(
        symbol=SYMBOL,
        price=f"{189 + (seq % 100) / 100:.2f}",
        bid=f"{188.98 + (seq % 100) / 100:.2f}",
        ask=f"{189.02 + (seq % 100) / 100:.2f}",
        volume=1000 + seq,
        trade_count=10 + seq,
        timestamp=stamp.replace("+00:00", "Z"),
        seq=seq + 1,
    )
    return tick, encode_invocation_raw(RECEIVE_MARKET_DATA, tick_json(tick))


async def pace(command: dict[str, Any], emit: Any, backlog: Any, unit: int) -> dict[str, Any]:
    """Emit ticks on a schedule (rate) or as fast as drained (max); report CPU used."""
    duration = float(command["duration"])
    start_at = float(command["start_at"])
    emitted = 0
    await asyncio.sleep(max(0.0, start_at - time.time()))
    late_s = time.time() - start_at
    cpu0, wall0 = time.process_time(), time.monotonic()
    if command["mode"] == "rate":
        period = 1.0 / float(command["rate"])
        count = int(duration * float(command["rate"]))
        for i in range(count):
            scheduled = start_at + i * period
            delay = scheduled - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            emit(*tick_record(i, scheduled))
            emitted += 1
    else:
        burst, limit = int(command["burst"]), int(command["backlog"]) * unit
        end = time.time() + duration
        i = 0
        while time.time() < end:
            now = time.time()
            for _ in range(burst):
                emit(*tick_record(i, now))
                i += 1
            emitted += burst
            await asyncio.sleep(0)
            while backlog() > limit:  # noqa: ASYNC110 - polling the socket backlog
                await asyncio.sleep(0.0005)
    return {
        "emitted": emitted,
        "cpu_s": time.process_time() - cpu0,
        "wall_s": time.monotonic() - wall0,
        "late_s": late_s,
    }


# ---- servers (run in their own process) ------------------------------------------------------


def serve_mytrader(ready: Path) -> None:
    from starlette.websockets import WebSocket

    from mytrader_server.server import build_server
    from mytrader_server.settings import load_settings

    data = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    settings = load_settings(
        port=0,
        data_dir=data,
        env="test",
        jwt_secret="benchmark-secret-that-is-long-enough-0123456789",
        log_level="warning",
    )
    server = build_server(settings, ready_file=ready)
    app = server.config.app.app  # build_server puts a HubMiddleware in front of the app
    ctx = app.state.ctx
    ctx.market.runs_feed = False  # only benchmark ticks
    hubs = app.state.hubs

    def emit(tick: Any, _record: str) -> None:
        ctx.bus.publish(tick)

    def backlog() -> int:
        # queued at a connection, plus ticks whose sliced fan-out has not reached it yet
        return max((c.queued for c in hubs.connections), default=0) + len(hubs.fanout._pending)

    async def control(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            command = json.loads(await ws.receive_text())
            await ws.send_text(json.dumps(await pace(command, emit, backlog, 1)))

    app.router.add_websocket_route("/bench/control", control)  # plain starlette: no DI
    server.run()


def serve_reference(ready: Path) -> None:
    import websockets
    from websockets.asyncio.server import ServerConnection, serve

    conns: set[ServerConnection] = set()

    def emit(_tick: Any, record: str) -> None:
        websockets.broadcast(conns, record)

    def backlog() -> int:
        return max((c.transport.get_write_buffer_size() for c in conns), default=0)

    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/bench/control":
            async for raw in ws:
                result = await pace(json.loads(raw), emit, backlog, len(tick_record(0, 0)[1]))
                await ws.send(json.dumps(result))
            return
        conns.add(ws)
        try:
            await ws.wait_closed()
        finally:
            conns.discard(ws)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, max_queue=None) as server:
            port = server.sockets[0].getsockname()[1]
            ready.write_text(f"http://127.0.0.1:{port}\n")  # noqa: ASYNC240 - once
            await asyncio.Future()

    asyncio.run(main())


# ---- the client (its own process) -----------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.reset(False, 1)
        self.ready = 0

    def reset(self, active: bool, sample_every: int) -> None:
        self.active = active
        self.delivered = 0
        self.frames = 0
        self.latencies: list[float] = []
        self.sample_every = sample_every


_STAMP = b'"timestamp":"'


class RawClient(asyncio.Protocol):
    """A minimal WebSocket client: upgrade, unmasked server frames in, masked frames out."""

    def __init__(self, stats: Stats, path: str, hello: list[bytes]) -> None:
        self.stats = stats
        self.path = path
        self.hello = hello
        self.buf = bytearray()
        self.upgraded = False
        self.subscribed = False
        self.transport: asyncio.Transport | None = None
        self.n = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(upgrade_request(self.path))

    def send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(payload, opcode))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            if not take_upgrade(buf):
                return
            self.upgraded = True
            for message in self.hello:
                self.send(TEXT, message)
            if not self.hello:
                self.subscribed = True
                self.stats.ready += 1
        stats = self.stats
        for opcode, payload in take_frames(buf):
            if opcode == TEXT:
                if not self.subscribed:
                    if b'"type":3' in payload:
                        self.subscribed = True
                        stats.ready += 1
                elif stats.active:
                    count = payload.count(b"ReceiveMarketData")
                    if count:
                        stats.delivered += count
                        stats.frames += 1
                        self.n += 1
                        if self.n % stats.sample_every == 0:
                            at = payload.find(_STAMP) + len(_STAMP)
                            stamp = payload[at : at + 26].decode()
                            sent = datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
                            stats.latencies.append(time.time() - sent)
            elif opcode == PING:
                self.send(PONG, payload)


async def run_client(url: str, kind: str, connections: int, phases: list[dict[str, Any]]) -> None:
    from websockets.asyncio.client import connect

    host, port = url.removeprefix("http://").split(":")
    stats = Stats()
    loop = asyncio.get_running_loop()
    if kind == "mytrader":
        path = "/hubs/market-data"
        hello = [
            b'{"protocol":"json","version":1}\x1e',
            b'{"type":1,"invocationId":"1","target":"SubscribeToSymbols","arguments":[["AAPL"]]}'
            + RS,
        ]
    else:
        path, hello = "/", []
    gate = asyncio.Semaphore(50)
    transports = []

    async def open_one() -> None:
        async with gate:
            t, _ = await loop.create_connection(
                lambda: RawClient(stats, path, hello), host, int(port)
            )
            transports.append(t)

    await asyncio.gather(*(open_one() for _ in range(connections)))
    deadline = time.monotonic() + 60
    while stats.ready < connections and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    print(json.dumps({"connected": stats.ready}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # the parent measured memory
    async with connect(url.replace("http", "ws") + "/bench/control", max_size=None) as control:
        for phase in phases:
            sample_every = 1 if phase["mode"] == "rate" else 20
            stats.reset(True, sample_every)
            command = dict(phase, start_at=time.time() + 1.0)
            await control.send(json.dumps(command))
            done = json.loads(await control.recv())
            settle = time.monotonic() + 3
            offered = done["emitted"] * connections
            while stats.delivered < offered and time.monotonic() < settle:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            stats.active = False
            lat = sorted(stats.latencies) or [float("nan")]
            result = {
                "phase": phase["name"],
                "offered": offered,
                "delivered": stats.delivered,
                "frames": stats.frames,
                "wall_s": done["wall_s"],
                "server_cpu_s": done["cpu_s"],
                "p50_ms": 1000 * lat[len(lat) // 2],
                "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                "max_ms": 1000 * lat[-1],
                "msg_per_s": stats.delivered / done["wall_s"],
                "start_late_ms": 1000 * done["late_s"],
            }
            print(json.dumps(result), flush=True)
    for t in transports:
        t.close()


# ---- orchestration ---------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pinned(cpu: int) -> Any:
    def pin() -> None:
        with contextlib.suppress(OSError, AttributeError):
            if (os.cpu_count() or 1) > 1:
                os.sched_setaffinity(0, {cpu})

    return pin


def run_kind(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="hub-fanout-"))
    ready = tmp / "ready"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYTRADER_")}
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", kind, str(ready)],
        preexec_fn=pinned(0),
        env=env,
        stderr=subprocess.DEVNULL if not args.verbose else None,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert server.poll() is None, f"{kind} server exited"
            assert time.monotonic() < deadline, f"{kind} server did not start"
            time.sleep(0.05)
        time.sleep(0.3)
        url = ready.read_text().strip()
        rss_before = rss_kib(server.pid)
        phases = [
            {"name": "warm-up", "mode": "rate", "rate": args.rate, "duration": 1.0},
            {"name": "10 ticks/s", "mode": "rate", "rate": args.rate, "duration": args.rate_s},
            {
                "name": "max rate",
                "mode": "max",
                "duration": args.max_s,
                "burst": args.burst,
                "backlog": args.backlog,
            },
        ]
        client = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "client",
                kind,
                url,
                str(args.connections),
                json.dumps(phases),
            ],
            preexec_fn=pinned(1),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdout is not None
        assert client.stdin is not None
        connected = json.loads(client.stdout.readline())["connected"]
        time.sleep(1.0)
        rss_after = rss_kib(server.pid)
        client.stdin.write("go\n")
        client.stdin.flush()
        results = [json.loads(client.stdout.readline()) for _ in phases]
        client.wait(60)
        return {
            "kind": kind,
            "connected": connected,
            "kib_per_connection": (rss_after - rss_before) / max(1, connected),
            "phases": {r["phase"]: r for r in results},
        }
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


def report(results: list[dict[str, Any]], args: argparse.Namespace, elapsed: float) -> str:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_kind.setdefault(r["kind"], []).append(r)

    def med(kind: str, phase: str | None, key: str) -> float:
        values = [(r["phases"][phase][key] if phase else r[key]) for r in by_kind[kind]]
        return statistics.median(values)

    rate, top = "10 ticks/s", "max rate"
    lines = [
        f"# Hub fan-out benchmark ({args.connections} connections, loopback)",
        "",
        f"Command: `python benchmarks/hub_fanout.py --connections {args.connections} "
        f"--rounds {args.rounds}` ({elapsed:.0f} s; median of {args.rounds} interleaved "
        f"round(s); server pinned to CPU 0, client to CPU 1; Python {sys.version.split()[0]}).",
        "",
        "| server | phase | delivered/offered | msg/s | frames/s | p50 ms | p99 ms | max ms "
        "| server CPU | server CPU µs/msg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        for phase in (rate, top):
            rs = [r["phases"][phase] for r in by_kind[kind]]
            ratio = statistics.median(p["delivered"] / p["offered"] for p in rs)
            fps = statistics.median(p["frames"] / p["wall_s"] for p in rs)
            cpu = statistics.median(p["server_cpu_s"] / p["wall_s"] for p in rs)
            per_msg = statistics.median(1e6 * p["server_cpu_s"] / p["delivered"] for p in rs)
            lines.append(
                f"| {kind} | {phase} | {ratio:.5f} | {med(kind, phase, 'msg_per_s'):,.0f} "
                f"| {fps:,.0f} | {med(kind, phase, 'p50_ms'):.1f} "
                f"| {med(kind, phase, 'p99_ms'):.1f} | {med(kind, phase, 'max_ms'):.1f} "
                f"| {100 * cpu:.0f}% | {per_msg:.1f} |"
            )
    ours_ratio = min(
        r["phases"][p]["delivered"] / r["phases"][p]["offered"]
        for r in by_kind["mytrader"]
        for p in (rate, top)
    )
    p99_ratio = med("mytrader", rate, "p99_ms") / med("reference", rate, "p99_ms")
    rate_ratio = med("mytrader", top, "msg_per_s") / med("reference", top, "msg_per_s")
    mem = med("mytrader", None, "kib_per_connection")
    mem_ref = med("reference", None, "kib_per_connection")
    lines += [
        "",
        "| goal | measured | verdict |",
        "|---|---|---|",
        f"| delivered/offered >= 0.999 (both phases) | {ours_ratio:.5f} "
        f"| {'pass' if ours_ratio >= 0.999 else 'FAIL'} |",
        f"| p99 at 10 ticks/s <= 2x reference | {p99_ratio:.2f}x "
        f"| {'pass' if p99_ratio <= 2 else 'FAIL'} |",
        f"| max msg/s >= 0.7x reference | {rate_ratio:.2f}x "
        f"| {'pass' if rate_ratio >= 0.7 else 'FAIL'} |",
        f"| memory per idle connection (reported) | {mem:.1f} KiB (reference {mem_ref:.1f} KiB) "
        "| - |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        (serve_mytrader if sys.argv[2] == "mytrader" else serve_reference)(Path(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        kind, url, n, phases = sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
        asyncio.run(run_client(url, kind, n, phases))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--rate-s", type=float, default=8.0, help="10 ticks/s phase length")
    parser.add_argument("--max-s", type=float, default=4.0, help="max-rate phase length")
    parser.add_argument("--burst", type=int, default=10, help="ticks per burst at max rate")
    parser.add_argument("--backlog", type=int, default=100, help="pending msgs per connection")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    results = []
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for kind in KINDS:
            results.append(run_kind(kind, args))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    text = report(results, args, time.monotonic() - started)
    text += (
        f"\nLoad average (1 min) before/after the run: {load_before[0]:.2f} / "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs.\n\n"
        "Per round, 10 ticks/s p99 ms (mytrader / reference): "
        + ", ".join(
            f"{a['phases']['10 ticks/s']['p99_ms']:.1f} / {b['phases']['10 ticks/s']['p99_ms']:.1f}"
            for a, b in zip(results[0::2], results[1::2], strict=True)
        )
        + "; max-rate msg/s: "
        + ", ".join(
            f"{a['phases']['max rate']['msg_per_s']:,.0f} / "
            f"{b['phases']['max rate']['msg_per_s']:,.0f}"
            for a, b in zip(results[0::2], results[1::2], strict=True)
        )
        + ".\n"
    )
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
