"""http and wait steps against a real local HTTP server (Slack-compatible JSON webhook)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mytrader_ops.redaction import Redactor
from mytrader_ops.rollback.audit import AuditLog
from mytrader_ops.rollback.execute import Runners, StepContext, execute, run_http, run_wait
from mytrader_ops.rollback.model import parse_plan
from mytrader_ops.rollback.plan import ResolvedPlan, plan_rollback
from tests.rollback.conftest import audit_records
from tests.support.live import scaled


class Hook:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.status = 200
        self.ready_after = 0  # GETs answering 503 before 200


@pytest.fixture
def hook() -> Iterator[tuple[str, Hook]]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append((self.command, self.path, dict(self.headers), body))

        def do_POST(self) -> None:
            self._record()
            self.send_response(state.status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self) -> None:
            self._record()
            gets = sum(1 for r in state.requests if r[0] == "GET")
            self.send_response(503 if gets <= state.ready_after else 200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _resolve(text: str, url: str, reason: str = "errors 23%") -> ResolvedPlan:
    return plan_rollback(parse_plan(text), "staging", "v41", reason, overrides={"target": url})


PLAN = """name: hooks
environments:
  staging:
    target: http://127.0.0.1:1
steps:
  - name: announce
    kind: http
    url: "{target}/hooks/${HOOK_TOKEN}"
    headers: {authorization: "Bearer ${HOOK_TOKEN}"}
    json: {text: "rollback of {env} to {to_version}: {reason}", blocks: [{type: section}]}
  - name: ready
    kind: wait
    until_url: "{target}/health/ready"
    interval_s: 0.05
    timeout_s: 5
"""


def test_webhook_sends_slack_json_and_waits_for_2xx(
    hook: tuple[str, Hook], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = hook
    state.ready_after = 2
    monkeypatch.setenv("HOOK_TOKEN", "hook-secret-123")
    plan = _resolve(PLAN, url, 'x"; $(rm -rf /) {env}')
    audit = AuditLog(tmp_path / "audit.jsonl", Redactor())
    outcome = execute(plan, Runners(), audit, secrets={"HOOK_TOKEN": "hook-secret-123"})
    assert outcome.rolled_back, outcome.results
    method, path, headers, body = state.requests[0]
    assert (method, path) == ("POST", "/hooks/hook-secret-123")
    assert headers["authorization"] == "Bearer hook-secret-123"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "text": 'rollback of staging to v41: x"; $(rm -rf /) {env}',
        "blocks": [{"type": "section"}],
    }
    assert [r[0] for r in state.requests].count("GET") == 3
    raw = (tmp_path / "audit.jsonl").read_text()
    assert "hook-secret-123" not in raw
    ends = [r for r in audit_records(tmp_path / "audit.jsonl") if r["event"] == "step-end"]
    assert [e["outcome"] for e in ends] == ["ok", "ok"]


def test_webhook_unexpected_status_fails(hook: tuple[str, Hook]) -> None:
    url, state = hook
    state.status = 500
    plan = _resolve(PLAN, url)
    result = run_http(plan.steps[0], StepContext({"HOOK_TOKEN": "t0ken"}, Redactor()))
    assert result.outcome == "failed"
    assert "HTTP 500" in result.detail


def test_wait_until_url_times_out_when_never_ready() -> None:
    plan = _resolve(PLAN.replace("timeout_s: 5", f"timeout_s: {scaled(0.5)}"), "http://127.0.0.1:1")
    result = run_wait(plan.steps[1], StepContext({}, Redactor()))
    assert result.outcome == "timed_out"
    assert result.detail.startswith(f"no 2xx within {scaled(0.5):g} s ("), result.detail
