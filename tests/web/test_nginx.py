"""deploy/nginx/mytrader.conf on a real nginx: the same contract as ``mytrader-server web``.

The test starts Debian's nginx (unprivileged port, everything under tmp) with the repository's
config, changing only the listen port, the static root and the upstream address. Skips with a
reason where nginx is not installed; CI installs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from mytrader_server.web import STATIC_DIR
from tests.support.live import LiveServer, scaled, server_env, start_server
from tests.web.support import free_port, unavailable

pytestmark = [pytest.mark.slow, pytest.mark.nginx]
CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "mytrader.conf"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
)
MIME_TYPES = Path("/etc/nginx/mime.types")
RS = "\x1e"


@dataclass
class Nginx:
    url: str
    process: subprocess.Popen[bytes]
    prefix: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(scaled(10))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def site_config(upstream: str, port: int, root: Path) -> str:
    """The repository's file with only its three deployment-specific values swapped."""
    text = CONF.read_text()
    swaps = [
        (r"^(\s*)server 127\.0\.0\.1:5002\b", rf"\1server {upstream}"),
        (r"^(\s*)listen 3000;", rf"\1listen 127.0.0.1:{port};"),
        (r"^(\s*)root /srv/mytrader/web;", rf"\1root {root};"),
    ]
    for pattern, replacement in swaps:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count == 1, f"{pattern} must occur once in {CONF}"
    return text


def start_nginx(tmp_path: Path, upstream: str) -> Nginx:
    if NGINX is None:
        unavailable("nginx is not installed (apt-get install nginx)")
    if not MIME_TYPES.exists():
        unavailable(f"{MIME_TYPES} is missing (Debian's nginx package provides it)")
    prefix = tmp_path / f"nginx-{time.monotonic_ns()}"
    (prefix / "logs").mkdir(parents=True)
    port = free_port()
    (prefix / "site.conf").write_text(site_config(upstream, port, STATIC_DIR))
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers must read tmp and repo
    (prefix / "nginx.conf").write_text(
        f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    include {MIME_TYPES};
    default_type application/octet-stream;
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/site.conf;
}}
"""
    )
    argv = [
        NGINX,
        "-p",
        str(prefix),
        "-c",
        str(prefix / "nginx.conf"),
        "-e",
        str(prefix / "logs/startup.log"),
    ]
    check = subprocess.run(
        [*argv, "-t"],
        capture_output=True,
        text=True,
        timeout=scaled(20),
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + scaled(15)
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return Nginx(f"http://127.0.0.1:{port}", process, prefix)
        if process.poll() is not None:
            raise RuntimeError((prefix / "logs/startup.log").read_text(errors="replace"))
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("nginx did not start listening")


def upstream_of(api: LiveServer) -> str:
    return api.url.removeprefix("http://")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Nginx]]:
    if NGINX is None:
        unavailable("nginx is not installed (apt-get install nginx)")
    tmp = tmp_path_factory.mktemp("nginx")
    api = start_server(tmp, server_env(tmp / "data"))
    try:
        nginx = start_nginx(tmp, upstream_of(api))
        try:
            yield api, nginx
        finally:
            nginx.stop()
    finally:
        api.stop()  # also when the front cannot start: no server left running


def test_config_is_the_repository_file_with_three_values_swapped(tmp_path: Path) -> None:
    text = site_config("127.0.0.1:1", 1234, tmp_path)
    assert "listen 127.0.0.1:1234;" in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    assert "client_max_body_size 1m;" in text


def test_static_app_with_its_security_headers(stack: tuple[LiveServer, Nginx]) -> None:
    _, nginx = stack
    page = httpx.get(nginx.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["server"] == "nginx"  # server_tokens off: no version
    module = httpx.get(nginx.url + "/js/main.js")
    assert module.status_code == 200
    assert "javascript" in module.headers["content-type"]  # module scripts need a JS type
    assert httpx.get(nginx.url + "/missing.js").status_code == 404


def test_api_through_nginx(stack: tuple[LiveServer, Nginx]) -> None:
    api, nginx = stack
    assert (
        httpx.get(nginx.url + "/api/symbols").json() == httpx.get(api.url + "/api/symbols").json()
    )
    token = api.register("nginx-user")
    order = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
    placed = httpx.post(
        nginx.url + "/api/orders", json=order, headers={"authorization": f"Bearer {token}"}
    )
    assert placed.status_code == 201, placed.text
    big = httpx.post(
        nginx.url + "/api/orders",
        content=b"x" * (2 << 20),
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413
    assert big.json() == {"code": 41300000, "message": "request body too large"}


async def test_hub_websocket_through_nginx(stack: tuple[LiveServer, Nginx]) -> None:
    api, nginx = stack
    token = api.register("nginx-hub-user")
    negotiate = httpx.post(
        nginx.url + "/hubs/trading/negotiate?negotiateVersion=1",
        headers={"authorization": f"Bearer {token}"},
    )
    assert negotiate.status_code == 200
    conn = negotiate.json()["connectionToken"]
    ws_base = nginx.url.replace("http://", "ws://")
    async with connect(f"{ws_base}/hubs/trading?id={conn}&access_token={token}") as ws:
        await ws.send('{"protocol":"json","version":1}' + RS)
        assert await asyncio.wait_for(ws.recv(), scaled(5)) == "{}" + RS
        order = {
            "symbol": "MSFT",
            "qty": "1",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
        }
        placed = httpx.post(
            nginx.url + "/api/orders", json=order, headers={"authorization": f"Bearer {token}"}
        )
        assert placed.status_code == 201
        events: list[str] = []
        while "fill" not in events:
            text = await asyncio.wait_for(ws.recv(), scaled(10))
            assert isinstance(text, str)
            for record in text.split(RS)[:-1]:
                message = json.loads(record)
                if message.get("target") == "OrderUpdate":
                    events.append(message["arguments"][0]["event"])
        assert events == ["new", "fill"]
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{ws_base}/hubs/trading")
    assert refused.value.response.status_code == 401


def test_client_address_is_forwarded_and_not_forgeable(tmp_path: Path) -> None:
    """The API trusts nginx (127.0.0.1): clients 127.0.0.2 and .3 are rate limited apart
    (2 logins a minute per address), and the X-Forwarded-For a client sends is ignored."""
    env = server_env(
        tmp_path / "data",
        MYTRADER_FORWARDED_ALLOW_IPS="127.0.0.1",
        MYTRADER_LOGIN_RATE_PER_MINUTE="2",
    )
    api = start_server(tmp_path, env)
    try:
        nginx = start_nginx(tmp_path, upstream_of(api))

        def login(source: str, username: str) -> int:
            transport = httpx.HTTPTransport(local_address=source)
            with httpx.Client(transport=transport, timeout=10) as client:
                return client.post(
                    nginx.url + "/api/auth/login",
                    json={"username": username, "password": "wrong-password"},
                    headers={"x-forwarded-for": "10.1.2.3"},
                ).status_code

        try:
            assert [login("127.0.0.2", f"nginx-a{i}") for i in range(3)] == [401, 401, 429]
            assert login("127.0.0.3", "nginx-b") == 401
        finally:
            nginx.stop()
    finally:
        api.stop()  # also when nginx cannot start: no server left running


def test_api_down_is_a_json_502(tmp_path: Path) -> None:
    nginx = start_nginx(tmp_path, f"127.0.0.1:{free_port()}")
    try:
        started = time.monotonic()
        down = httpx.get(nginx.url + "/api/symbols", timeout=10)
        assert down.status_code == 502
        assert down.json() == {"code": 50200000, "message": "the API is unreachable"}
        assert time.monotonic() - started < scaled(2)
        hub = httpx.post(nginx.url + "/hubs/market-data/negotiate", timeout=10)
        assert hub.status_code == 502
        assert httpx.get(nginx.url + "/").status_code == 200
    finally:
        nginx.stop()
