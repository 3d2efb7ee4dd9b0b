"""A scale-out cluster for tests and benchmarks: N ``mytrader-server`` processes on one
PostgreSQL database and the machine's Redis, behind a real nginx running deploy/nginx/mytrader.conf.

- Every process talks to Redis through its own ``CutProxy`` (tests/support/cutproxy.py), so a
  test can partition one process (or all of them) from Redis and heal it again.
- Each cluster has its own Redis key/channel prefix (``MYTRADER_REDIS_PREFIX``): clusters of
  concurrent tests and CI runs never see each other.
- Ports are fixed when the cluster is built, so a killed process restarts on the port nginx's
  upstream lists.
- Processes are started together (all ``Popen`` first, then one wait for every ready file) and
  die with the test process (``PR_SET_PDEATHSIG``), so nothing leaks even if pytest is killed.

Usage (synchronous setup, asynchronous test body)::

    cluster = Cluster.build(tmp_path, database_url, redis_url)
    try:
        cluster.start()                      # three processes at the same moment, plus nginx
        token = cluster.register("alice")    # a fresh source address per user: no rate limit
        status, body = cluster.front.request("POST", "/api/orders", {...}, token)
    finally:
        cluster.close()                      # always: processes, nginx, proxies
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.hubs.wsclient import RS
from tests.support.cutproxy import CutProxy
from tests.support.live import LiveServer, scaled, server_env
from tests.web.support import free_port
from tests.web.test_nginx import CONF, Nginx, start_nginx

STARTING_CASH = Decimal("100000")
PASSWORD = "correct-horse-battery"
#: Settings every cluster process gets (a test may add or override any of them).
CLUSTER_ENV = {
    "MYTRADER_FEED_INTERVAL_S": "0.1",
    "MYTRADER_LOGIN_RATE_PER_MINUTE": "10",
    "MYTRADER_ORDER_RATE_PER_MINUTE": "6000",
    "MYTRADER_HUB_KEEPALIVE_S": "1",
    "MYTRADER_SHUTDOWN_TIMEOUT_S": "3",
    "MYTRADER_LOG_LEVEL": "warning",
}
_PR_SET_PDEATHSIG = 1
_addresses = itertools.count(1)


def fresh_source_address() -> str:
    """A loopback address no other request of this test session used: its own rate buckets."""
    n = next(_addresses)
    return f"127.1.{(n // 250) % 250}.{n % 250 + 2}"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Node:
    """One API process slot: its port, its Redis proxy and (while running) its process."""

    index: int
    port: int
    proxy: CutProxy
    tmp: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    ready_file: Path | None = None
    launches: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def upstream(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def server(self) -> LiveServer:
        """A ``LiveServer`` view of this process (``request``, ``set_faults``, hub helpers)."""
        assert self.process is not None
        assert self.log_path is not None
        return LiveServer(self.url, self.process, self.env, self.tmp, self.log_path)

    def launch(self, extra_env: dict[str, str] | None = None) -> None:
        """Start the process (without waiting for it); see ``Cluster.wait_ready``."""
        assert not self.alive, f"node {self.index} is already running"
        self.launches += 1
        self.ready_file = self.tmp / f"ready-{self.launches}.url"
        self.log_path = self.tmp / f"server-{self.launches}.log"
        self.logs.append(self.log_path)
        env = {**self.env, **(extra_env or {})}
        cmd = [sys.executable, "-m", "mytrader_server", "--port", str(self.port)]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*cmd, "--ready-file", str(self.ready_file)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # spawned from the main thread (see restart)
            )

    def is_ready(self) -> bool:
        if self.process is None or self.ready_file is None:
            return False
        if self.process.poll() is not None:
            raise RuntimeError(
                f"node {self.index} exited with {self.process.returncode}:\n{self.log()[-3000:]}"
            )
        return self.ready_file.exists()

    def kill(self, sig: int = signal.SIGKILL) -> float:
        """Send ``sig`` and wait for the exit; returns the monotonic time the signal was sent."""
        assert self.process is not None
        sent = time.monotonic()
        self.process.send_signal(sig)
        try:
            self.process.wait(scaled(15))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return sent

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def request(
        self, method: str, path: str, body: object | None = None, token: str | None = None
    ) -> tuple[int, Any]:
        return request(self.url, method, path, body, token)


def request(
    base_url: str,
    method: str,
    path: str,
    body: object | None = None,
    token: str | None = None,
    timeout: float = 10.0,
    source: str | None = None,
) -> tuple[int, Any]:
    """One synchronous request (optionally from a given source address): (status, JSON|text)."""
    transport = httpx.HTTPTransport(local_address=source) if source else None
    headers = {"authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(transport=transport, timeout=scaled(timeout)) as client:
        resp = client.request(method, base_url + path, json=body, headers=headers)
    try:
        return resp.status_code, resp.json() if resp.content else None
    except ValueError:
        return resp.status_code, resp.text


def health(base_url: str) -> tuple[int, dict[str, Any]]:
    status, body = request(base_url, "GET", "/health", timeout=5)
    return status, body if isinstance(body, dict) else {}


def redis_role(base_url: str) -> str:
    """``leader``, ``follower`` or ``redis unreachable`` as the process's /health reports it."""
    _, body = health(base_url)
    entries = body.get("checks", {}).get("redis:connection", [])
    output = str(entries[0].get("output", "")) if entries else "?"
    # a cut-off process says why ("redis unreachable: ..."); the role is what matters here
    return "redis unreachable" if output.startswith("redis unreachable") else output


@dataclass
class Cluster:
    tmp: Path
    database_url: str
    redis_url: str
    prefix: str
    nodes: list[Node]
    with_nginx: bool = True
    nginx: Nginx | None = None

    # ---- building and tearing down ----------------------------------------------------------

    @classmethod
    def build(
        cls,
        tmp: Path,
        database_url: str,
        redis_url: str,
        size: int = 3,
        with_nginx: bool = True,
        **env: str,
    ) -> Cluster:
        prefix = f"mytrader-test-{uuid.uuid4().hex[:12]}"
        redis = urlsplit(redis_url)
        nodes = []
        for i in range(size):
            proxy = CutProxy(redis.hostname or "127.0.0.1", redis.port or 6379).start()
            node_tmp = tmp / f"node{i}"
            node_tmp.mkdir(parents=True, exist_ok=True)
            node_env = server_env(
                node_tmp / "data",
                MYTRADER_DATABASE_URL=database_url,
                MYTRADER_REDIS_URL=proxy.url(path=redis.path or "/0"),
                MYTRADER_REDIS_PREFIX=prefix,
                **{**CLUSTER_ENV, **env},
            )
            nodes.append(Node(i, free_port(), proxy, node_tmp, node_env))
        return cls(tmp, database_url, redis_url, prefix, nodes, with_nginx)

    def start(self, timeout: float = 45.0, extra_env: dict[str, str] | None = None) -> float:
        """Launch every process at the same moment, wait for all, start nginx; the seconds taken."""
        started = time.monotonic()
        for node in self.nodes:
            node.launch(extra_env)
        self.wait_ready(self.nodes, timeout)
        if self.with_nginx and self.nginx is None:
            self.nginx = start_nginx(self.tmp, self.upstreams())
        return time.monotonic() - started

    def upstreams(self) -> str:
        """The conf's ``server 127.0.0.1:5002 <parameters>;`` line, repeated for every node with
        the conf's own parameters (the first keeps them from the line it replaces)."""
        found = re.search(r"^\s*server 127\.0\.0\.1:5002\b([^;]*);", CONF.read_text(), re.M)
        assert found is not None, f"no upstream server line in {CONF}"
        return f"{found.group(1)};\n    server ".join(n.upstream for n in self.nodes)

    def wait_ready(self, nodes: Iterable[Node], timeout: float = 45.0) -> None:
        waiting = list(nodes)
        deadline = time.monotonic() + scaled(timeout)
        while waiting:
            waiting = [n for n in waiting if not n.is_ready()]
            if waiting and time.monotonic() > deadline:
                logs = "\n".join(f"--- node {n.index}\n{n.log()[-2000:]}" for n in waiting)
                raise RuntimeError(f"nodes did not start in time:\n{logs}")
            time.sleep(0.05)

    async def restart(self, index: int, timeout: float = 45.0) -> float:
        """Start a stopped node again on its port; the seconds until it listens."""
        node = self.nodes[index]
        started = time.monotonic()
        node.launch()  # in the main thread: PR_SET_PDEATHSIG follows the spawning thread
        await asyncio.to_thread(self.wait_ready, [node], timeout)
        return time.monotonic() - started

    def close(self) -> None:
        """Stop everything this cluster started; never raises, never leaves a process behind."""
        if self.nginx is not None:
            with contextlib.suppress(Exception):
                self.nginx.stop()
        running = [n.process for n in self.nodes if n.process is not None]
        for process in running:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.proxy.stop()

    # ---- who is who ---------------------------------------------------------------------------

    @property
    def front(self) -> LiveServer:
        """nginx as a ``LiveServer`` (``request`` and the hub helpers work against it)."""
        assert self.nginx is not None, "this cluster runs without nginx"
        return LiveServer(
            self.nginx.url, self.nginx.process, {}, self.tmp, self.nginx.prefix / "logs/error.log"
        )

    def roles(self) -> list[str]:
        return [redis_role(n.url) if n.alive else "dead" for n in self.nodes]

    def leader(self) -> Node:
        for node, role in zip(self.nodes, self.roles(), strict=True):
            if role == "leader":
                return node
        raise AssertionError(f"no leader: {self.roles()}")

    async def wait_for_roles(self, timeout: float = 15.0) -> list[str]:
        """Until the running nodes show exactly one leader and no unreachable Redis."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            roles = await asyncio.to_thread(self.roles)
            live = [r for r in roles if r != "dead"]
            if live.count("leader") == 1 and all(r in ("leader", "follower") for r in live):
                return roles
            assert time.monotonic() < deadline, f"roles did not settle: {roles}"
            await asyncio.sleep(0.1)

    # ---- users --------------------------------------------------------------------------------

    def register(self, username: str, node: int = 0) -> str:
        """Register and log in through one process, from a fresh source address (so the
        per-address login limit of the process never trips); returns a bearer token."""
        base = self.nodes[node].url
        source = fresh_source_address()
        credentials = {"username": username, "password": PASSWORD}
        status, body = request(base, "POST", "/api/auth/register", credentials, source=source)
        assert status in (201, 409), body
        status, body = request(base, "POST", "/api/auth/login", credentials, source=source)
        assert status == 200, body
        return str(body["accessToken"])

    # ---- the database -------------------------------------------------------------------------

    async def sql(self, query: str, *args: object) -> list[dict[str, Any]]:
        import asyncpg

        conn = await asyncpg.connect(self.database_url)
        try:
            return [dict(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    async def terminate_db_connections(self) -> int:
        """Drop every PostgreSQL connection to this database but ours; how many were killed."""
        rows = await self.sql(
            "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return sum(1 for r in rows if r["killed"])

    async def ledger_problems(self, starting_cash: Decimal = STARTING_CASH) -> list[str]:
        """``reconcile`` over one consistent snapshot (sweeps may still be committing)."""
        import asyncpg

        conn = await asyncpg.connect(self.database_url)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                tables = [
                    [dict(r) for r in await conn.fetch(q)]
                    for q in (
                        "SELECT user_id, cash, reserved_cash FROM accounts",
                        "SELECT id, user_id, symbol, side, type, qty, limit_price, filled_qty, "
                        "status FROM orders",
                        "SELECT order_id, user_id, symbol, side, qty, price FROM fills",
                        "SELECT user_id, symbol, qty FROM positions",
                    )
                ]
        finally:
            await conn.close()
        return reconcile(*tables, starting_cash=starting_cash)


OPEN_STATUSES = {"accepted", "new", "partially_filled", "pending_cancel"}


def reconcile(
    accounts: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    fills: list[dict[str, Any]],
    positions: list[dict[str, Any]],
    starting_cash: Decimal,
) -> list[str]:
    """Every way the ledger can disagree with itself (empty when it reconciles exactly):

    - cash = starting cash - sum of buy fills + sum of sell fills (no fees in this engine);
    - reserved cash = sum of over open buy limit orders of (qty - filled_qty) * limit price;
    - each position = sum of buy fill qty - sum of sell fill qty (no row when that is zero);
    - a filled order has exactly one fill for its whole quantity, any other order none.
    """
    d = Decimal
    problems: list[str] = []
    fills_by_order: dict[str, list[dict[str, Any]]] = {}
    cash = {a["user_id"]: starting_cash for a in accounts}
    held: dict[tuple[str, str], Decimal] = {}
    for f in fills:
        fills_by_order.setdefault(f["order_id"], []).append(f)
        amount = d(f["qty"]) * d(f["price"])
        sign = -1 if f["side"] == "buy" else 1
        cash[f["user_id"]] = cash.get(f["user_id"], starting_cash) + sign * amount
        key = (f["user_id"], f["symbol"])
        held[key] = held.get(key, d(0)) - sign * d(f["qty"])
    reserved: dict[str, Decimal] = {}
    for o in orders:
        got = fills_by_order.get(o["id"], [])
        if o["status"] == "filled":
            if len(got) != 1:
                problems.append(f"filled order {o['id']} has {len(got)} fills")
            elif d(got[0]["qty"]) != d(o["qty"]) or d(o["filled_qty"]) != d(o["qty"]):
                problems.append(f"filled order {o['id']}: qty {o['qty']} vs fill {got[0]['qty']}")
        elif got:
            problems.append(f"{o['status']} order {o['id']} has {len(got)} fills")
        if o["status"] in OPEN_STATUSES and o["side"] == "buy" and o["type"] == "limit":
            rest = (d(o["qty"]) - d(o["filled_qty"])) * d(o["limit_price"])
            reserved[o["user_id"]] = reserved.get(o["user_id"], d(0)) + rest
    for a in accounts:
        user = a["user_id"]
        if d(a["cash"]) != cash[user]:
            problems.append(f"user {user}: cash {a['cash']} but fills say {cash[user]}")
        if d(a["reserved_cash"]) != reserved.get(user, d(0)):
            problems.append(
                f"user {user}: reserved {a['reserved_cash']} but open buys hold "
                f"{reserved.get(user, d(0))}"
            )
    rows = {(p["user_id"], p["symbol"]): d(p["qty"]) for p in positions}
    for key in set(rows) | {k for k, v in held.items() if v != 0}:
        if rows.get(key, d(0)) != held.get(key, d(0)):
            problems.append(f"position {key}: {rows.get(key)} but fills say {held.get(key)}")
    return problems


# ---- hub clients -----------------------------------------------------------------------------


def ws_base(base_url: str) -> str:
    return "ws://" + urlsplit(base_url).netloc


@dataclass
class Hub:
    """One SignalR JSON connection read in the background; every record with its arrival time."""

    ws: ClientConnection
    got: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    closed: bool = False
    task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        try:
            while True:
                text = await self.ws.recv()
                at = time.monotonic()
                assert isinstance(text, str)
                self.got += [(at, json.loads(r)) for r in text.split(RS)[:-1]]
        except ConnectionClosed:
            pass
        finally:
            self.closed = True

    def pushes(self, target: str) -> list[dict[str, Any]]:
        return [r["arguments"][0] for _, r in self.got if r.get("target") == target]

    def timed(self, target: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, r["arguments"][0]) for at, r in self.got if r.get("target") == target]

    async def invoke(self, target: str, *args: Any) -> None:
        await self.ws.send(json.dumps({"type": 1, "target": target, "arguments": args}) + RS)


@contextlib.asynccontextmanager
async def hub(base_url: str, path: str, *invocation: Any) -> AsyncIterator[Hub]:
    """Connect (no negotiation), handshake, optionally send one invocation, read until closed."""
    ws = await connect(ws_base(base_url) + path, open_timeout=scaled(10))
    await ws.send('{"protocol":"json","version":1}' + RS)
    assert await asyncio.wait_for(ws.recv(), scaled(5)) == "{}" + RS
    h = Hub(ws)
    if invocation:
        await h.invoke(*invocation)
    h.task = asyncio.create_task(h._run())
    try:
        yield h
    finally:
        await ws.close()
        await h.task
