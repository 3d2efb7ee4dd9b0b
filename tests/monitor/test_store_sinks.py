"""The watch store (checkpoint, resume lookup) and the alert sinks (webhook, command)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mytrader_ops.errors import ConfigError
from mytrader_ops.monitor.settings import CommandSink, WebhookSink, load_monitor_file
from mytrader_ops.monitor.sinks import Alert, notify, render_argv
from mytrader_ops.monitor.store import WatchRecord, WatchStore
from mytrader_ops.monitor.windows import WindowSummary
from mytrader_ops.redaction import Redactor
from mytrader_ops.stats import LatencyHistogram
from tests.support.live import scaled

SECRET_HOOK_PATH = "/services/T000/B000/very-secret-token"


def test_checkpoint_and_load(tmp_path: Path) -> None:
    store = WatchStore(tmp_path / "m.db")
    rec = WatchRecord(
        "w1",
        "http://x",
        "local",
        "critical",
        2.0,
        100.0,
        160.0,
        {"rate": 2},
        "running",
        None,
        "",
        "",
    )
    store.create(rec)
    hist = LatencyHistogram()
    for v in (1.0, 2.0, 300.0):
        hist.record_ms(v)
    for i in range(3):
        store.checkpoint(
            "w1", WindowSummary(i, 100 + 2 * i, 102 + 2 * i, requests=i), hist.encode(), ""
        )
    assert store.latest_running("http://x", "local") is not None
    assert store.latest_running("http://y", "local") is None
    loaded, windows = store.load("w1")
    assert (loaded.start_s, loaded.deadline_s) == (100.0, 160.0)
    assert [w.requests for w in windows] == [0, 1, 2]
    assert LatencyHistogram.decode(loaded.hist_all).count == 3
    store.finish("w1", "ended", 0)
    assert store.latest_running("http://x", "local") is None


class _Hook(BaseHTTPRequestHandler):
    bodies: list[dict[str, object]] = []
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.bodies = []
    yield f"http://127.0.0.1:{server.server_address[1]}{SECRET_HOOK_PATH}"
    server.shutdown()
    server.server_close()


def test_webhook_posts_slack_json_and_never_shows_its_url(
    hook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_HOOK_URL", hook)
    sink = WebhookSink.model_validate({"kind": "webhook", "url": "${TEST_HOOK_URL}"})
    redactor = Redactor(["hunter2-password"])
    alert = Alert("error-rate", "firing", "prod", "http://api", "48% errors; hunter2-password")
    [result] = notify([sink], alert, redactor)
    assert result.ok, result.detail
    [body] = _Hook.bodies
    assert set(body) == {"text"}
    assert "FIRING error-rate" in str(body["text"])
    assert "hunter2-password" not in str(body["text"])
    assert SECRET_HOOK_PATH not in repr(sink)


def test_webhook_failure_is_reported_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts, never answers
    port = listener.getsockname()[1]
    monkeypatch.setenv("TEST_HOOK_URL", f"http://127.0.0.1:{port}/hook")
    sink = WebhookSink.model_validate(
        {"kind": "webhook", "url": "${TEST_HOOK_URL}", "timeout_s": 0.5}
    )
    t0 = time.monotonic()
    [result] = notify([sink], Alert("t", "firing", "e", "x", "m"), Redactor())
    listener.close()
    assert not result.ok
    assert time.monotonic() - t0 < scaled(3)


def test_command_sink_passes_values_literally(tmp_path: Path) -> None:
    out = tmp_path / "args.json"
    pwned = tmp_path / "pwned"
    script = "import json,sys; open(sys.argv[1],'w').write(json.dumps(sys.argv[2:]))"
    sink = CommandSink(
        kind="command", argv=[sys.executable, "-c", script, str(out), "{trigger}", "msg={message}"]
    )
    message = f"x; $(touch {pwned}) `touch {pwned}`"
    [result] = notify([sink], Alert("db-down", "firing", "e", "t", message), Redactor())
    assert result.ok, result.detail
    assert json.loads(out.read_text()) == ["db-down", f"msg={message}"]
    assert not pwned.exists()


def test_command_sink_timeout_ends_the_group(tmp_path: Path) -> None:
    sink = CommandSink(
        kind="command", argv=[sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.5
    )
    t0 = time.monotonic()
    [result] = notify([sink], Alert("t", "firing", "e", "x", "m"), Redactor())
    assert not result.ok
    assert "timed out" in result.detail
    assert time.monotonic() - t0 < scaled(10)


def test_render_argv_never_splits() -> None:
    assert render_argv(["a {trigger} b", "{env}"], {"trigger": "x y", "env": "p;q"}) == [
        "a x y b",
        "p;q",
    ]


def test_monitor_file_problems_name_their_line(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(
        "version: 1\ninterval: 30s\nsinks:\n  - kind: webhook\n    url: https://literal\n"
        "triggers:\n  - {id: e, kind: error-rate, above: 0.1}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_monitor_file(f)
    text = str(info.value)
    assert f"{f}:5:" in text  # the literal webhook URL (secrets must be ${ENV} references)
    assert f"{f}:7:" in text  # no consecutive/for bound


@pytest.mark.parametrize(
    ("value", "valid"), [("0.95", True), ("1", True), ("0", False), ("1.5", False)]
)
def test_coverage_floor_is_a_share_above_zero(tmp_path: Path, value: str, valid: bool) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(f"version: 1\ninterval: 30s\ncoverage_floor: {value}\n")
    if valid:
        assert load_monitor_file(f).coverage_floor == float(value)
        return
    with pytest.raises(ConfigError) as info:
        load_monitor_file(f)
    assert f"{f}:3:" in str(info.value)
    assert "coverage_floor" in str(info.value)


def test_coverage_floor_defaults_to_90_percent(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("version: 1\n")
    assert load_monitor_file(f).coverage_floor == 0.90


def test_documented_monitor_config_is_valid(tmp_path: Path) -> None:
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "monitor.md").read_text()
    match = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert match is not None
    f = tmp_path / "monitor.yaml"
    f.write_text(match.group(1))
    loaded = load_monitor_file(f)
    assert loaded.triggers is not None
    assert loaded.rollback is not None
    assert loaded.coverage_floor == 0.90


def test_exporter_serves_the_monitor_figures() -> None:
    import urllib.request

    from mytrader_ops.monitor.aggregate import Totals
    from mytrader_ops.monitor.coverage import CoverageBoard, judge_board
    from mytrader_ops.monitor.exporter import Exporter
    from mytrader_ops.monitor.rules import fold
    from mytrader_ops.monitor.triggers import default_triggers

    exporter = Exporter(0)
    try:
        w = WindowSummary(0, 0.0, 1.0, requests=100, errors=20, p95_ms=250.0)
        specs = default_triggers()
        board = fold(specs, [w])
        coverage = CoverageBoard.start([s.id for s in specs], 1.0)
        coverage = coverage.advance(0, {"error-rate-above-10pct": "breach"})
        evidence = judge_board(specs, coverage, 0.9)
        exporter.window(w, list(board.statuses.values()), Totals(1800.0, 100.0, 0.0), evidence)
        url = f"http://127.0.0.1:{exporter.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    finally:
        exporter.close()
    assert "mytrader_monitor_error_rate 0.2" in text
    assert "mytrader_monitor_latency_p95_seconds 0.25" in text
    assert 'mytrader_monitor_trigger_state{trigger="error-rate-above-10pct"} 1.0' in text
    assert (
        'mytrader_monitor_trigger_evidence_coverage{trigger="error-rate-above-10pct"} 1.0' in text
    )
    assert 'mytrader_monitor_trigger_evidence_coverage{trigger="auth-failing"} 0.0' in text
