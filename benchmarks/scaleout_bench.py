"""Scale-out benchmark: 1, 2 and 3 ``mytrader-server`` processes on PostgreSQL + Redis.

    .venv/bin/python benchmarks/scaleout_bench.py [--rounds 5] [--duration 8] [--concurrency 30]
        [--output docs/performance-scaleout.md]

Each round starts a fresh cluster per configuration (a new PostgreSQL database, a new Redis key
prefix), interleaving the configurations (1, 2, 3, 1, 2, 3, ...) so that the machine's noise hits
all of them alike, and measures:

1. **Orders accepted per second** and their latency: ``--users`` registered users, each with its
   own token (so neither the per-user order limit nor the account-row lock serialises the load),
   ``--concurrency`` closed-loop asyncio workers (httpx, HTTP/1.1 keep-alive) placing small
   market buys for AAPL with unique ``client_order_id``s, round-robin directly over the
   processes' ports (no proxy: nginx would be one more process on the same two cores, and its
   cost is not what is measured), for ``--duration`` seconds after ``--warmup`` seconds. 2xx
   counts as accepted; anything else is counted apart. Throughput counts the responses that
   arrive within the measured window; latency (send to response) is of those responses.
   Then an open-loop run at ``--open-rate`` orders/s, latency from each order's *intended*
   send time (no coordinated omission).
2. **Hub messages across processes**: one SignalR JSON client per process on ``/hubs/trading``
   (negotiate, WebSocket, handshake) for one user; ``--hub-orders`` orders placed through process
   1; every client must receive each order's ``new`` and ``fill`` OrderUpdate. Delivered
   fraction, and latency of each push after the POST's response (negative when the push beats
   the HTTP response).
3. **Failover** (2 and 3 processes): a ``/hubs/market-data`` client subscribed to AAPL on every
   follower; SIGKILL the feed leader (``GET /health`` → ``redis:connection`` output
   ``leader``) and time until the first tick stamped after the kill reaches a survivor.

Nothing is pinned: the servers, PostgreSQL, Redis and this load generator share the machine's
cores, so expect contention, not linear scaling. Loopback only; about 10 minutes by default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
SECRET = "benchmark-secret-that-is-long-enough-0123456789"
RS = "\x1e"
SYMBOL = "AAPL"
PASSWORD = "scaleout-bench-password"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DASH = "\u2013"  # en dash, for ranges


# ---- helpers ---------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (from /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_backends(db_name: str) -> list[int]:
    """The PostgreSQL server processes serving connections to this database."""
    found = []
    marker = f" {db_name} ".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"postgres:") and marker in cmdline:
                found.append(int(entry.name))
    return found


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@dataclass
class Cluster:
    servers: list[Server]
    db_name: str
    prefix: str
    work: Path


def server_env(args: argparse.Namespace, db_url: str, prefix: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYTRADER_")}
    env.update(
        {
            "MYTRADER_DATA_DIR": str(work / "data"),
            "MYTRADER_DATABASE_URL": db_url,
            "MYTRADER_REDIS_URL": args.redis,
            "MYTRADER_REDIS_PREFIX": prefix,
            "MYTRADER_JWT_SECRET": SECRET,
            "MYTRADER_ORDER_RATE_PER_MINUTE": "100000000",
            "MYTRADER_LOGIN_RATE_PER_MINUTE": "100000000",
            "MYTRADER_FEED_INTERVAL_S": "0.1",
            "MYTRADER_STARTING_CASH": "1000000000",
            "MYTRADER_LOG_LEVEL": "warning",
        }
    )
    return env


def spawn(env: dict[str, str], work: Path, index: int) -> tuple[subprocess.Popen[bytes], Path]:
    ready = work / f"ready-{index}"
    log = work / f"server-{index}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mytrader_server", "--port", "0", "--ready-file", str(ready)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, ready


def _ready_url(ready: Path) -> str:
    return ready.read_text().strip() if ready.exists() else ""


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def wait_ready(proc: subprocess.Popen[bytes], ready: Path, log: Path) -> Server:
    deadline = time.monotonic() + 60
    while not (url := _ready_url(ready)):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server failed to start:\n{_tail(log)}")
        await asyncio.sleep(0.05)
    return Server(proc, url, log)


async def start_cluster(args: argparse.Namespace, k: int, tag: str) -> Cluster:
    db_name = f"scaleout_{tag}"
    admin = await asyncpg.connect(args.postgres)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{db_name}"')
    finally:
        await admin.close()
    base = args.postgres.rsplit("/", 1)[0]
    prefix = f"scaleout-{tag}-{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix=f"scaleout-{tag}-"))
    env = server_env(args, f"{base}/{db_name}", prefix, work)
    servers: list[Server] = []
    try:
        first, ready = spawn(env, work, 0)  # the first migrates the fresh database
        servers.append(await wait_ready(first, ready, work / "server-0.log"))
        rest = [spawn(env, work, i) for i in range(1, k)]
        for i, (proc, ready) in enumerate(rest, start=1):
            servers.append(await wait_ready(proc, ready, work / f"server-{i}.log"))
    except BaseException:
        for s in servers:
            s.process.kill()
        raise
    return Cluster(servers, db_name, prefix, work)


async def stop_cluster(args: argparse.Namespace, cluster: Cluster) -> list[str]:
    """Stop every process; return notable log lines (tracebacks, errors)."""
    for s in cluster.servers:
        if s.process.poll() is None:
            s.process.send_signal(signal.SIGTERM)
    for s in cluster.servers:
        try:
            await asyncio.to_thread(s.process.wait, 15)
        except subprocess.TimeoutExpired:
            s.process.kill()
            s.process.wait()
    notes = []
    for i, s in enumerate(cluster.servers):
        for line in s.log.read_text(errors="replace").splitlines():
            if any(w in line for w in ("Traceback", "ERROR", "Error", "error", "CRITICAL")):
                notes.append(f"process {i + 1}: {line.strip()[:200]}")
    admin = await asyncpg.connect(args.postgres)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{cluster.db_name}" WITH (FORCE)')
    finally:
        await admin.close()
    store = aioredis.from_url(args.redis)  # the servers leave feed-seq / feed-epoch behind
    try:
        keys = [key async for key in store.scan_iter(match=f"{cluster.prefix}:*")]
        if keys:
            await store.delete(*keys)
    finally:
        await store.aclose()
    return notes


async def register(client: httpx.AsyncClient, url: str, name: str) -> str:
    creds = {"username": name, "password": PASSWORD}
    r = await client.post(url + "/api/auth/register", json=creds)
    if r.status_code != 201:
        raise SystemExit(f"register {name}: {r.status_code} {r.text}")
    r = await client.post(url + "/api/auth/login", json=creds)
    if r.status_code != 200:
        raise SystemExit(f"login {name}: {r.status_code} {r.text}")
    return str(r.json()["accessToken"])


def order_body(coid: str) -> dict[str, str]:
    return {"symbol": SYMBOL, "qty": "1", "side": "buy", "type": "market", "client_order_id": coid}


# ---- 1. orders -------------------------------------------------------------------------------


@dataclass
class OrderFigures:
    accepted_per_s: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    rejected: Counter[str] = field(default_factory=Counter)
    server_cpu: float = 0.0  # cores busy, all server processes
    postgres_cpu: float = 0.0  # cores busy, PostgreSQL backends of this database
    client_cpu: float = 0.0  # cores busy, this load generator
    open_rate: float = 0.0
    open_sent: int = 0
    open_ok: int = 0
    open_p50_ms: float = float("nan")
    open_p99_ms: float = float("nan")


async def post_order(
    client: httpx.AsyncClient, url: str, token: str, coid: str
) -> tuple[str, httpx.Response | None]:
    try:
        r = await client.post(
            url + "/api/orders",
            json=order_body(coid),
            headers={"authorization": f"Bearer {token}"},
        )
    except httpx.HTTPError as exc:
        return type(exc).__name__, None
    return str(r.status_code), r


async def closed_loop(
    cluster: Cluster, tokens: list[str], args: argparse.Namespace, tag: str
) -> OrderFigures:
    urls = [s.url for s in cluster.servers]
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=None)
    clients = {
        u: httpx.AsyncClient(limits=limits, timeout=30.0, http2=False, trust_env=False)
        for u in urls
    }
    rr = itertools.cycle(urls)
    start = time.perf_counter()
    t0, t1 = start + args.warmup, start + args.warmup + args.duration
    latencies: list[float] = []
    figures = OrderFigures()
    accepted = 0
    seq = itertools.count()

    async def worker(w: int) -> None:
        nonlocal accepted
        token = tokens[w % len(tokens)]
        while True:
            sent = time.perf_counter()
            if sent >= t1:
                return
            url = next(rr)
            status, _ = await post_order(clients[url], url, token, f"{tag}-c{next(seq)}")
            done = time.perf_counter()
            if t0 <= done <= t1:  # completions in the window: the throughput measure
                if status.startswith("2"):
                    accepted += 1
                    latencies.append((done - sent) * 1000)
                else:
                    figures.rejected[status] += 1

    cpu_task = asyncio.create_task(_cpu_window(cluster, t0, t1))
    try:
        await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
        figures.server_cpu, figures.postgres_cpu, figures.client_cpu = await cpu_task
        figures.accepted_per_s = accepted / args.duration
        figures.p50_ms = pct(latencies, 0.50)
        figures.p99_ms = pct(latencies, 0.99)
        if args.open_rate > 0:
            await open_loop(clients, urls, tokens, args, tag, figures)
    finally:
        for c in clients.values():
            await c.aclose()
    return figures


async def _cpu_window(cluster: Cluster, t0: float, t1: float) -> tuple[float, float, float]:
    """Cores busy over [t0, t1]: the servers, their PostgreSQL backends, this process."""
    await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
    pids = [s.process.pid for s in cluster.servers]
    backends0 = {p: cpu_seconds(p) for p in postgres_backends(cluster.db_name)}
    s0, c0, w0 = sum(map(cpu_seconds, pids)), time.process_time(), time.perf_counter()
    await asyncio.sleep(max(0.0, t1 - time.perf_counter()))
    s1, c1, w1 = sum(map(cpu_seconds, pids)), time.process_time(), time.perf_counter()
    backends1 = {p: cpu_seconds(p) for p in postgres_backends(cluster.db_name)}
    pg = sum(v - backends0.get(p, 0.0) for p, v in backends1.items())
    wall = w1 - w0
    return (s1 - s0) / wall, pg / wall, (c1 - c0) / wall


async def open_loop(
    clients: dict[str, httpx.AsyncClient],
    urls: list[str],
    tokens: list[str],
    args: argparse.Namespace,
    tag: str,
    figures: OrderFigures,
) -> None:
    """Orders at a fixed rate; latency from each order's intended send time."""
    rate, seconds = args.open_rate, args.open_seconds
    total = int(rate * seconds)
    latencies: list[float] = []
    ok = 0
    start = time.perf_counter() + 0.1
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int, intended: float) -> None:
        nonlocal ok
        url = urls[i % len(urls)]
        status, _ = await post_order(clients[url], url, tokens[i % len(tokens)], f"{tag}-o{i}")
        latencies.append((time.perf_counter() - intended) * 1000)
        if status.startswith("2"):
            ok += 1
        else:
            figures.rejected[f"open:{status}"] += 1

    for i in range(total):
        intended = start + i / rate
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, intended)))
    await asyncio.gather(*tasks)
    figures.open_rate, figures.open_sent, figures.open_ok = rate, total, ok
    figures.open_p50_ms = pct(latencies, 0.50)
    figures.open_p99_ms = pct(latencies, 0.99)


# ---- SignalR client --------------------------------------------------------------------------


@dataclass
class HubClient:
    ws: ClientConnection
    pushes: list[tuple[float, float, dict[str, Any]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    target: str = ""

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                now, wall = time.perf_counter(), time.time()
                text = message if isinstance(message, str) else message.decode()
                for raw in text.split(RS)[:-1]:
                    record = json.loads(raw)
                    if record.get("type") == 1 and record.get("target") == self.target:
                        self.pushes.append((now, wall, record["arguments"][0]))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def open_hub(
    http: httpx.AsyncClient, url: str, hub: str, target: str, token: str | None
) -> HubClient:
    """negotiate (v1) + WebSocket + JSON handshake, then read pushes of ``target``."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = await http.post(f"{url}/hubs/{hub}/negotiate?negotiateVersion=1", headers=headers)
    r.raise_for_status()
    conn_token = r.json()["connectionToken"]
    ws = await connect(
        url.replace("http://", "ws://") + f"/hubs/{hub}?id={conn_token}",
        additional_headers=headers,
        max_size=None,
    )
    await ws.send('{"protocol":"json","version":1}' + RS)
    reply = await asyncio.wait_for(ws.recv(), 10)
    if reply != "{}" + RS:
        raise SystemExit(f"handshake refused: {reply!r}")
    client = HubClient(ws, target=target)
    client.task = asyncio.create_task(client._read())
    return client


# ---- 2. hub messages across processes --------------------------------------------------------


@dataclass
class HubFigures:
    expected: int = 0
    delivered: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    remote_p50_ms: float = float("nan")
    remote_p99_ms: float = float("nan")
    from_send_p50_ms: float = float("nan")
    from_send_p99_ms: float = float("nan")
    failed_orders: int = 0


async def hub_messages(cluster: Cluster, token: str, args: argparse.Namespace) -> HubFigures:
    figures = HubFigures()
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http:
        hubs = [
            await open_hub(http, s.url, "trading", "OrderUpdate", token) for s in cluster.servers
        ]
        try:
            await asyncio.sleep(0.3)
            answered: dict[str, float] = {}
            sent_at: dict[str, float] = {}
            first = cluster.servers[0].url
            period = 1.0 / args.hub_rate
            start = time.perf_counter()
            for i in range(args.hub_orders):
                delay = start + i * period - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent = time.perf_counter()
                status, resp = await post_order(http, first, token, f"hub-{uuid.uuid4().hex[:12]}")
                if resp is None or not status.startswith("2"):
                    figures.failed_orders += 1
                    continue
                order_id = str(resp.json()["id"])
                answered[order_id], sent_at[order_id] = time.perf_counter(), sent
            figures.expected = 2 * len(answered) * len(hubs)  # "new" and "fill", everywhere

            def delivered() -> int:
                return sum(1 for h in hubs for _, _, p in h.pushes if p["order"]["id"] in answered)

            deadline = time.perf_counter() + args.hub_grace
            while delivered() < figures.expected and time.perf_counter() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            figures.delivered = delivered()
            every: list[float] = []
            remote: list[float] = []
            from_send: list[float] = []
            for i, h in enumerate(hubs):
                for arrived, _, p in h.pushes:
                    t = answered.get(p["order"]["id"])
                    if t is not None:
                        every.append((arrived - t) * 1000)
                        from_send.append((arrived - sent_at[p["order"]["id"]]) * 1000)
                        if i > 0:
                            remote.append((arrived - t) * 1000)
            figures.p50_ms, figures.p99_ms = pct(every, 0.5), pct(every, 0.99)
            figures.remote_p50_ms, figures.remote_p99_ms = pct(remote, 0.5), pct(remote, 0.99)
            figures.from_send_p50_ms = pct(from_send, 0.5)
            figures.from_send_p99_ms = pct(from_send, 0.99)
        finally:
            for h in hubs:
                await h.close()
    return figures


# ---- 3. failover ------------------------------------------------------------------------------


def tick_time(payload: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(payload["timestamp"]).replace("Z", "+00:00")).timestamp()


async def roles(http: httpx.AsyncClient, cluster: Cluster) -> list[str]:
    out = []
    for s in cluster.servers:
        try:
            body = (await http.get(s.url + "/health")).json()
            out.append(str(body["checks"]["redis:connection"][0]["output"]))
        except Exception as exc:
            out.append(f"? {exc}")
    return out


async def failover(cluster: Cluster) -> tuple[float, str]:
    """Seconds from SIGKILL of the feed leader to the first later tick on a survivor."""
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
        found = await roles(http, cluster)
        if found.count("leader") != 1:
            return float("nan"), f"roles before the kill: {found}"
        leader = found.index("leader")
        survivors = [s for i, s in enumerate(cluster.servers) if i != leader]
        clients = [
            await open_hub(http, s.url, "market-data", "ReceiveMarketData", None) for s in survivors
        ]
        try:
            for c in clients:
                await c.ws.send(
                    json.dumps({"type": 1, "target": "SubscribeToSymbols", "arguments": [[SYMBOL]]})
                    + RS
                )
            deadline = time.perf_counter() + 10
            while any(len(c.pushes) < 5 for c in clients):  # ticks are flowing everywhere
                if time.perf_counter() > deadline:
                    return float("nan"), "no ticks before the kill"
                await asyncio.sleep(0.05)
            kill_wall, kill_perf = time.time(), time.perf_counter()
            cluster.servers[leader].process.send_signal(signal.SIGKILL)
            deadline = kill_perf + 30

            def first_after() -> float | None:
                times = [
                    arrived
                    for c in clients
                    for arrived, _, p in c.pushes
                    if arrived > kill_perf and tick_time(p) > kill_wall
                ]
                return min(times) if times else None

            while (got := first_after()) is None:
                if time.perf_counter() > deadline:
                    return float("nan"), "no tick within 30 s of the kill"
                await asyncio.sleep(0.01)
            after = await roles(http, Cluster(survivors, "", "", cluster.work))
            return got - kill_perf, f"killed process {leader + 1}; survivors: {after}"
        finally:
            for c in clients:
                await c.close()


# ---- one round --------------------------------------------------------------------------------


@dataclass
class Round:
    k: int
    index: int
    load_before: str
    load_after: str = ""
    orders: OrderFigures = field(default_factory=OrderFigures)
    hub: HubFigures = field(default_factory=HubFigures)
    failover_s: float = float("nan")
    notes: list[str] = field(default_factory=list)


async def one_round(args: argparse.Namespace, k: int, index: int) -> Round:
    tag = f"{os.getpid()}_{index}_{k}"
    result = Round(k, index, loadavg())
    cluster = await start_cluster(args, k, tag)
    try:
        async with httpx.AsyncClient(timeout=60.0, trust_env=False) as http:
            urls = [s.url for s in cluster.servers]
            names = [f"bench{i}" for i in range(args.users + 1)]
            tokens = await asyncio.gather(
                *(register(http, urls[i % k], n) for i, n in enumerate(names))
            )
        hub_token, load_tokens = tokens[0], list(tokens[1:])
        result.orders = await closed_loop(cluster, load_tokens, args, tag)
        result.hub = await hub_messages(cluster, hub_token, args)
        if k > 1:
            result.failover_s, note = await failover(cluster)
            result.notes.append(f"failover: {note}")
    finally:
        result.notes += await stop_cluster(args, cluster)
        result.load_after = loadavg()
    return result


# ---- report -----------------------------------------------------------------------------------


def med_spread(values: list[float], fmt: str) -> str:
    vals = [v for v in values if v == v]  # drop NaN
    if not vals:
        return "n/a"
    return (
        f"{format(statistics.median(vals), fmt)} "
        f"({format(min(vals), fmt)}{DASH}{format(max(vals), fmt)})"
    )


def report(rounds: list[Round], args: argparse.Namespace, command: str, wall_s: float) -> str:
    ks = sorted({r.k for r in rounds})
    by_k = {k: [r for r in rounds if r.k == k] for k in ks}
    lines = [
        "# Scale-out: 1, 2 and 3 processes on PostgreSQL + Redis",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {wall_s / 60:.1f} min; "
        f"{os.cpu_count()} vCPUs ({platform.processor() or platform.machine()}), Python "
        f"{platform.python_version()}; load average (1/5/15 min) before the first round "
        f"{rounds[0].load_before}, after the last {rounds[-1].load_after}. Nothing pinned: the "
        "servers, PostgreSQL, Redis and the load generator share both cores. "
        f"{args.rounds} rounds, configurations interleaved (1, 2, 3, 1, 2, 3, ...), a fresh "
        "database and Redis prefix per configuration and round. "
        f"Orders: {args.users} users, {args.concurrency} closed-loop workers, "
        f"{args.warmup:g} s warm-up + {args.duration:g} s measured; open loop "
        f"{args.open_rate:g} orders/s for {args.open_seconds:g} s; hub: {args.hub_orders} orders "
        f"at {args.hub_rate:g}/s through process 1. Feed interval 0.1 s.",
        "",
        f"Median over rounds (min{DASH}max):",
        "",
        "| figure | " + " | ".join(f"{k} process{'es' if k > 1 else ''}" for k in ks) + " |",
        "|---|" + "---|" * len(ks),
    ]

    def row(label: str, get: Any, fmt: str) -> None:
        lines.append(
            f"| {label} | "
            + " | ".join(med_spread([get(r) for r in by_k[k]], fmt) for k in ks)
            + " |"
        )

    row("orders accepted/s (closed loop)", lambda r: r.orders.accepted_per_s, ",.0f")
    row("order latency p50 ms", lambda r: r.orders.p50_ms, ".1f")
    row("order latency p99 ms", lambda r: r.orders.p99_ms, ".1f")
    row(
        "non-2xx / failed orders per round (closed loop)",
        lambda r: sum(v for s, v in r.orders.rejected.items() if not s.startswith("open:")),
        ".0f",
    )
    row("server CPU, cores busy (all processes)", lambda r: r.orders.server_cpu, ".2f")
    row("PostgreSQL backends CPU, cores busy", lambda r: r.orders.postgres_cpu, ".2f")
    row(
        "server CPU per accepted order, ms (all processes)",
        lambda r: (
            1000 * r.orders.server_cpu / r.orders.accepted_per_s
            if r.orders.accepted_per_s
            else float("nan")
        ),
        ".1f",
    )
    row(
        "PostgreSQL CPU per accepted order, ms",
        lambda r: (
            1000 * r.orders.postgres_cpu / r.orders.accepted_per_s
            if r.orders.accepted_per_s
            else float("nan")
        ),
        ".1f",
    )
    row("load generator CPU, cores busy", lambda r: r.orders.client_cpu, ".2f")
    if args.open_rate > 0:
        row(
            f"open loop {args.open_rate:g}/s: accepted fraction",
            lambda r: r.orders.open_ok / r.orders.open_sent if r.orders.open_sent else float("nan"),
            ".3f",
        )
        row(f"open loop {args.open_rate:g}/s: p50 ms", lambda r: r.orders.open_p50_ms, ".1f")
        row(f"open loop {args.open_rate:g}/s: p99 ms", lambda r: r.orders.open_p99_ms, ".1f")
    row(
        "OrderUpdate delivered fraction (all processes)",
        lambda r: r.hub.delivered / r.hub.expected if r.hub.expected else float("nan"),
        ".4f",
    )
    row("OrderUpdate after POST response p50 ms", lambda r: r.hub.p50_ms, ".1f")
    row("OrderUpdate after POST response p99 ms", lambda r: r.hub.p99_ms, ".1f")
    row("OrderUpdate on other processes p50 ms", lambda r: r.hub.remote_p50_ms, ".1f")
    row("OrderUpdate on other processes p99 ms", lambda r: r.hub.remote_p99_ms, ".1f")
    row("OrderUpdate after POST sent p50 ms", lambda r: r.hub.from_send_p50_ms, ".1f")
    row("OrderUpdate after POST sent p99 ms", lambda r: r.hub.from_send_p99_ms, ".1f")
    row("failover: SIGKILL of leader → next tick, s", lambda r: r.failover_s, ".2f")

    lines += ["", "Scaling of closed-loop orders/s, per round (same round's 1-process run):", ""]
    base = {r.index: r.orders.accepted_per_s for r in by_k.get(1, [])}
    lines.append(f"| ratio | median (min{DASH}max) | per round |")
    lines.append("|---|---|---|")
    for k in ks:
        if k == 1:
            continue
        ratios = [r.orders.accepted_per_s / base[r.index] for r in by_k[k] if base.get(r.index)]
        lines.append(
            f"| {k}-proc / 1-proc | {med_spread(ratios, '.2f')} | "
            + ", ".join(f"{x:.2f}" for x in ratios)
            + " |"
        )

    lines += [
        "",
        "Every round:",
        "",
        "| round | procs | load before | orders/s | p50 / p99 ms | non-2xx | server / PostgreSQL / "
        "client CPU | open loop ok/sent, p50 / p99 ms | OrderUpdate delivered, p50 / p99 ms | "
        "failover s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        o, h = r.orders, r.hub
        rejected = ", ".join(f"{s}: {n}" for s, n in sorted(o.rejected.items())) or "0"
        lines.append(
            f"| {r.index + 1} | {r.k} | {r.load_before} | {o.accepted_per_s:,.0f} | "
            f"{o.p50_ms:.1f} / {o.p99_ms:.1f} | {rejected} | "
            f"{o.server_cpu:.2f} / {o.postgres_cpu:.2f} / {o.client_cpu:.2f} | "
            f"{o.open_ok}/{o.open_sent}, {o.open_p50_ms:.1f} / {o.open_p99_ms:.1f} | "
            f"{h.delivered}/{h.expected}, {h.p50_ms:.1f} / {h.p99_ms:.1f} | "
            f"{'—' if r.failover_s != r.failover_s else f'{r.failover_s:.2f}'} |"
        )
    notes = [f"round {r.index + 1}, {r.k} proc: {n}" for r in rounds for n in r.notes]
    if notes:
        lines += ["", "Notes and server log lines seen:", ""]
        lines += [f"- {n}" for n in notes[:80]]
        if len(notes) > 80:
            lines.append(f"- ... and {len(notes) - 80} more")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", default="1,2,3", help="configurations, comma-separated")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=30, help="closed-loop workers")
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--open-rate", type=float, default=25.0, help="0 turns it off")
    parser.add_argument("--open-seconds", type=float, default=5.0)
    parser.add_argument("--hub-orders", type=int, default=100)
    parser.add_argument("--hub-rate", type=float, default=25.0, help="hub orders per second")
    parser.add_argument("--hub-grace", type=float, default=5.0)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    ks = [int(k) for k in args.processes.split(",")]
    command = shlex.join([".venv/bin/python", "benchmarks/scaleout_bench.py", *sys.argv[1:]])
    began = time.monotonic()
    rounds: list[Round] = []
    for index in range(args.rounds):
        for k in ks:
            r = asyncio.run(one_round(args, k, index))
            print(
                f"round {index + 1} k={k}: {r.orders.accepted_per_s:.0f} orders/s "
                f"p50 {r.orders.p50_ms:.1f} p99 {r.orders.p99_ms:.1f} "
                f"rejected {dict(r.orders.rejected)} cpu {r.orders.server_cpu:.2f}/"
                f"{r.orders.postgres_cpu:.2f}/"
                f"{r.orders.client_cpu:.2f} open {r.orders.open_ok}/{r.orders.open_sent} "
                f"p99 {r.orders.open_p99_ms:.1f} hub {r.hub.delivered}/{r.hub.expected} "
                f"p50 {r.hub.p50_ms:.1f} p99 {r.hub.p99_ms:.1f} failover {r.failover_s:.2f} "
                f"load {r.load_before}",
                flush=True,
            )
            for n in r.notes[:10]:
                print("   ", n, flush=True)
            rounds.append(r)
    text = report(rounds, args, command, time.monotonic() - began)
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
