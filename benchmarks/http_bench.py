"""``/health/live`` throughput: MyTrader as it runs by default beside three bare FastAPI apps.

    .venv/bin/python benchmarks/http_bench.py [--rounds 5] [--duration 5] [--output FILE]

(a) ``mytrader-server`` with its defaults; (b) a bare FastAPI app on the same uvicorn settings
(``reference_app.py --variant same``); (c) a bare app on h11 + asyncio with the header deadline,
MyTrader's previous default (``--variant h11``); (d) a bare app on uvicorn[standard]'s defaults,
httptools + uvloop and no limits (``--variant standard``). Servers on CPU 0, wrk on CPU 1
(``wrk -t1 -c16``). Each round runs all four back to back, in an order that alternates between
rounds (a b c d, then d c b a), so a burst of load from other work hits them alike; the ratios
are computed within each round (paired) and reported as the median with the min-max spread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from api_bench import ROOT, SECRET, run_wrk, start, write_section

VARIANTS = {
    "a": "MyTrader (default: httptools + uvloop, head cap and deadline)",
    "b": "bare FastAPI, same uvicorn settings as (a)",
    "c": "bare FastAPI, h11 + asyncio (MyTrader's previous default)",
    "d": "bare FastAPI, uvicorn[standard] defaults (httptools + uvloop, no limits)",
}


def _spread(values: list[float], fmt: str) -> str:
    return (
        f"{format(statistics.median(values), fmt)} "
        f"({format(min(values), fmt)}-{format(max(values), fmt)})"
    )


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--output", type=Path, help="replace the marked section of this file")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mytrader-http-bench-"))
    env = {
        **os.environ,
        "MYTRADER_DATA_DIR": str(work / "data"),
        "MYTRADER_JWT_SECRET": SECRET,
        "MYTRADER_LOG_LEVEL": "warning",
    }
    python = sys.executable
    ref = [python, str(ROOT / "benchmarks/reference_app.py"), "--variant"]
    commands = {
        "a": [python, "-m", "mytrader_server", "--port", "0"],
        "b": [*ref, "same"],
        "c": [*ref, "h11"],
        "d": [*ref, "standard"],
    }
    procs = {}
    urls = {}
    rps: dict[str, list[float]] = {k: [] for k in VARIANTS}
    # server CPU per request: what a request costs, much less disturbed by other work on the
    # machine than req/s (which also measures how much of CPU 0 the server got)
    cpu_us: dict[str, list[float]] = {k: [] for k in VARIANTS}
    loads: list[float] = []
    try:
        for key, cmd in commands.items():
            procs[key], base = start(cmd, env, work)
            urls[key] = base + "/health/live"
            run_wrk(urls[key], 1, 16)  # warm-up
        for i in range(args.rounds):
            order = list(VARIANTS) if i % 2 == 0 else list(reversed(VARIANTS))
            for key in order:
                loads.append(os.getloadavg()[0])
                before = _cpu_s(procs[key].pid)
                result = run_wrk(urls[key], args.duration, 16)
                rps[key].append(result.rps)
                cpu_us[key].append(
                    (_cpu_s(procs[key].pid) - before) / (result.rps * args.duration) * 1e6
                )
            print(
                f"round {i + 1}: "
                + "  ".join(f"{k} {rps[k][-1]:,.0f}" for k in VARIANTS)
                + f"  load {loads[-1]:.2f}",
                file=sys.stderr,
            )
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(10)

    def ratios(other: str) -> list[float]:
        return [x / y for x, y in zip(rps["a"], rps[other], strict=True)]

    def cpu_ratios(other: str) -> list[float]:
        return [y / x for x, y in zip(cpu_us["a"], cpu_us[other], strict=True)]

    rows = [
        f"`/health/live`, wrk -t1 -c16, {args.duration} s per run, {args.rounds} interleaved "
        f"rounds; 1-minute load average during the runs {min(loads):.2f}-{max(loads):.2f} "
        f"on {os.cpu_count()} CPUs.",
        "",
        "| server | req/s median (min-max) | per round | server CPU µs/request |",
        "|---|---|---|---|",
    ]
    for key, name in VARIANTS.items():
        per_round = ", ".join(f"{v:,.0f}" for v in rps[key])
        rows.append(
            f"| ({key}) {name} | {_spread(rps[key], ',.0f')} | {per_round} "
            f"| {_spread(cpu_us[key], '.0f')} |"
        )
    rows += [
        "",
        "| ratio (paired per round) | req/s: median (min-max) | by CPU/request | goal |",
        "|---|---|---|---|",
        f"| a/b: MyTrader vs bare FastAPI, same settings | {_spread(ratios('b'), '.2f')} "
        f"| {_spread(cpu_ratios('b'), '.2f')} | ≥ 0.90 |",
        f"| a/d: MyTrader vs bare FastAPI on uvicorn[standard] | {_spread(ratios('d'), '.2f')} "
        f"| {_spread(cpu_ratios('d'), '.2f')} | ≥ 1.00 |",
        f"| a/c: MyTrader vs bare FastAPI on h11 + asyncio (history) | "
        f"{_spread(ratios('c'), '.2f')} | {_spread(cpu_ratios('c'), '.2f')} | — |",
        "",
        "A ratio above 1 favours MyTrader; by CPU it is the other's CPU per request over "
        "MyTrader's.",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
    ]
    text = "\n".join(rows)
    print(text)
    if args.output:
        write_section(args.output, "http_bench", text)


if __name__ == "__main__":
    main()
