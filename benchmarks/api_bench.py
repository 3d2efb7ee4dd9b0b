"""API benchmark: throughput (wrk) and open-model latency of MyTrader's routes beside a bare
FastAPI reference, in one run on one machine. Server on CPU 0, load generator on CPU 1.

    .venv/bin/python benchmarks/api_bench.py [--duration 5] [--output docs/performance-api.md]

Latency at a fixed rate is timed from each request's intended send time (no coordinated
omission): a request that waits for a free connection is charged for the wait.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECRET = "benchmark-secret-that-is-long-enough-0123456789"


def _pinned(cpu: int, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if shutil.which("taskset") and os.cpu_count() else cmd


def start(
    cmd: list[str], env: dict[str, str], workdir: Path
) -> tuple[subprocess.Popen[bytes], str]:
    ready = workdir / f"ready-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        _pinned(0, [*cmd, "--ready-file", str(ready)]),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server failed to start: {cmd}")
        time.sleep(0.05)
    return proc, ready.read_text().strip()


def _json_request(url: str, body: object, token: str | None = None) -> dict[str, object]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        result: dict[str, object] = json.loads(resp.read())
        return result


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float


def run_wrk(url: str, duration: int, connections: int, lua: str | None = None) -> WrkResult:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    with tempfile.TemporaryDirectory() as tmp:
        if lua:
            script = Path(tmp) / "request.lua"
            script.write_text(lua)
            cmd += ["-s", str(script)]
        done = subprocess.run(_pinned(1, [*cmd, url]), capture_output=True, text=True, check=True)
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return WrkResult(rps, pct("50"), pct("99"))


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> int:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"content-length: (\d+)", head, re.I)
    if m:
        await reader.readexactly(int(m.group(1)))
    return status


async def open_model(
    url: str, payloads: list[bytes], rate: float, seconds: float, conns: int
) -> dict[str, float]:
    """Send at ``rate`` per second on ``conns`` keep-alive connections; time from intended send."""
    parts = urllib.parse.urlsplit(url)
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0
    counter = 0

    async def worker() -> None:
        nonlocal errors, counter
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        while (intended := await queue.get()) is not None:
            payload = payloads[counter % len(payloads)]
            counter += 1
            status = await _request(reader, writer, payload)
            latencies.append((time.perf_counter() - intended) * 1000)
            if status >= 400:
                errors += 1
        writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(conns)]
    start = time.perf_counter() + 0.1
    total = int(rate * seconds)
    for i in range(total):
        intended = start + i / rate
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(intended)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    latencies.sort()
    return {
        "sent": total,
        "errors": errors,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "max_ms": latencies[-1],
    }


def http_get(path: str, host: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def http_post(path: str, host: str, body: Mapping[str, object], token: str) -> bytes:
    data = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")

    work = Path(tempfile.mkdtemp(prefix="mytrader-bench-"))
    env = {
        **os.environ,
        "MYTRADER_DATA_DIR": str(work / "data"),
        "MYTRADER_JWT_SECRET": SECRET,
        "MYTRADER_ORDER_RATE_PER_MINUTE": "10000000",
        "MYTRADER_LOGIN_RATE_PER_MINUTE": "1000",
        "MYTRADER_LOG_LEVEL": "warning",
    }
    python = sys.executable
    ref, ref_url = start([python, str(ROOT / "benchmarks/reference_app.py")], env, work)
    api, api_url = start([python, "-m", "mytrader_server", "--port", "0"], env, work)
    rows: list[str] = []
    try:
        _json_request(
            api_url + "/api/auth/register", {"username": "bench", "password": "bench-password"}
        )
        token = str(
            _json_request(
                api_url + "/api/auth/login", {"username": "bench", "password": "bench-password"}
            )["accessToken"]
        )
        order = {
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "limit",
            "limit_price": "1",
            "time_in_force": "gtc",
        }
        lua = (
            'wrk.method = "POST"\n'
            f"wrk.body = '{json.dumps(order)}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        )
        results: dict[str, WrkResult] = {}
        # interleave reference and API runs, median of three
        for name, url, script in [
            ("reference /health/live", ref_url + "/health/live", None),
            ("/health/live", api_url + "/health/live", None),
            ("GET /api/market-data/quotes/AAPL", api_url + "/api/market-data/quotes/AAPL", None),
            (
                "GET /api/market-data/volume-leaders",
                api_url + "/api/market-data/volume-leaders",
                None,
            ),
            ("POST /api/orders", api_url + "/api/orders", lua),
        ]:
            runs = [run_wrk(url, args.duration, 16, script) for _ in range(1 if script else 3)]
            runs.sort(key=lambda r: r.rps)
            results[name] = runs[len(runs) // 2]
        host = urllib.parse.urlsplit(api_url).netloc
        quotes = asyncio.run(
            open_model(
                api_url,
                [http_get("/api/market-data/quotes/AAPL", host)],
                200,
                args.latency_seconds,
                8,
            )
        )
        orders = asyncio.run(
            open_model(
                api_url,
                [http_post("/api/orders", host, order, token)],
                100,
                args.latency_seconds,
                8,
            )
        )
    finally:
        for proc in (ref, api):
            proc.terminate()
            proc.wait(10)

    ref_rps = results["reference /health/live"].rps
    rows.append("| route | req/s (wrk -t1 -c16) | vs reference | p50 / p99 ms |")
    rows.append("|---|---|---|---|")
    for name, r in results.items():
        rows.append(
            f"| {name} | {r.rps:,.0f} | {r.rps / ref_rps:.2f}x | {r.p50_ms:.2f} / {r.p99_ms:.2f} |"
        )
    rows.append("")
    rows.append("| open-model latency | rate | sent | errors | p50 ms | p99 ms | max ms | goal |")
    rows.append("|---|---|---|---|---|---|---|---|")
    rows.append(
        f"| GET quotes | 200/s | {quotes['sent']:.0f} | {quotes['errors']:.0f} | "
        f"{quotes['p50_ms']:.2f} | {quotes['p99_ms']:.2f} | {quotes['max_ms']:.2f} | p99 < 10 ms |"
    )
    rows.append(
        f"| POST order (SQLite) | 100/s | {orders['sent']:.0f} | {orders['errors']:.0f} | "
        f"{orders['p50_ms']:.2f} | {orders['p99_ms']:.2f} | {orders['max_ms']:.2f} | p99 < 50 ms |"
    )
    ratio = results["/health/live"].rps / ref_rps
    rows.append("")
    rows.append(
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, 1-minute load average "
        f"{os.getloadavg()[0]:.2f} at the end on {os.cpu_count()} CPUs."
    )
    rows.append(
        f"/health/live: {ratio:.2f}x the reference's throughput (median of 3 runs; "
        "benchmarks/http_bench.py measures it in paired rounds against three references)."
    )
    text = "\n".join(rows)
    print(text)
    if args.output:
        write_section(args.output, "api_bench", text)


def write_section(path: Path, name: str, text: str) -> None:
    """Replace the ``<!-- name begin -->`` ... ``<!-- name end -->`` block of ``path`` (append it
    if absent), so that each benchmark rewrites only its own figures."""
    begin, end = f"<!-- {name} begin -->", f"<!-- {name} end -->"
    doc = path.read_text() if path.exists() else ""
    block = f"{begin}\n{text}\n{end}"
    if begin in doc and end in doc:
        doc = doc[: doc.index(begin)] + block + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(doc.lstrip("\n"))


if __name__ == "__main__":
    main()
