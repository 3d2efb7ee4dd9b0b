"""The rollback loop, end to end, on this machine, in one command.

    python -m mytrader_ops.rollback.demo [--dir data/rollback-demo] [--port 0]

1. a known-good MyTrader release starts (`localrelease`, SQLite under --dir);
2. a bad release is deployed over it: same port, new process, 60% of /api answering 500;
3. windows of real requests are measured and fed to the rollback triggers until one fires;
4. `mytrader-ops rollback` runs the shipped `local-mytrader.yaml` plan with the trigger's
   evidence as its reason: the server is restarted on the good release, verify (the smoke
   suite) passes;
5. the audit log is printed: who, why, each step's outcome.

Exit code: the rollback's (0 rolled back and verified, 4 failed, 5 locked); 1 when no trigger
fired. Until `mytrader-ops monitor` lands, step 3 is a minimal measuring loop here.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from mytrader_ops.monitor.triggers import TriggerBoard, Window, default_triggers

BAD_PROFILE = {"error_rate": {"/api": 0.6}}
USER = "rollback-demo-monitor"


def _say(text: str) -> None:
    print(text, flush=True)


def _secret_file(path: Path) -> str:
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _deploy(base: Path, release: str, env: dict[str, str], port: int) -> dict[str, object]:
    argv = [
        sys.executable,
        "-m",
        "mytrader_ops.rollback.localrelease",
        "deploy",
        "--dir",
        str(base),
        "--release",
        release,
        "--port",
        str(port),
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"deploying {release} failed: {done.stderr.strip()}")
    _say(f"  {done.stdout.strip()}")
    info = json.loads((base / "running.json").read_text())
    assert isinstance(info, dict)
    return info


def measure(url: str, seconds: float = 1.0, rate: float = 60.0) -> Window:
    """One window: requests to /api/symbols at a fixed rate; error rate and p95/p99."""
    start = time.time()
    latencies: list[float] = []
    errors = 0
    for i in range(int(seconds * rate)):
        due = start + i / rate
        time.sleep(max(0.0, due - time.time()))
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url + "/api/symbols", timeout=5) as resp:  # noqa: S310
                resp.read()
        except (urllib.error.URLError, OSError):
            errors += 1
        latencies.append((time.perf_counter() - t0 + max(0.0, time.time() - due)) * 1000)
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(n - 1, int(p * n))]

    return Window(
        start,
        time.time(),
        samples=n,
        error_rate=errors / n,
        latency_samples=n,
        p95_ms=pct(0.95),
        p99_ms=pct(0.99),
    )


def run(base: Path, port: int) -> int:
    base.mkdir(parents=True, exist_ok=True)
    (base / "releases").mkdir(exist_ok=True)
    (base / "releases" / "good.json").write_text(json.dumps({"env": {}}))
    (base / "releases" / "bad.json").write_text(
        json.dumps({"env": {"MYTRADER_FAULT_PROFILE": json.dumps(BAD_PROFILE)}})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYTRADER_")}
    env.update(
        {
            "MYTRADER_DATA_DIR": str(base / "api"),
            "MYTRADER_JWT_SECRET": _secret_file(base / "jwt.secret"),
            "MYTRADER_FAULTS_ENABLED": "true",
        }
    )
    password = _secret_file(base / "monitor.password")
    added = subprocess.run(
        [sys.executable, "-m", "mytrader_server", "users", "add", USER],
        input=password + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if added.returncode != 0 and "already exists" not in added.stderr:
        raise SystemExit(f"cannot create the monitoring account: {added.stderr.strip()}")
    try:
        _say("1. Known-good release:")
        good = _deploy(base, "good", env, port)
        url = str(good["url"])
        _say(f"   healthy window: {measure(url).error_rate:.0%} errors")
        _say("2. Bad release deployed (fault profile: 60% of /api answer 500):")
        _deploy(base, "bad", env, port)
        _say("3. Measuring windows against the rollback triggers:")
        board = TriggerBoard.start(default_triggers())
        for i in range(1, 11):
            window = measure(url)
            board = board.advance(window)
            states = ", ".join(f"{k}={v.state}" for k, v in board.statuses.items())
            _say(
                f"   window {i}: error rate {window.error_rate:.0%} (n={window.samples}), "
                f"p95 {window.p95_ms:.0f} ms -> {states}"
            )
            if board.firing:
                break
        if not board.firing:
            _say("   no trigger fired: nothing to roll back")
            return 1
        _say(f"   FIRING: {board.reason()}")
        _say("4. Rollback to the good release:")
        plan = Path(__file__).resolve().parents[2] / "rollback" / "local-mytrader.yaml"
        if not plan.is_file():
            from mytrader_ops.resources import data_dir

            plan = data_dir("rollback") / "local-mytrader.yaml"
        state = base / "state"
        rollback = subprocess.run(
            [
                sys.executable,
                "-m",
                "mytrader_ops.commands_rollback",
                "--plan",
                str(plan),
                "--to",
                "good",
                "--reason",
                board.reason(),
                "--evidence",
                json.dumps(board.evidence()),
                "--set",
                f"release_dir={base}",
                "--set",
                f"target={url}",
                "--state-dir",
                str(state),
                "--yes",
            ],
            env={**env, "MYTRADER_OPS_USERNAME": USER, "MYTRADER_OPS_PASSWORD": password},
            capture_output=True,
            text=True,
            timeout=600,
        )
        for line in (rollback.stdout + rollback.stderr).splitlines():
            _say(f"   {line}")
        after = measure(url)
        _say(f"   after the rollback: {after.error_rate:.0%} errors (n={after.samples})")
        _say(f"5. Audit log {state / 'rollback-audit.jsonl'}:")
        for line in (state / "rollback-audit.jsonl").read_text().splitlines():
            rec = json.loads(line)
            what = rec.get("name") or rec.get("reason") or rec.get("message") or ""
            _say(
                f"   {rec['at']} {rec['event']:<14} {rec.get('outcome') or '':<11} "
                f"{str(what)[:110]}"
            )
        return rollback.returncode
    finally:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mytrader_ops.rollback.localrelease",
                "stop",
                "--dir",
                str(base),
            ],
            env=env,
            capture_output=True,
            timeout=60,
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mytrader_ops.rollback.demo")
    parser.add_argument("--dir", type=Path, default=Path("data/rollback-demo"))
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sys.exit(run(args.dir.resolve(), args.port))


if __name__ == "__main__":
    main()
