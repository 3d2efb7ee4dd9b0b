"""A real server process: start-up refusals, slowloris, huge headers and bodies, proxies,
SIGTERM with work in flight and SIGKILL under order load (S5, S9, S11-S15)."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.support.live import TEST_SECRET, LiveServer, scaled, server_env, start_server

pytestmark = pytest.mark.slow


def _addr(server: LiveServer) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(server.url)
    assert parsed.hostname is not None
    assert parsed.port is not None
    return parsed.hostname, parsed.port


def _run_server_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mytrader_server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(30),
        stdin=subprocess.DEVNULL,
    )


# SQLite only: each refusal happens while reading the settings, before any database is opened.
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"MYTRADER_ENV": "production", "MYTRADER_JWT_SECRET": "short-key!"}, "at least 32 bytes"),
        ({"MYTRADER_ENV": "production", "MYTRADER_JWT_SECRET": ""}, "MYTRADER_JWT_SECRET"),
        (
            {
                "MYTRADER_ENV": "production",
                "MYTRADER_JWT_SECRET": "x" * 40,
                "MYTRADER_FAULTS_ENABLED": "1",
            },
            "fault injection is refused",
        ),
        ({"MYTRADER_PORT": "99999"}, "MYTRADER_PORT"),
        ({"MYTRADER_DATABASE_URL": "mysql://x"}, "MYTRADER_DATABASE_URL"),
    ],
)
def test_refuses_to_start_with_bad_settings(
    tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    """S5: a weak or default secret in production is refused with a clear message."""
    env = server_env(tmp_path / "data", **extra)
    env.pop("MYTRADER_FAULTS_ENABLED") if "MYTRADER_FAULTS_ENABLED" not in extra else None
    if extra.get("MYTRADER_JWT_SECRET") == "":
        env.pop("MYTRADER_JWT_SECRET")
    done = _run_server_cli(env)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def _users_add(env: dict[str, str], name: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mytrader_server", "users", "add", name],
        input=password + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )


def test_users_add_reads_password_from_stdin(tmp_path: Path, live_server: LiveServer) -> None:
    done = _users_add(live_server.env, "synthetic-1", "synthetic-password")
    assert done.returncode == 0, done.stderr
    assert "synthetic-password" not in done.stdout + done.stderr
    status, body = live_server.request(
        "POST", "/api/auth/login", {"username": "synthetic-1", "password": "synthetic-password"}
    )
    assert status == 200, body
    again = _users_add(live_server.env, "synthetic-1", "synthetic-password")
    assert again.returncode == 2
    assert "already exists" in again.stderr
    bad = _users_add(live_server.env, "x", "short")
    assert bad.returncode == 2
    assert "invalid username, password" in bad.stderr, bad.stderr  # both named
    assert "Traceback" not in bad.stderr


def test_slowloris_is_closed_by_the_header_deadline(
    tmp_path: Path, server_db_env: dict[str, str]
) -> None:
    """S13: one header byte every 0.5 s must not hold a connection open."""
    server = start_server(
        tmp_path, server_env(tmp_path / "data", **server_db_env, MYTRADER_HEADER_TIMEOUT_S="2")
    )
    try:
        sock = socket.create_connection(_addr(server), timeout=scaled(10))
        request = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        started = time.monotonic()
        closed_after = None
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.5)
                if time.monotonic() - started > scaled(15):
                    break
        except OSError:
            closed_after = time.monotonic() - started
        if closed_after is None:
            sock.settimeout(scaled(5))
            try:
                data = sock.recv(100)
                closed_after = time.monotonic() - started if data == b"" else None
            except OSError:
                closed_after = time.monotonic() - started
        sock.close()
        assert closed_after is not None, "slow connection was never closed"
        assert closed_after < scaled(10)
        # a normal client on a normal connection still gets served
        assert server.request("GET", "/health/live")[0] == 200
    finally:
        server.stop()


def _raw(server: LiveServer, payload: bytes, read_timeout: float = 10) -> bytes:
    with socket.create_connection(_addr(server), timeout=scaled(read_timeout)) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(payload)
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
                head, sep, body = b"".join(chunks).partition(b"\r\n\r\n")
                if sep:
                    match = re.search(rb"content-length: (\d+)", head, re.I)
                    if match is None or len(body) >= int(match.group(1)):
                        break
        except OSError:
            pass
        return b"".join(chunks)


def test_huge_headers_are_refused(live_server: LiveServer) -> None:
    """S14: a 1 MB header gets a 4xx (the head cap, httptools or h11), not a 200."""
    payload = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    answer = _raw(live_server, payload)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 400 Bad Request", status_line
    assert live_server.request("GET", "/health/live")[0] == 200


def test_huge_body_is_refused_without_reading_it(live_server: LiveServer) -> None:
    """S15: a declared 100 MB body is refused with 413 before it is sent."""
    head = (
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 104857600\r\n\r\n"
    )
    answer = _raw(live_server, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert b'"message":"request body too large"' in answer


def test_chunked_body_over_the_limit_is_413(live_server: LiveServer) -> None:
    chunk = b"a" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    head = (
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    answer = _raw(live_server, head + body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_forwarded_for_is_not_trusted_by_default(
    tmp_path: Path, server_db_env: dict[str, str]
) -> None:
    """S9: rotating X-Forwarded-For must not dodge the login limit."""
    server = start_server(
        tmp_path, server_env(tmp_path / "data", **server_db_env, MYTRADER_LOGIN_RATE_PER_MINUTE="3")
    )
    try:
        codes = []
        for i in range(6):
            req = urllib.request.Request(
                server.url + "/api/auth/login",
                data=json.dumps({"username": f"u{i}", "password": "whatever-1"}).encode(),
                headers={"content-type": "application/json", "x-forwarded-for": f"10.0.0.{i}"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(req, timeout=scaled(10)) as resp:
                    codes.append(resp.status)
            except urllib.error.HTTPError as err:
                codes.append(err.code)
        # three a minute from the one real address, whatever each request claims to come from
        assert codes == [401] * 3 + [429] * 3, codes
    finally:
        server.stop()


def _order_loop(server: LiveServer, token: str, acked: list[str], stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        cid = f"{threading.get_ident()}-{i}"
        try:
            status, body = server.request(
                "POST",
                "/api/orders",
                {
                    "symbol": "AAPL",
                    "qty": "1",
                    "side": "buy",
                    "type": "limit",
                    "limit_price": "1",
                    "time_in_force": "gtc",
                    "client_order_id": cid,
                },
                token=token,
                timeout=5,
            )
        except (OSError, http.client.IncompleteRead):
            # a SIGKILL between the response head and its body ends the read early: that
            # order was never acknowledged to this client
            return
        if status == 201 and isinstance(body, dict):
            acked.append(str(body["id"]))


# SQLite only: what it proves is the durability of the embedded SQLite file (WAL, fsync) and
# it reads that file directly; PostgreSQL's own durability is not ours to test.
def test_sigkill_under_order_load_loses_no_acknowledged_order(tmp_path: Path) -> None:
    """S11: every order the server acknowledged is there after a SIGKILL mid-write."""
    env = server_env(tmp_path / "data", MYTRADER_ORDER_RATE_PER_MINUTE="100000")
    for round_no in range(3):
        server = start_server(tmp_path, env)
        token = server.register("durable")
        acked: list[str] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=_order_loop, args=(server, token, acked, stop))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + scaled(10)
        while len(acked) < 30 * (round_no + 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        stop.set()
        for t in threads:
            t.join()
        # the load loop above stops at 30 (60, 90) acknowledged orders or its deadline: reach
        # them, or there is too little in flight at the kill for the check below to mean much
        assert len(acked) >= 30 * (round_no + 1), (len(acked), server.log()[-2000:])
        db = sqlite3.connect(tmp_path / "data" / "mytrader.db")
        try:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            present = {row[0] for row in db.execute("SELECT id FROM orders")}
        finally:
            db.close()
        missing = set(acked) - present
        assert not missing, f"round {round_no}: {len(missing)} acknowledged orders lost"
    # and the server comes back on the same data: every order the database kept, no other
    server = start_server(tmp_path, env)
    try:
        token = server.register("durable")
        status, orders = server.request("GET", "/api/orders?status=all&limit=500", token=token)
        assert status == 200
        assert isinstance(orders, list)
        assert len(present) <= 500, len(present)  # one page holds them all
        assert {o["id"] for o in orders} == present
    finally:
        server.stop()


# SQLite only: it checks the committed orders in the SQLite file the killed server wrote.
def test_sigterm_drains_in_bounded_time(tmp_path: Path) -> None:
    """S12: SIGTERM with requests in flight: the order is either committed or absent; exit is
    bounded even while a client holds a connection open."""
    env = server_env(
        tmp_path / "data",
        MYTRADER_SHUTDOWN_TIMEOUT_S="3",
        MYTRADER_ORDER_RATE_PER_MINUTE="100000",
    )
    server = start_server(tmp_path, env)
    token = server.register("drainer")
    idle = socket.create_connection(_addr(server))  # an idle keep-alive client
    acked: list[str] = []
    stop = threading.Event()
    worker = threading.Thread(target=_order_loop, args=(server, token, acked, stop))
    worker.start()
    time.sleep(scaled(0.5))
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(scaled(20))
    elapsed = time.monotonic() - started
    stop.set()
    worker.join()
    idle.close()
    # uvicorn (>= 0.29; we require >= 0.30) re-raises the SIGTERM it caught once the shutdown
    # is done, so a clean exit is -SIGTERM; the lifespan's last line tells it from a kill
    assert code == -signal.SIGTERM, server.log()
    assert "Application shutdown complete" in server.log()
    assert elapsed < scaled(10), f"shutdown took {elapsed:.1f} s: {server.log()[-2000:]}"
    db = sqlite3.connect(tmp_path / "data" / "mytrader.db")
    try:
        present = {row[0] for row in db.execute("SELECT id FROM orders")}
    finally:
        db.close()
    assert set(acked) <= present


# SQLite only: a restart on the same SQLite file; tests/server/test_migrations.py upgrades
# data from revision 0001 on both back ends.
def test_schema_upgrade_keeps_data(tmp_path: Path) -> None:
    """Migrations are versioned: restarting on an existing database keeps its rows."""
    env = server_env(tmp_path / "data")
    server = start_server(tmp_path, env)
    token = server.register("keeper")
    server.request(
        "POST", "/api/orders", {"symbol": "AAPL", "qty": "1", "side": "buy"}, token=token
    )
    server.stop()
    db = sqlite3.connect(tmp_path / "data" / "mytrader.db")
    try:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("0002",)
    finally:
        db.close()
    server = start_server(tmp_path, env)
    try:
        token = server.register("keeper")
        status, orders = server.request("GET", "/api/orders?status=all", token=token)
        assert status == 200
        assert isinstance(orders, list)
        assert len(orders) == 1
    finally:
        server.stop()


def test_no_secret_in_the_server_log(tmp_path: Path, server_db_env: dict[str, str]) -> None:
    """Structured logs carry request ids, never a password, a token or a query string."""
    env = server_env(tmp_path / "data", **server_db_env, MYTRADER_LOG_LEVEL="debug")
    server = start_server(tmp_path, env)
    try:
        password = "canary-password-6b2f"
        token = server.register("canary", password)
        server.request("GET", f"/api/account?access_token={token}", token=token)
        # a failed request is logged (with its request id): it must not carry the query either
        server.set_faults(database_down=True)
        status, _ = server.request("GET", f"/api/positions?access_token={token}", token=token)
        assert status == 503
        server.clear_faults()
        server.request("GET", "/api/orders/does-not-exist", token=token)
        server.request(
            "POST", "/api/auth/login", {"username": "canary", "password": "wrong-canary-pw"}
        )
        server.request("GET", "/api/auth/me", token=token + "tampered")
    finally:
        server.stop()
    log = server.log()
    entries = [json.loads(line) for line in log.splitlines()]  # every line is one JSON object
    failed = [e for e in entries if e["msg"] == "request failed"]
    assert [(e["route"], e["status"]) for e in failed] == [("/api/positions", 503)], failed
    assert re.fullmatch(r"[0-9a-f]{32}", failed[0]["request_id"]), failed
    for secret in (password, token, "wrong-canary-pw", TEST_SECRET):
        assert secret not in log
