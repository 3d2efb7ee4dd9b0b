"""A tiny local release manager, so the rollback loop can be run for real on one machine.

A *release* is a JSON file `<dir>/releases/<name>.json` holding the environment a MyTrader
server runs with (`{"env": {"MYTRADER_FAULT_PROFILE": "..."}}`; an empty `env` is a
healthy release). `deploy` stops the running release's process group and starts
`python -m mytrader_server` for the named one on the same port, in its own session, then
waits until it listens. It is idempotent: deploying the release already running (and
alive) does nothing. This is what `rollback/local-mytrader.yaml` calls: the process is
really restarted on the previous release, not a flag flipped.

    python -m mytrader_ops.rollback.localrelease deploy --dir D --release good [--port 0]
    python -m mytrader_ops.rollback.localrelease status --dir D
    python -m mytrader_ops.rollback.localrelease stop --dir D
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mytrader_ops.rollback.process import pid_alive

STOP_GRACE_S = 15.0


def _running(base: Path) -> dict[str, object] | None:
    try:
        info = json.loads((base / "running.json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def stop(base: Path) -> str:
    info = _running(base)
    if info is None or not isinstance(info.get("pid"), int):
        return "nothing running"
    pid = int(str(info["pid"]))
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    (base / "running.json").unlink(missing_ok=True)
    return f"stopped release {info.get('release')} (pid {pid})"


def deploy(base: Path, release: str, port: int, timeout_s: float) -> str:
    spec_path = base / "releases" / f"{release}.json"
    try:
        spec = json.loads(spec_path.read_text())
    except OSError:
        raise SystemExit(f"unknown release {release!r}: no {spec_path}") from None
    env_overrides = spec.get("env", {}) if isinstance(spec, dict) else {}
    current = _running(base)
    if current is not None and current.get("release") == release:
        pid = current.get("pid")
        if pid_alive(pid):
            return f"release {release} already running (pid {pid}) at {current.get('url')}"
    if current is not None and isinstance(current.get("url"), str):
        port = int(str(current["url"]).rsplit(":", 1)[1])  # keep the address stable
    stopped = stop(base)
    ready = base / "ready.url"
    ready.unlink(missing_ok=True)
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in env_overrides.items()})
    log = (base / f"server-{release}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mytrader_server", "--port", str(port), "--ready-file", str(ready)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: outlives this step, stopped by the next deploy
    )
    log.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready.exists() and ready.read_text().strip():
            url = ready.read_text().strip()
            info = {"release": release, "pid": proc.pid, "url": url, "started_at": time.time()}
            (base / "running.json").write_text(json.dumps(info))
            return f"{stopped}; started release {release} (pid {proc.pid}) at {url}"
        if proc.poll() is not None:
            raise SystemExit(f"release {release} exited with {proc.returncode}; see its log")
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"release {release} did not start within {timeout_s:g} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mytrader_ops.rollback.localrelease")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("deploy")
    d.add_argument("--release", required=True)
    d.add_argument("--port", type=int, default=0)
    d.add_argument("--timeout", type=float, default=60.0)
    for p in (d, sub.add_parser("status"), sub.add_parser("stop")):
        p.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    base: Path = args.dir
    base.mkdir(parents=True, exist_ok=True)
    if args.command == "deploy":
        print(deploy(base, args.release, args.port, args.timeout))
    elif args.command == "stop":
        print(stop(base))
    else:
        print(json.dumps(_running(base)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
