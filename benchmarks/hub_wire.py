"""Hub benchmark at the wire: N SignalR JSON clients on the server's own market feed (issue 14).

The production server (``build_server``) runs with its simulated feed on at
``MYTRADER_FEED_INTERVAL_S`` (default 0.1 s: 10 ReceiveMarketData per second per client, one
record per frame). Each client negotiates (``POST /hubs/market-data/negotiate?negotiateVersion=1``),
opens the WebSocket with the connection token, does the JSON handshake and calls
``SubscribeToSymbols(["AAPL"])``. The reference is a plain ``websockets`` server calling
``websockets.broadcast`` with a record of the same shape and size on the same fixed-rate
schedule. Rounds run on fresh servers in the order hub, reference, reference, hub, ... so that
machine noise hits both alike; the server is pinned to CPU 0 and the client to CPU 1
(``sched_setaffinity``, what ``taskset`` does), the client at niceness ``--client-nice`` (10).

Measured per round, over a window [T0, T1) that starts after every client is subscribed and a
warm-up has passed:

- **delivered** = ticks received whose server timestamp falls in the window / ticks SCHEDULED in
  it (every slot ``t0 + k * interval`` in the window, times the connections): a feed that skips
  a step or a hub that drops a message counts against it;
- **latency** = the kernel's receive timestamp of the segment carrying the frame
  (``SO_TIMESTAMPNS`` on the client socket, read with ``recvmsg``) minus the tick's server
  timestamp. The server's feed stamps each tick with its *scheduled* time, so a late feed step
  counts as latency too (no coordinated omission); the reference stamps its schedule the same way;
- **CPU per message** = server process CPU time (utime + stime from /proc) over the window /
  messages delivered in the window (the hub server also runs the whole feed, 24 symbols, and the
  order engine's tick listener: that is the production cost);
- **memory per connection** = (server RSS once all N clients are subscribed - RSS before) / N.

Scale-out mode (``--processes 2``): instead of the reference, rounds of 2 ``mytrader-server``
processes sharing Redis (``--redis``, a fresh ``MYTRADER_REDIS_PREFIX`` per round, its keys
deleted after) and one SQLite data dir, the N clients dealt round-robin between them (half
each). The first process migrates, takes the feed lease and runs the feed (the leader, CPU 0);
the second follows it through Redis (CPU 1); the client stays on ``--client-cpu`` (1), so on a
2-core machine it shares CPU 1 with the follower. Rounds run 1 process, 2 processes, 2, 1, ...
with the same total N; figures are reported overall and per process.

Usage: python benchmarks/hub_wire.py [--connections 1000] [--interval 0.1] [--rounds 5]
           [--processes 2] [--output docs/performance-hubs.md]
Loopback only. About 25 s per round at 1000 clients.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from rawws import PING, PONG, TEXT, client_frame, take_frames, take_upgrade, upgrade_request

PING_S = 10.0  # each client's keep-alive period (the hub's client timeout is 30 s)
SO_TIMESTAMPNS = 35  # Linux; SCM_TIMESTAMPNS has the same value (Python does not export it)
RS = b"\x1e"
KINDS = ("mytrader", "reference")
SECRET = "benchmark-secret-that-is-long-enough-0123456789"


# ---- servers (own process, CPU 0) -------------------------------------------------------------


def serve_mytrader(ready: Path, interval: float) -> None:
    from mytrader_server.server import build_server
    from mytrader_server.settings import load_settings

    os.environ["MYTRADER_FEED_INTERVAL_S"] = str(interval)
    # scale-out rounds: both processes share one data dir (and MYTRADER_REDIS_URL / _PREFIX)
    shared = os.environ.get("MYTRADER_DATA_DIR")
    data = Path(shared) if shared else Path(tempfile.mkdtemp(prefix="hub-wire-"))
    settings = load_settings(
        port=0, data_dir=data, env="test", jwt_secret=SECRET, log_level="warning"
    )
    assert settings.feed_interval_s == interval
    build_server(settings, ready_file=ready).run()


def serve_reference(ready: Path, interval: float) -> None:
    import asyncio

    import websockets
    from websockets.asyncio.server import ServerConnection, serve

    sys.path.insert(0, str(Path(__file__).parent))
    from hub_fanout import tick_record

    conns: set[ServerConnection] = set()
    tick_record(0, time.time())  # import and warm up before the "before" RSS is taken

    async def handler(ws: ServerConnection) -> None:
        conns.add(ws)
        try:
            await ws.wait_closed()
        finally:
            conns.discard(ws)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, max_queue=None) as server:
            port = server.sockets[0].getsockname()[1]
            ready.write_text(f"http://127.0.0.1:{port}\n")  # noqa: ASYNC240 - once
            loop = asyncio.get_running_loop()
            start, wall = loop.time(), time.time()
            k = 0
            while True:  # the same fixed-rate schedule as the feed, the same record shape
                k += 1
                await asyncio.sleep(max(0.0, start + k * interval - loop.time()))
                _, record = tick_record(k, wall + k * interval)
                websockets.broadcast(conns, record)

    asyncio.run(main())


# ---- the client (own process, CPU 1) ----------------------------------------------------------


class Conn:
    __slots__ = ("buf", "got", "ready", "server", "sock", "upgraded")

    def __init__(self, sock: socket.socket, server: int) -> None:
        self.sock = sock
        self.server = server
        self.buf = bytearray()
        self.upgraded = False
        self.ready = False
        self.got = 0


def _parse_stamp(record: bytes) -> float | None:
    at = record.find(b'"timestamp":"')
    if at < 0:
        return None
    at += 13
    end = record.index(b'"', at)
    return datetime.fromisoformat(record[at:end].decode().replace("Z", "+00:00")).timestamp()


def _percentiles(values: list[float]) -> dict[str, float]:
    lat = sorted(values) or [math.nan]
    return {
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "max_ms": 1000 * lat[-1],
    }


def run_client(kind: str, urls: str, n: int, interval: float, pings: str = "staggered") -> None:
    """N clients, dealt round-robin over the comma-separated server URLs (one per process).

    Each client pings every ``PING_S`` as a SignalR client does from its own keep-alive timer:
    ``staggered`` spreads the N timers evenly over the period, as clients that connected at
    different times have them; ``synchronized`` pings all N at the same instant (a burst of N
    inbound messages the server handles in one go)."""
    servers = [u.removeprefix("http://").rsplit(":", 1) for u in urls.split(",")]
    addrs = [(host, int(port)) for host, port in servers]
    sel = selectors.DefaultSelector()
    conns: list[Conn] = []
    hello = (
        [
            b'{"protocol":"json","version":1}\x1e',
            b'{"type":1,"invocationId":"1","target":"SubscribeToSymbols","arguments":[["AAPL"]]}'
            + RS,
        ]
        if kind == "mytrader"
        else []
    )
    http_conns = [http.client.HTTPConnection(h, p, timeout=30) for h, p in addrs]

    def open_one(index: int) -> None:
        host, port = addrs[index]
        http_conn = http_conns[index]
        path = "/"
        if kind == "mytrader":
            http_conn.request("POST", "/hubs/market-data/negotiate?negotiateVersion=1", body=b"")
            response = http_conn.getresponse()
            body = json.loads(response.read())
            assert response.status == 200, body
            path = f"/hubs/market-data?id={body['connectionToken']}"
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(upgrade_request(path, host))
        sock.setblocking(False)
        conn = Conn(sock, index)
        conns.append(conn)
        sel.register(sock, selectors.EVENT_READ, conn)

    # measurement state
    window = [math.inf, math.inf]  # [T0, T1) in wall time, set by the parent
    latencies: list[list[float]] = [[] for _ in addrs]  # per server
    stats = {
        "received": 0,
        "frames": 0,
        "max_records_per_frame": 0,
        "record_bytes": 0,
        "closed": 0,
    }
    stamps_seen: list[float] = []
    ready_count = 0
    cmsg_space = socket.CMSG_SPACE(16)

    def on_text(conn: Conn, payload: bytes, kernel_ts: float) -> None:
        nonlocal ready_count
        if not conn.ready:
            if kind == "mytrader" and b'"type":3' in payload:
                conn.ready = True
                ready_count += 1
            return
        t0, t1 = window
        records = [r for r in payload.split(RS) if b"ReceiveMarketData" in r]
        if not records:
            return
        if len(records) > stats["max_records_per_frame"]:
            stats["max_records_per_frame"] = len(records)
        counted = False
        for record in records:
            ts = _parse_stamp(record)
            if ts is None or not t0 <= ts < t1:
                continue
            counted = True
            if not stamps_seen:
                stamps_seen.append(ts)
            stats["received"] += 1
            stats["record_bytes"] += len(record) + 1
            conn.got += 1
            latencies[conn.server].append(kernel_ts - ts)
        stats["frames"] += counted

    def on_readable(conn: Conn) -> None:
        nonlocal ready_count
        try:
            data, anc, _flags, _addr = conn.sock.recvmsg(262_144, cmsg_space)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset by the server (e.g. a slow client dropped): counts as closed
            data, anc = b"", []
        if not data:
            sel.unregister(conn.sock)
            stats["closed"] += 1
            return
        kernel_ts = time.time()
        for level, ctype, cdata in anc:
            if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", cdata[:16])
                kernel_ts = sec + nsec / 1e9
        buf = conn.buf
        buf += data
        if not conn.upgraded:
            if not take_upgrade(buf):
                return
            conn.upgraded = True
            for message in hello:
                conn.sock.send(client_frame(message))
            if not hello:
                conn.ready = True
                ready_count += 1
        for opcode, payload in take_frames(buf):
            if opcode == TEXT:
                on_text(conn, payload, kernel_ts)
            elif opcode == PING:
                conn.sock.send(client_frame(payload, PONG))

    def pump(timeout: float) -> None:
        for key, _ in sel.select(timeout):
            if key.data is None:  # stdin: the parent's window
                line = sys.stdin.readline().split()
                window[0], window[1] = float(line[0]), float(line[1])
            else:
                on_readable(key.data)

    ping = b'{"type":6}\x1e'
    step = PING_S if pings == "synchronized" else PING_S / n  # between two pings sent
    next_ping, next_conn = time.monotonic() + step, 0

    def keep_alive() -> None:  # the hub closes a client silent for 30 s
        nonlocal next_ping, next_conn
        if kind != "mytrader":
            return
        now = time.monotonic()
        while now >= next_ping:
            next_ping += step
            due = conns if pings == "synchronized" else conns[next_conn : next_conn + 1]
            next_conn = (next_conn + 1) % max(1, len(conns))
            for conn in due:
                if conn.ready:
                    with contextlib.suppress(OSError):
                        conn.sock.send(client_frame(ping))

    for i in range(n):
        open_one(i % len(addrs))
        if i % 50 == 49:
            pump(0)
            keep_alive()
    for http_conn in http_conns:
        http_conn.close()
    deadline = time.monotonic() + 120
    while ready_count < n and time.monotonic() < deadline:
        pump(0.05)
        keep_alive()
    print(json.dumps({"connected": ready_count}), flush=True)
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    while math.isinf(window[1]) or time.time() < window[1] + 2.0:  # late ticks still count
        pump(0.05)
        keep_alive()
    t0, t1 = window
    # the slots t + k * interval scheduled in [T0, T1), from the phase of a received tick
    if stamps_seen:
        phase = stamps_seen[0]
        first = math.ceil((t0 - phase) / interval - 1e-6)
        last = math.ceil((t1 - phase) / interval - 1e-6)
        slots = last - first
    else:
        slots = round((t1 - t0) / interval)
    per_server = []
    for index in range(len(addrs)):
        mine = [c for c in conns if c.server == index]
        ready_here = sum(c.ready for c in mine)
        per_server.append(
            {
                "connected": ready_here,
                "scheduled": slots * ready_here,
                "received": len(latencies[index]),
                "delivered": len(latencies[index]) / max(1, slots * ready_here),
                "min_per_conn": min((c.got for c in mine), default=0),
                **_percentiles(latencies[index]),
            }
        )
    print(
        json.dumps(
            {
                "connected": ready_count,
                "slots": slots,
                "scheduled": slots * ready_count,
                "received": stats["received"],
                "frames": stats["frames"],
                "closed_by_server": stats["closed"],
                "max_records_per_frame": stats["max_records_per_frame"],
                "record_bytes": stats["record_bytes"] / max(1, stats["received"]),
                "min_per_conn": min((c.got for c in conns), default=0),
                **_percentiles([x for per in latencies for x in per]),
                "per_server": per_server,
            }
        ),
        flush=True,
    )
    for conn in conns:
        conn.sock.close()


# ---- orchestration ----------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(url: str) -> dict[str, float]:
    """The hub server's own view (GC pauses, loop lag, feed schedule); empty for the reference.
    Every value is a running total, so a window's figure is the difference of two scrapes."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def total(name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def over(histogram: str, le: str) -> float:  # a bucket counts the samples <= le
        return total(f"{histogram}_count") - total(f"{histogram}_bucket", le=le)

    gc, lag = "mytrader_gc_pause_seconds", "mytrader_event_loop_lag_seconds"
    return {
        "gc2_count": total(f"{gc}_count", generation="2"),
        "gc2_sum": total(f"{gc}_sum", generation="2"),
        "gc_all_sum": total(f"{gc}_sum"),
        "gc_over_20ms": over(gc, "0.02"),  # collections of every generation
        "loop_lag_sum": total(f"{lag}_sum"),
        "loop_lag_count": total(f"{lag}_count"),
        "loop_lag_over_100ms": over(lag, "0.1"),
        "loop_lag_over_20ms": over(lag, "0.02"),
        "feed_skipped": total("mytrader_feed_ticks_skipped_total"),
        "feed_scheduled": total("mytrader_feed_ticks_scheduled_total"),
    }


def pinned(cpu: int, nice: int = 0) -> Any:
    def pin() -> None:
        with contextlib.suppress(OSError, AttributeError):
            if (os.cpu_count() or 1) > 1:
                os.sched_setaffinity(0, {cpu})
        if nice:
            os.nice(nice)

    return pin


def health_role(url: str) -> str:
    """``leader`` / ``follower`` from a scale-out process's /health; ``?`` if unreadable."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as response:
            body = json.loads(response.read())
        return str(body["checks"]["redis:connection"][0]["output"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return "?"


def drop_redis_keys(redis_url: str, prefix: str) -> int:
    import redis

    store = redis.Redis.from_url(redis_url)
    try:
        keys = list(store.scan_iter(match=f"{prefix}:*"))
        if keys:
            store.delete(*keys)
        return len(keys)
    finally:
        store.close()


def start_server(
    kind: str, args: argparse.Namespace, env: dict[str, str], ready: Path, cpu: int
) -> tuple[subprocess.Popen[bytes], str]:
    serve_kind = "reference" if kind == "reference" else "mytrader"
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", serve_kind, str(ready), str(args.interval)],
        preexec_fn=pinned(cpu),
        env=env,
        stderr=None if args.verbose else subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise SystemExit(f"{kind} server did not start")
        time.sleep(0.05)
    time.sleep(0.1)
    return server, ready.read_text().strip()


def run_round(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """One round on fresh servers: one process, the reference, or (``scaleout``) two
    ``mytrader`` processes sharing Redis and a data dir, the clients split half/half."""
    tmp = Path(tempfile.mkdtemp(prefix="hub-wire-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYTRADER_")}
    # the hub's loop-lag sampler, fine enough that every pause over 20 ms + this is counted
    env["MYTRADER_LOOP_SAMPLE_S"] = str(args.loop_sample)
    prefix = ""
    if kind == "scaleout":
        prefix = f"hub-wire-{os.getpid()}-{time.time_ns()}"
        env |= {
            "MYTRADER_REDIS_URL": args.redis,
            "MYTRADER_REDIS_PREFIX": prefix,
            "MYTRADER_DATA_DIR": str(tmp / "data"),
        }
    load = os.getloadavg()[0]
    servers: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        # the first process migrates the shared SQLite file and takes the feed lease; the
        # second starts after it is ready, as a follower. CPUs: server i on CPU i % 2.
        for i in range(args.processes if kind == "scaleout" else 1):
            server, url = start_server(kind, args, env, tmp / f"ready-{i}", i % 2)
            servers.append(server)
            urls.append(url)
        time.sleep(1.0)
        roles = [health_role(u) for u in urls] if kind == "scaleout" else ["single"]
        rss_before = [rss_kib(s.pid) for s in servers]
        client = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "client",
                "reference" if kind == "reference" else "mytrader",
                ",".join(urls),
                str(args.connections),
                str(args.interval),
                args.pings,
            ],
            # the client is the instrument: where it shares a CPU with a server (the follower
            # in --processes 2) it yields to it, as a client on another machine would
            preexec_fn=pinned(args.client_cpu, args.client_nice),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdout is not None
        assert client.stdin is not None
        connected = json.loads(client.stdout.readline())["connected"]
        t0 = time.time() + args.warmup
        t1 = t0 + args.duration
        client.stdin.write(f"{t0} {t1}\n")
        client.stdin.flush()
        time.sleep(max(0.0, t0 - time.time() - 0.5))
        rss_after = [rss_kib(s.pid) for s in servers]
        time.sleep(max(0.0, t0 - time.time() - 0.05))
        m0 = [scrape(u) for u in urls] if kind != "reference" else [{}]
        time.sleep(max(0.0, t0 - time.time()))
        cpu0 = [cpu_s(s.pid) for s in servers]
        time.sleep(max(0.0, t1 - time.time()))
        cpu1 = [cpu_s(s.pid) for s in servers]
        m1 = [scrape(u) for u in urls] if kind != "reference" else [{}]
        views = [
            {k: after[k] - before.get(k, 0.0) for k in after}
            for before, after in zip(m0, m1, strict=True)
        ]
        result = json.loads(client.stdout.readline())
        client.wait(60)
        for per, role, a, b, c0, c1, view in zip(
            result["per_server"], roles, rss_before, rss_after, cpu0, cpu1, views, strict=True
        ):
            per |= {
                "role": role,
                "server_cpu_s": c1 - c0,
                "kib_per_connection": (b - a) / max(1, per["connected"]),
                "server": view,
            }
        server_cpu = sum(cpu1) - sum(cpu0)
        return {
            "kind": kind,
            "load1": load,
            "connected": connected,
            "kib_per_connection": (sum(rss_after) - sum(rss_before)) / max(1, connected),
            "server_cpu_s": server_cpu,
            "cpu_us_per_msg": 1e6 * server_cpu / max(1, result["received"]),
            "delivered": result["received"] / max(1, result["scheduled"]),
            "server": next((v for v in views if v.get("feed_scheduled")), views[0]),
            **result,
        }
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        if prefix:
            drop_redis_keys(args.redis, prefix)


KEYS = (
    ("delivered", "delivered/scheduled", "{:.5f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p99_ms", "p99 ms", "{:.1f}"),
    ("max_ms", "max ms", "{:.1f}"),
    ("cpu_us_per_msg", "server CPU µs/msg", "{:.1f}"),
    ("kib_per_connection", "memory KiB/conn", "{:.1f}"),
)
GOALS = (  # (key, limit on ours / reference, how it is read)
    ("p50_ms", 1.3, "p50 <= 1.3x reference"),
    ("p99_ms", 1.5, "p99 <= 1.5x reference"),
    ("cpu_us_per_msg", 1.3, "CPU per message <= 1.3x reference"),
    ("kib_per_connection", 1.3, "memory per connection <= 1.3x reference"),
)


def report(results: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    by = {k: [r for r in results if r["kind"] == k] for k in KINDS}
    pairs = list(zip(by["mytrader"], by["reference"], strict=False))
    rate = 1 / args.interval
    lines = [
        f"### {args.connections} clients x {rate:g} ticks/s (one record per frame)",
        "",
        f"Command: `{command}` — {len(pairs)} paired rounds (order hub, reference, reference, "
        f"hub, ...), fresh servers each round; each client pings every {PING_S:g} s "
        f"({args.pings}); load average (1 min) at round starts "
        f"{min(r['load1'] for r in results):.2f}-{max(r['load1'] for r in results):.2f} on "
        f"{os.cpu_count()} CPUs.",
        "",
        "| server | " + " | ".join(title for _, title, _ in KEYS) + " |",
        "|---|" + "---|" * len(KEYS),
    ]
    for kind in KINDS:
        cells = []
        for key, _, fmt in KEYS:
            values = [r[key] for r in by[kind]]
            cells.append(
                f"{fmt.format(statistics.median(values))} "
                f"({fmt.format(min(values))}-{fmt.format(max(values))})"
            )
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "Median (range) over the rounds.", "", "| goal | measured | verdict |"]
    lines.append("|---|---|---|")
    worst = min(r["delivered"] for r in by["mytrader"])
    lines.append(
        f"| delivered >= 0.999 of scheduled (every round) | worst round {worst:.5f} "
        f"| {'met' if worst >= 0.999 else 'NOT met'} |"
    )
    for key, limit, text in GOALS:
        # the ratio of the medians; the paired rounds' own ratios give the spread
        ratios = [a[key] / b[key] for a, b in pairs if b[key] > 0]
        ratio = statistics.median(r[key] for r in by["mytrader"]) / statistics.median(
            r[key] for r in by["reference"]
        )
        lines.append(
            f"| {text} | {ratio:.2f}x (paired rounds {min(ratios):.2f}-{max(ratios):.2f}x) "
            f"| {'met' if ratio <= limit else 'NOT met'} |"
        )
    lines += ["", "Per round (kind: load, delivered, p50/p99/max ms, CPU µs/msg, KiB/conn):", ""]
    for r in results:
        lines.append(
            f"- {r['kind']}: load {r['load1']:.2f}, {r['delivered']:.5f}, "
            f"{r['p50_ms']:.1f}/{r['p99_ms']:.1f}/{r['max_ms']:.1f}, "
            f"{r['cpu_us_per_msg']:.1f}, {r['kib_per_connection']:.1f} "
            f"(max records/frame {r['max_records_per_frame']}, "
            f"{r['record_bytes']:.0f} B/record)"
        )
    views = [r["server"] for r in by["mytrader"] if "gc2_count" in r.get("server", {})]
    if views:
        lines += [
            "",
            "Hub server's own metrics over each window (full GCs / their total pause ms / "
            "collections of any generation over 20 ms / loop-lag samples > 20 ms / > 100 ms / "
            "feed steps skipped of scheduled): "
            + ", ".join(
                f"{v['gc2_count']:.0f} / {1000 * v['gc2_sum']:.0f} / "
                f"{v.get('gc_over_20ms', 0):.0f} / {v.get('loop_lag_over_20ms', 0):.0f} / "
                f"{v['loop_lag_over_100ms']:.0f} / {v['feed_skipped']:.0f} of "
                f"{v['feed_scheduled']:.0f}"
                for v in views
            )
            + ".",
        ]
        lines += _pause_goal(views, args)
    return "\n".join(lines) + "\n"


SCALEOUT_KEYS = KEYS[:5]


def report_scaleout(results: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    """One process against ``args.processes`` processes sharing Redis, the same total N."""
    one = [r for r in results if r["kind"] == "mytrader"]
    many = [r for r in results if r["kind"] == "scaleout"]
    pairs = list(zip(one, many, strict=False))
    k = args.processes
    rate = 1 / args.interval
    rows: list[tuple[str, list[dict[str, Any]]]] = [
        (f"1 process, {args.connections} clients", one),
        (f"{k} processes, all {args.connections} clients", many),
    ]
    for i in range(k):
        per = [
            r["per_server"][i] | {"cpu_us_per_msg": _cpu_per_msg(r["per_server"][i])} for r in many
        ]
        role = per[0]["role"] if per else "?"
        rows.append(
            (f"{k} processes: process {i + 1} ({role}), {per[0]['connected']} clients", per)
        )
    cpus = ", ".join(f"server {i + 1} on CPU {i % 2}" for i in range(k))
    lines = [
        f"### {args.connections} clients x {rate:g} ticks/s: 1 process vs {k} processes with Redis",
        "",
        f"Command: `{command}` — {len(pairs)} paired rounds (order 1 process, {k} processes, "
        f"{k} processes, 1 process, ...), fresh servers each round, a fresh Redis prefix per "
        f"round (its keys deleted after). The single process is the embedded default (no "
        f"Redis) on CPU 0; the {k} processes share Redis ({args.redis}) and one SQLite data dir, "
        f"{cpus}; the client (one process, clients dealt round-robin) on CPU "
        f"{args.client_cpu} in both, at niceness {args.client_nice} (so the follower sharing its "
        f"CPU runs first). Load average (1 min) at round starts "
        f"{min(r['load1'] for r in results):.2f}-{max(r['load1'] for r in results):.2f} on "
        f"{os.cpu_count()} CPUs (Redis itself is not pinned).",
        "",
        "| | " + " | ".join(title for _, title, _ in SCALEOUT_KEYS) + " |",
        "|---|" + "---|" * len(SCALEOUT_KEYS),
    ]
    for name, rounds in rows:
        cells = []
        for key, _, fmt in SCALEOUT_KEYS:
            values = [r[key] for r in rounds]
            cells.append(
                f"{fmt.format(statistics.median(values))} "
                f"({fmt.format(min(values))}-{fmt.format(max(values))})"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Median (range) over the rounds.", "", "| goal | measured | verdict |"]
    lines.append("|---|---|---|")
    worst = min(min(p["delivered"] for p in r["per_server"]) for r in many)
    lines.append(
        f"| {k} processes: every process delivers >= 0.999 of scheduled (every round) "
        f"| worst process-round {worst:.5f} | {'met' if worst >= 0.999 else 'NOT met'} |"
    )
    for key, limit in (("p50_ms", P_SAME), ("p99_ms", P_SAME)):
        ratios = [b[key] / a[key] for a, b in pairs if a[key] > 0]
        ratio = statistics.median(r[key] for r in many) / statistics.median(r[key] for r in one)
        worst_proc = max(
            statistics.median(r["per_server"][i][key] for r in many) for i in range(k)
        ) / statistics.median(r[key] for r in one)
        lines.append(
            f"| {key[:3]} of {k} processes (overall, and the worse process) <= {limit:g}x "
            f"1 process | {ratio:.2f}x, worse process {worst_proc:.2f}x (paired rounds "
            f"{min(ratios):.2f}-{max(ratios):.2f}x) "
            f"| {'met' if max(ratio, worst_proc) <= limit else 'NOT met'} |"
        )
    hops = [
        r["per_server"][1]["p50_ms"] - r["per_server"][0]["p50_ms"]
        for r in many
        if len(r["per_server"]) > 1
    ]
    if hops:
        fence = [b["per_server"][0]["p50_ms"] - a["p50_ms"] for a, b in pairs]
        roles = sorted({"/".join(p["role"] for p in r["per_server"]) for r in many})
        lines += [
            "",
            f"Follower p50 - leader p50 (the follower's extra hop: Redis pub/sub to it, per "
            f"round): median {statistics.median(hops):.1f} ms (range {min(hops):.1f}-"
            f"{max(hops):.1f}). Leader p50 - 1 process p50 (the leader publishes each feed step "
            f"through a fenced Redis script before it delivers it, paired rounds): median "
            f"{statistics.median(fence):.1f} ms (range {min(fence):.1f}-{max(fence):.1f}). "
            f"Roles seen (process 1/2, from /health): {', '.join(roles)}.",
        ]
    lines += [
        "",
        "Per round (kind: load, delivered, p50/p99/max ms, server CPU µs/msg; for "
        f"{k} processes the same per process):",
        "",
    ]
    for r in results:
        line = (
            f"- {r['kind']}: load {r['load1']:.2f}, {r['delivered']:.5f}, "
            f"{r['p50_ms']:.1f}/{r['p99_ms']:.1f}/{r['max_ms']:.1f}, {r['cpu_us_per_msg']:.1f}"
        )
        if r.get("closed_by_server"):
            line += f" ({r['closed_by_server']} connections closed by the server)"
        if r["kind"] == "scaleout":
            line += " — " + "; ".join(
                f"{p['role']}: {p['delivered']:.5f}, "
                f"{p['p50_ms']:.1f}/{p['p99_ms']:.1f}/{p['max_ms']:.1f}, "
                f"{_cpu_per_msg(p):.1f}"
                for p in r["per_server"]
            )
        lines.append(line)
    views = [
        (r["kind"], v)
        for r in results
        for v in [p.get("server", {}) for p in r["per_server"]] or [r["server"]]
        if "gc2_count" in v
    ]
    if views:
        lines += [
            "",
            "Each hub server's own metrics over each window (full GCs / their total pause ms / "
            "loop-lag samples > 20 ms / > 100 ms / feed steps skipped of scheduled; the "
            "follower runs no feed): "
            + ", ".join(
                f"{kind} {v['gc2_count']:.0f} / {1000 * v['gc2_sum']:.0f} / "
                f"{v.get('loop_lag_over_20ms', 0):.0f} / "
                f"{v['loop_lag_over_100ms']:.0f} / {v.get('feed_skipped', 0):.0f} of "
                f"{v.get('feed_scheduled', 0):.0f}"
                for kind, v in views
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


def _pause_goal(views: list[dict[str, float]], args: argparse.Namespace) -> list[str]:
    """The verdict on "no event-loop pause over 20 ms" from the hub's own metrics: loop-lag
    samples over 20 ms, and collections (timed exactly) over 20 ms."""
    worst = max(v.get("loop_lag_over_20ms", 0.0) for v in views)
    worst_gc = max(v.get("gc_over_20ms", 0.0) for v in views)
    sample_ms = 1000 * args.loop_sample
    seen = (
        f"samples over 20 ms in the worst window: {worst:.0f}; collections over 20 ms: "
        f"{worst_gc:.0f}"
    )
    if sample_ms > 5:
        return [
            "",
            f"No event-loop pause over 20 ms: **not measured** — the hub sampled its loop every "
            f"{sample_ms:g} ms, which shows only pauses over {20 + sample_ms:g} ms ({seen}); "
            f"run with --loop-sample 0.002 to read it.",
        ]
    return [
        "",
        f"No event-loop pause over 20 ms: the hub sampled its loop every {sample_ms:g} ms "
        f"(MYTRADER_LOOP_SAMPLE_S), so any pause longer than {20 + sample_ms:g} ms shows as a "
        f"sample over 20 ms, and every such sample is a pause of at least 20 ms; {seen} — "
        + ("**met**." if worst == 0 and worst_gc == 0 else "**NOT met**."),
    ]


def _cpu_per_msg(per: dict[str, Any]) -> float:
    return 1e6 * per.get("server_cpu_s", 0.0) / max(1, per["received"])


P_SAME = 1.25  # "the same p99": within 25 % of one process's


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve = serve_mytrader if sys.argv[2] == "mytrader" else serve_reference
        serve(Path(sys.argv[3]), float(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        run_client(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.1, help="feed interval, seconds")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=10.0, help="measured window, s")
    parser.add_argument("--output", type=Path, help="append the markdown report here")
    parser.add_argument("--json", type=Path, help="write every round's raw figures here")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="2+: compare 1 process with this many sharing Redis (no reference rounds)",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU the client is pinned to")
    parser.add_argument(
        "--client-nice", type=int, default=10, help="the client's niceness (0: as the servers)"
    )
    parser.add_argument(
        "--pings",
        choices=("staggered", "synchronized"),
        default="staggered",
        help="the clients' keep-alive pings: each on its own timer, or all at once",
    )
    parser.add_argument(
        "--loop-sample",
        type=float,
        default=0.1,
        help="the hub's loop-lag sampling period, s (the server's default 0.1; 0.002 to show "
        "pauses over 20 ms, at ~3.5 µs more server CPU per message at 10^4 messages/s)",
    )
    args = parser.parse_args()
    command = "python benchmarks/hub_wire.py " + " ".join(sys.argv[1:])
    kinds = KINDS if args.processes < 2 else ("mytrader", "scaleout")
    order = [k for i in range(args.rounds) for k in (kinds if i % 2 == 0 else kinds[::-1])]
    results = []
    for kind in order:
        results.append(run_round(kind, args))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    if args.processes < 2:
        text = report(results, args, command)
    else:
        text = report_scaleout(results, args, command)
    print(text)
    if args.output:
        with args.output.open("a") as out:
            out.write("\n" + text)


if __name__ == "__main__":
    main()
