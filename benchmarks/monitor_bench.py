"""Monitor benchmark (not a timed test): CPU at the default sampling rate, memory over a
simulated 24-hour watch, and the watch store's growth per hour.

    .venv/bin/python benchmarks/monitor_bench.py            # all three parts
    .venv/bin/python benchmarks/monitor_bench.py --cpu-duration 300s

1. CPU: a real `mytrader-server` on loopback, `mytrader-ops monitor` in this process with the
   default settings (30 s windows, 2 requests/s per sampled path, hub/auth/health/metrics
   probes, the market-data stream); CPU of this process / wall time = share of one core.
2. Memory: 24 hours of synthetic 30-second windows (2880) fed quickly through the same
   layers a watch uses per window (trigger fold, running totals, JSON line, SQLite
   checkpoint); RSS and Python heap sampled every simulated hour.
3. Store growth: bytes of the watch store per simulated hour (30 s and 5 s windows).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mytrader_ops.monitor.aggregate import Totals  # noqa: E402
from mytrader_ops.monitor.dashboard import JsonLines  # noqa: E402
from mytrader_ops.monitor.rules import to_window  # noqa: E402
from mytrader_ops.monitor.store import WatchRecord, WatchStore  # noqa: E402
from mytrader_ops.monitor.triggers import TriggerBoard, default_triggers  # noqa: E402
from mytrader_ops.monitor.windows import PathTally, WindowSummary  # noqa: E402
from mytrader_ops.redaction import Redactor  # noqa: E402
from mytrader_ops.stats import LatencyHistogram  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


def cpu_part(duration: str) -> dict[str, float]:
    from mytrader_ops.monitor.service import MonitorRequest, run_monitor

    tmp = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYTRADER_")}
    env.update(
        {
            "MYTRADER_DATA_DIR": str(tmp / "data"),
            "MYTRADER_JWT_SECRET": "bench-secret-that-is-long-enough-0123456789abcdef",
            "MYTRADER_ENV": "development",
        }
    )
    password = "bench-password-123"
    subprocess.run(
        [sys.executable, "-m", "mytrader_server", "users", "add", "bench"],
        input=password + "\n",
        env=env,
        text=True,
        check=True,
        capture_output=True,
    )
    ready = tmp / "ready.url"
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "mytrader_server", "--port", "0", "--ready-file", str(ready)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        while not ready.exists():
            time.sleep(0.05)
        url = ready.read_text().strip()
        os.environ["MYTRADER_OPS_USERNAME"] = "bench"
        os.environ["MYTRADER_OPS_PASSWORD"] = password
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcome = run_monitor(
            MonitorRequest(target=url, duration=duration, state_dir=tmp / "state", json=True),
            out=io.StringIO(),
            err=io.StringIO(),
        )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        server.terminate()
        server.wait(15)
        log.close()
    return {
        "duration_s": wall,
        "cpu_s": cpu,
        "cpu_share_of_one_core": cpu / wall,
        "exit_code": float(outcome.exit_code),
        "windows": float(outcome.report.elapsed_s // 30),
    }


def synthetic(
    i: int, interval: float, rng: random.Random
) -> tuple[WindowSummary, LatencyHistogram]:
    hist = LatencyHistogram()
    for _ in range(120):
        hist.record_ms(rng.lognormvariate(1.2, 0.5))
    s = hist.summary()
    w = WindowSummary(
        index=i,
        start_s=i * interval,
        end_s=(i + 1) * interval,
        requests=120,
        errors=rng.choice([0, 0, 0, 1]),
        latency_samples=120,
        p50_ms=s.p50_ms,
        p95_ms=s.p95_ms,
        p99_ms=s.p99_ms,
        max_ms=s.max_ms,
        error_kinds={"/api/symbols: HTTP 500": 1},
        health_attempts=1,
        health_ok=1,
        db_status="pass",
        db_ms=rng.uniform(1, 5),
        paths={
            "direct-hub": PathTally(3, 3),
            "mobile-hub": PathTally(1, 1),
            "direct-api": PathTally(120, 120),
        },
        auth="ok",
        auth_detail="authorized call GET /api/auth/me: HTTP 200",
        stream_messages=120,
        stream_connected=True,
        stream_max_gap_s=0.3,
        rss_bytes=120e6 + rng.uniform(-4e6, 4e6),
        cpu_seconds=i * interval * 0.02,
        db_query_ms=rng.uniform(1, 5),
        feed_lag_s=0.1,
        hub_connections=2,
        monitor_cpu_s=0.05,
    )
    return w, hist


def memory_and_store_part(interval: float, hours: float) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="monitor-bench-store-"))
    store = WatchStore(tmp / "monitor.db")
    store.create(
        WatchRecord(
            "bench",
            "http://x",
            "bench",
            "all",
            interval,
            0.0,
            hours * 3600,
            {},
            "running",
            None,
            "",
            "",
        )
    )
    rng = random.Random(3)
    board = TriggerBoard.start(default_triggers())
    totals = Totals(1800.0, 100.0, 0.0)
    hist_all, hist_crit = LatencyHistogram(), LatencyHistogram()
    sink = JsonLines("bench", open(os.devnull, "w"), Redactor())  # noqa: SIM115
    per_hour = int(3600 / interval)
    samples = []
    tracemalloc.start()
    t0 = time.perf_counter()
    for i in range(int(hours * per_hour)):
        w, hist = synthetic(i, interval, rng)
        hist_all.merge(hist)
        if w.start_s < 1800:
            hist_crit.merge(hist)
        board = board.advance(to_window(w))
        totals.add(w)
        states = [board.statuses[t.id] for t in default_triggers()]
        sink.window(w, states, totals)
        store.checkpoint("bench", w, hist_all.encode(), hist_crit.encode())
        if (i + 1) % per_hour == 0:
            heap, _peak = tracemalloc.get_traced_memory()
            samples.append(
                {
                    "hour": (i + 1) // per_hour,
                    "rss_mb": round(rss_mb(), 1),
                    "heap_mb": round(heap / 1024 / 1024, 2),
                    "store_mb": round(store.size_bytes() / 1024 / 1024, 2),
                }
            )
    tracemalloc.stop()
    return {
        "interval_s": interval,
        "windows": int(hours * per_hour),
        "seconds_to_feed": round(time.perf_counter() - t0, 1),
        "hourly": samples,
        "store_bytes_per_hour": int(store.size_bytes() / hours),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpu-duration", default="120s")
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args()
    out: dict[str, object] = {}
    if not args.skip_cpu:
        out["cpu"] = cpu_part(args.cpu_duration)
        print(json.dumps({"cpu": out["cpu"]}), flush=True)
    out["memory_30s_windows_24h"] = memory_and_store_part(30.0, 24)
    print(json.dumps({"memory_30s": out["memory_30s_windows_24h"]}), flush=True)
    out["store_5s_windows_2h"] = memory_and_store_part(5.0, 2)
    print(json.dumps({"store_5s": out["store_5s_windows_2h"]}), flush=True)
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
