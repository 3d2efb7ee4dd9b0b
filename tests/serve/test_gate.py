"""`mytrader-ops serve` as a real process in front of a real MyTrader server: Flagger's webhook
payload and Argo Rollouts' web provider get the decision, runs are stored, names come from
the gate's config only, a token guards it, concurrency and a deadline bound it, and no
secret reaches an answer or its log."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.ops.conftest import run_cli
from tests.serve.conftest import PASSWORD, USER
from tests.support.live import LiveServer, cli_env, scaled

TOKEN = "gate-bearer-token-0123456789"
pytestmark = pytest.mark.slow


def _suites(tmp: Path, backend: str) -> None:
    env = (
        "environments:\n  staging:\n"
        f"    backend: {backend}\n    credentials:\n"
        "      username: ${MYTRADER_OPS_USERNAME}\n      password: ${MYTRADER_OPS_PASSWORD}\n"
        "default_env: staging\n"
    )
    (tmp / "smoke.yaml").write_text("version: 1\ninclude: [smoke]\n" + env)
    (tmp / "slow.yaml").write_text(
        "version: 1\ntitle: slow\nsampler: {duration_s: 3, rate: 50, max_duration_s: 3}\n"
        "checks:\n  - {id: symbols-p95, title: Symbols p95, kind: latency, path: /api/symbols,"
        " max_ms: 2000}\n" + env
    )


class Gate:
    def __init__(self, tmp: Path, config: str, name: str = "gate") -> None:
        (tmp / f"{name}.yaml").write_text(config)
        ready = tmp / f"{name}.url"
        self.log = tmp / f"{name}.log"
        env = cli_env(MYTRADER_OPS_USERNAME=USER, MYTRADER_OPS_PASSWORD=PASSWORD,
                      TEST_GATE_TOKEN=TOKEN)  # fmt: skip
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mytrader_ops", "serve", "--listen", "127.0.0.1:0",
                 "--config", str(tmp / f"{name}.yaml"), "--ready-file", str(ready)],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + scaled(20)
        while not ready.exists():
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the gate did not start"
            time.sleep(0.05)
        self.url = ready.read_text().strip()

    def call(
        self, method: str, query: str = "", body: object = None, token: str | None = TOKEN
    ) -> tuple[int, dict[str, object], dict[str, str]]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/gate{query}", data=data, method=method)
        req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=scaled(60)) as r:
                return r.status, json.loads(r.read()), dict(r.headers)
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read()), dict(err.headers)

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(scaled(30))
        return self.log.read_text()


def _flagger(**metadata: str) -> dict[str, object]:
    return {"name": "mytrader-api", "namespace": "trading", "phase": "Progressing",
            "checksum": "6d5b8c", "metadata": metadata}  # fmt: skip


def test_flagger_and_argo_get_the_decision_from_configured_names_only(
    server: LiveServer, tmp_path: Path
) -> None:
    _suites(tmp_path, server.url)
    gate = Gate(tmp_path, "version: 1\nsuites: {smoke: smoke.yaml, slow: slow.yaml}\n"
                "default_suite: smoke\ntoken: ${TEST_GATE_TOKEN}\nstore: runs.db\n")  # fmt: skip
    answers: list[object] = []
    try:
        assert gate.call("POST", body=_flagger(env="staging"), token=None)[0] == 401
        assert gate.call("POST", body=_flagger(env="staging"), token="wrong")[0] == 401
        status, go, _ = gate.call("POST", body=_flagger(env="staging", suite="smoke",
                                                         target="http://127.0.0.1:9"))  # fmt: skip
        answers.append(go)
        assert status == 200, go
        assert (go["decision"], go["exit_code"], go["env"], go["suite"]) == (
            "GO", 0, "staging", "smoke")  # fmt: skip
        assert go["target"] == server.url  # metadata names, never addresses
        checks = {c["id"]: c for c in go["checks"]}  # type: ignore[attr-defined]
        assert checks["auth-flow"]["status"] == "PASS"
        assert checks["health-ready"]["status"] == "PASS"
        assert set(checks) == {"backend-live", "health-ready", "symbols-list", "auth-flow",
                               "hub-market-data"}  # fmt: skip
        assert all(c["observed"] for c in checks.values())  # the key figures, one per check
        status, default, _ = gate.call("POST", body=_flagger())  # default suite and env
        assert (status, default["suite"], default["env"]) == (200, "smoke", "staging")
        status, bad, _ = gate.call("POST", body=_flagger(env="production"))
        assert status == 400
        assert "known: staging" in str(bad["error"])
        status, bad, _ = gate.call("GET", "?env=staging&suite=/etc/passwd")
        assert status == 400
        assert "serves: slow, smoke" in str(bad["error"])
        status, argo, _ = gate.call("GET", "?env=staging&suite=smoke")
        assert (status, argo["decision"]) == (200, "GO")
        server.set_faults(hubs_down=True)
        try:
            status, nogo, _ = gate.call("POST", body=_flagger(env="staging"))
            status_get, nogo_get, _ = gate.call("GET", "?env=staging")
        finally:
            server.clear_faults()
        answers += [nogo, nogo_get]
        assert (status, nogo["decision"], nogo["exit_code"]) == (412, "NO-GO", 1)  # halts Flagger
        assert (status_get, nogo_get["decision"]) == (200, "NO-GO")  # Argo reads the decision
        assert gate.call("POST", body=[1, 2])[0] == 400
        assert gate.call("POST", body={"metadata": "x"})[0] == 400
        assert gate.call("POST", body={"metadata": {"env": 3}})[0] == 400
    finally:
        log = gate.stop()
    listed = run_cli("runs", "--store", str(tmp_path / "runs.db"), "--limit", "50")
    for a in answers:
        assert str(a["run_id"]) in listed.stdout  # type: ignore[index]
    everything = log + json.dumps(answers)
    assert TOKEN not in everything
    assert PASSWORD not in everything
    assert "412 NO-GO env=staging suite=smoke" in log


def test_bounded_concurrency_and_a_deadline_per_request(server: LiveServer, tmp_path: Path) -> None:
    _suites(tmp_path, server.url)
    busy = Gate(tmp_path, "version: 1\nsuites: {slow: slow.yaml}\nmax_concurrent: 1\n"
                "max_queued: 0\ndeadline: 60s\nstore: runs.db\n", "busy")  # fmt: skip
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = pool.submit(busy.call, "GET", "?env=staging", None, None)
            time.sleep(scaled(0.5))  # the first one holds the only slot
            second = busy.call("GET", "?env=staging", token=None)
            done = first.result(timeout=scaled(60))
        assert second[0] == 429
        assert second[2]["retry-after"] == "10"
        assert done[0] == 200
        assert done[1]["decision"] == "GO"
    finally:
        busy.stop()
    short = Gate(tmp_path, "version: 1\nsuites: {slow: slow.yaml}\ndeadline: 1s\n"
                 "store: runs.db\n", "short")  # fmt: skip
    try:
        t0 = time.monotonic()
        status, body, _ = short.call("POST", body=_flagger(), token=None)
        took = time.monotonic() - t0
    finally:
        short.stop()
    assert status == 503
    assert (body["decision"], body["exit_code"]) == ("INCONCLUSIVE", 3)
    assert "deadline of 1 s" in str(body["summary"])
    assert took < scaled(2.5)


def test_operator_typos_exit_2_with_the_line_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "gate.yaml").write_text("version: 1\nsuites: {a: missing.yaml}\nmax_qeued: 3\n")
    done = run_cli("serve", "--listen", "127.0.0.1:0", "--config", str(tmp_path / "gate.yaml"))
    assert done.code == 2
    assert f"{tmp_path / 'gate.yaml'}:3" in done.stderr  # the unknown key, with its line
    assert "Traceback" not in done.stderr
    (tmp_path / "ok.yaml").write_text("version: 1\nsuites: {a: a.yaml}\ntoken: ${NOT_SET_X}\n")
    (tmp_path / "a.yaml").write_text("version: 1\ninclude: [smoke]\nenvironments:\n"
                                     "  s: {backend: 'http://127.0.0.1:9'}\n")  # fmt: skip
    done = run_cli("serve", "--listen", "127.0.0.1:0", "--config", str(tmp_path / "ok.yaml"))
    assert done.code == 2
    assert "${NOT_SET_X} is unset" in done.stderr
    done = run_cli("serve", "--listen", "localhost", "--config", str(tmp_path / "ok.yaml"))
    assert done.code == 2
    assert "HOST:PORT" in done.stderr
