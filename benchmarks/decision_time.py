"""Time to a decision: `validate` against a healthy local MyTrader, with and without
`--until-decisive` (not a test; ~4 minutes for 5 rounds).

    .venv/bin/python benchmarks/decision_time.py [--rounds 5] [--output FILE.md]

One MyTrader server (embedded SQLite, a synthetic account) serves every run. Each round runs
the shipped go-live suite twice, in alternating order (plain first in odd rounds, until-decisive
first in even ones), so drift on the machine hits both alike. Reported per mode: the wall time
of the whole CLI run (start-up, probes, sampling, connection attempts, reports), the sampled
seconds and the decision, as medians with min-max over the rounds; and the paired ratio
until-decisive / plain per round. The goal (issue 9.7): a healthy local deployment decided in
under 15 s with --until-decisive.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
USER = "bench-monitor"


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    password = secrets.token_urlsafe(18)
    env = {**os.environ, "MYTRADER_DATA_DIR": str(data)}
    subprocess.run(
        [str(BIN / "mytrader-server"), "users", "add", USER],
        input=password.encode(),
        env=env,
        check=True,
        capture_output=True,
    )
    ready = data / "api.url"
    proc = subprocess.Popen(
        [str(BIN / "mytrader-server"), "--port", "0", "--ready-file", str(ready)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        if ready.exists() and ready.read_text().strip():
            return proc, ready.read_text().strip(), password
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start within 30 s")


def run_validate(url: str, password: str, out: Path, *extra: str) -> dict[str, float | str]:
    env = {**os.environ, "MYTRADER_OPS_USERNAME": USER, "MYTRADER_OPS_PASSWORD": password}
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "mytrader-ops"), "validate", "--target", url, "--report-dir", str(out),
         "--no-store", "--quiet", "--no-color", *extra],
        env=env,
        capture_output=True,
        text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    doc = json.loads((out / "report.json").read_text())
    return {
        "wall_s": wall,
        "sampled_s": float(doc["sampler"]["duration_s"]),
        "decision": doc["decision"],
        "exit": done.returncode,
    }


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    modes = {"plain": (), "until-decisive": ("--until-decisive",)}
    results: dict[str, list[dict[str, float | str]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, password = start_server(Path(tmp))
        try:
            for i in range(args.rounds):
                order = list(modes) if i % 2 == 0 else list(reversed(modes))
                for mode in order:
                    got = run_validate(url, password, Path(tmp) / f"r{i}-{mode}", *modes[mode])
                    results[mode].append(got)
                    print(f"round {i + 1} {mode}: {got}", flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    ratios = [
        float(u["wall_s"]) / float(p["wall_s"])
        for p, u in zip(results["plain"], results["until-decisive"], strict=True)
    ]
    lines = [
        "| mode | wall s, median (min-max) | sampled s | decisions |",
        "|---|---|---|---|",
    ]
    for mode, rows in results.items():
        walls = [float(r["wall_s"]) for r in rows]
        sampled = [float(r["sampled_s"]) for r in rows]
        decisions = ", ".join(sorted({str(r["decision"]) for r in rows}))
        lines.append(f"| {mode} | {spread(walls)} | {spread(sampled)} | {decisions} |")
    lines.append("")
    lines.append(
        f"until-decisive / plain, paired per round: median {statistics.median(ratios):.2f} "
        f"({min(ratios):.2f}-{max(ratios):.2f}) over {args.rounds} rounds"
    )
    table = "\n".join(lines)
    print(table)
    if args.output is not None:
        command = f"`.venv/bin/python benchmarks/decision_time.py --rounds {args.rounds}`"
        args.output.write_text(
            "# Time to a decision (validate, healthy local MyTrader)\n\n"
            f"Produced by {command} ({time.strftime('%Y-%m-%d')}, 2 cores, server and CLI on "
            "the same machine). Wall time of the whole CLI run: start-up, functional probes, "
            "sampling, 100 hub connection attempts and the reports.\n\n" + table + "\n"
        )


if __name__ == "__main__":
    main()
