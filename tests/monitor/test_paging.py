"""Paging: the page book's rules (pure), each service's documented payload (local servers
that check it), retries with backoff, a real Alertmanager read back through its API, and a
real watch that pages once, resolves when the trigger clears, and never lets a dead or
hanging sink delay the rollback."""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mytrader_ops.monitor.delivery import Delivery, Dispatcher, backoff_s
from mytrader_ops.monitor.pages import Page, PageBook, validate_page
from mytrader_ops.monitor.service import MonitorOutcome, MonitorRequest, run_monitor
from mytrader_ops.monitor.settings import (
    AlertmanagerSink,
    OpsgenieSink,
    PagerDutySink,
    SlackSink,
    load_monitor_file,
)
from mytrader_ops.monitor.triggers import TriggerStatus, WindowEvidence
from mytrader_ops.redaction import Redactor
from mytrader_ops.rollback.audit import read_log
from tests.monitor.conftest import watch
from tests.support.alertmanager import Alertmanager, alertmanager  # noqa: F401 - fixture
from tests.support.fakeservices import FakeService, opsgenie, pagerduty, slack
from tests.support.live import LiveServer, scaled

PD_KEY = "R0UTINGKEY0123456789abcdef012345"
OG_KEY = "0psgenie-key-6b1f-4a8e-9c1d-secret"
SLACK_PATH = "/services/T0001/B0001/slack-webhook-secret"


def _status(trigger: str, state: str, value: float = 0.5) -> TriggerStatus:
    ev = WindowEvidence(0, 1, "breach" if state == "firing" else "ok", value, 0.1, 60,
                        f"error rate {value:.0%} > 10%")  # fmt: skip
    if state == "pending":
        ev = WindowEvidence(0, 1, "no-data", None, 0.1, 0, "too few requests")
    return TriggerStatus(trigger, "error-rate", "2 consecutive windows", state,  # type: ignore[arg-type]
                         evidence=(ev,), summary=f"{state}: {ev.note}")  # fmt: skip


def _actions(pages: Sequence[Page]) -> list[tuple[str, str]]:
    return [(p.action, p.trigger) for p in pages]


def test_one_page_per_trigger_per_watch_resolved_when_it_clears() -> None:
    book = PageBook("mon-1", "prod", "http://api", "https://runbooks.example/r")
    steps = [
        ({"a": "pending", "b": "ok"}, []),
        ({"a": "firing", "b": "ok"}, [("trigger", "a")]),
        ({"a": "firing", "b": "ok"}, [("refresh", "a")]),  # no second page, window after window
        ({"a": "pending", "b": "firing"}, [("refresh", "a"), ("trigger", "b")]),  # no data: held
        ({"a": "ok", "b": "firing"}, [("resolve", "a"), ("refresh", "b")]),
        ({"a": "firing", "b": "firing"}, [("refresh", "b")]),  # a flapped: not paged twice
    ]
    for i, (states, expected) in enumerate(steps):
        book, pages = book.observe([_status(t, s) for t, s in states.items()], 100.0 + i)
        assert _actions(pages) == expected, (i, pages)
    trigger_b = next(iter(book.open.values())).page
    assert trigger_b.key == "mytrader-ops/mon-1/b"
    assert trigger_b.runbook == "https://runbooks.example/r/rollback-b.md"
    assert trigger_b.evidence[0].value == 0.5
    assert trigger_b.evidence[0].threshold == 0.1
    failed, pages = book.rollback_ended(False, "step 1 failed", 200.0)
    assert _actions(pages) == [("update", "b")]
    assert "FAILED" in pages[0].rollback
    done, pages = failed.rollback_ended(True, "ok", 201.0)
    assert _actions(pages) == [("resolve", "b")]
    assert pages[0].reason == "rolled back and verified"
    assert done.open == {}


def _page(action: str, key: str = "mytrader-ops/mon-1/error-rate-above-10pct") -> Page:
    return Page(key=key, action=action, origin="monitor", watch_id="mon-1", env="prod",  # type: ignore[arg-type]
                target="http://api.example", trigger="error-rate-above-10pct",
                summary="FIRING: error rate 55% > 10% <b>&", started_at_s=time.time() - 5,
                at_s=time.time(), runbook="https://runbooks.example/rollback-error.md",
                rollback="automatic rollback on firing",
                reason={"resolve": "rolled back and verified",
                        "update": "rollback FAILED: step 1"}.get(action, ""))  # fmt: skip


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, FakeService]]:
    started = {"pd": pagerduty(PD_KEY).start(), "og": opsgenie(OG_KEY).start(),
               "slack": slack(SLACK_PATH).start()}  # fmt: skip
    monkeypatch.setenv("TEST_PD_KEY", PD_KEY)
    monkeypatch.setenv("TEST_OG_KEY", OG_KEY)
    monkeypatch.setenv("TEST_SLACK_URL", started["slack"].url + SLACK_PATH)
    yield started
    for s in started.values():
        s.stop()


def _sinks(services: dict[str, FakeService], retries: int = 3) -> list[object]:
    return [
        PagerDutySink.model_validate({"kind": "pagerduty", "routing_key": "${TEST_PD_KEY}",
                                      "url": services["pd"].url + "/v2/enqueue",
                                      "retries": retries}),
        OpsgenieSink.model_validate({"kind": "opsgenie", "api_key": "${TEST_OG_KEY}",
                                     "url": services["og"].url}),
        SlackSink.model_validate({"kind": "slack", "url": "${TEST_SLACK_URL}"}),
    ]  # fmt: skip


def test_pagerduty_opsgenie_and_slack_get_their_documented_payloads(
    services: dict[str, FakeService],
) -> None:
    results: list[Delivery] = []
    dispatcher = Dispatcher(_sinks(services), Redactor(), results.append)  # type: ignore[arg-type]
    dispatcher.submit([_page("trigger"), _page("refresh"), _page("update"), _page("resolve")])
    delivered = dispatcher.close(scaled(20))
    for s in services.values():
        assert s.violations == []
    pd = [r.body for r in services["pd"].requests]
    assert [b["event_action"] for b in pd] == ["trigger", "resolve"]  # refresh/update: no event
    assert {b["dedup_key"] for b in pd} == {"mytrader-ops/mon-1/error-rate-above-10pct"}
    assert pd[0]["payload"]["severity"] == "critical"
    assert pd[0]["links"] == [{"href": "https://runbooks.example/rollback-error.md",
                               "text": "Runbook"}]  # fmt: skip
    og = services["og"].requests
    assert [r.path.rsplit("/", 1)[-1] for r in og] == ["alerts", "notes", "close"]
    assert og[0].body["alias"] == "mytrader-ops/mon-1/error-rate-above-10pct"
    assert services["og"].state["closed"] == {"mytrader-ops%2Fmon-1%2Ferror-rate-above-10pct"}
    blocks = [r.body["blocks"] for r in services["slack"].requests]
    assert len(blocks) == 3  # trigger, rollback update, resolve
    text = json.dumps(blocks[0])
    assert "*Decision*\\nFIRING" in text
    assert "*Rollback*" in text
    assert "&lt;b&gt;&amp;" in text  # mrkdwn escaped
    assert "<https://runbooks.example/rollback-error.md|rollback-error.md>" in text
    assert "RESOLVED" in json.dumps(blocks[2])
    assert all(d.ok for d in delivered)
    assert len(delivered) == len(results) == 8
    shown = json.dumps([d.to_dict() for d in delivered])
    assert PD_KEY not in shown
    assert OG_KEY not in shown
    assert SLACK_PATH not in shown


def test_retries_with_backoff_and_a_final_4xx_is_not_retried(
    services: dict[str, FakeService],
) -> None:
    services["pd"].fail_next[:] = [503, 429]
    services["og"].fail_next[:] = [403]
    dispatcher = Dispatcher(_sinks(services)[:2], Redactor())  # type: ignore[arg-type]
    t0 = time.monotonic()
    dispatcher.submit([_page("trigger")])
    assert time.monotonic() - t0 < scaled(0.2)  # submit never waits for a sink
    og_result, pd_result = sorted(dispatcher.close(scaled(20)), key=lambda d: d.sink)
    assert (og_result.ok, og_result.attempts) == (False, 1)
    assert "HTTP 403" in og_result.detail
    assert (pd_result.ok, pd_result.attempts) == (True, 3)
    assert len(services["pd"].requests) == 3
    assert 0.4 <= backoff_s(1) <= 0.6
    assert 6.4 <= backoff_s(5) <= 8.0
    assert backoff_s(2, 30) == 8.0


def test_alertmanager_for_real_alert_then_resolved(
    alertmanager: Alertmanager,  # noqa: F811
) -> None:
    sink = AlertmanagerSink.model_validate({"kind": "alertmanager", "url": alertmanager.url})
    dispatcher = Dispatcher([sink], Redactor())
    dispatcher.submit([_page("trigger")])
    [active] = _wait_alerts(alertmanager, 1)
    assert active["labels"] == {"alertname": "MyTraderOpsTrigger", "trigger":
                                "error-rate-above-10pct", "env": "prod", "watch": "mon-1",
                                "severity": "critical"}  # fmt: skip
    assert active["annotations"]["runbook_url"] == "https://runbooks.example/rollback-error.md"
    assert "error rate 55% > 10%" in active["annotations"]["description"]
    assert active["status"]["state"] == "active"
    firing = alertmanager.wait_notification("firing")
    assert firing["alerts"][0]["labels"]["trigger"] == "error-rate-above-10pct"
    dispatcher.submit([_page("resolve")])
    resolved = alertmanager.wait_notification("resolved")
    assert resolved["alerts"][0]["status"] == "resolved"
    assert _wait_alerts(alertmanager, 0) == []  # resolved alerts leave the active list
    assert all(d.ok for d in dispatcher.close(scaled(10)))


def _wait_alerts(am: Alertmanager, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + scaled(10)
    while True:
        alerts = am.alerts(env="prod")
        if len(alerts) == count or time.monotonic() > deadline:
            assert len(alerts) == count, alerts
            return alerts
        time.sleep(0.1)


def test_validate_page_triggers_on_no_go_and_resolves_on_go() -> None:
    bad = validate_page(env="staging", target="http://x", decision="NO-GO", exit_code=1,
                        summary="1 FAIL", failing=(), run_id="r1", now_s=1.0)  # fmt: skip
    good = validate_page(env="staging", target="http://x", decision="GO", exit_code=0,
                         summary="5 PASS", failing=(), run_id="r2", now_s=2.0)  # fmt: skip
    assert (bad.action, good.action) == ("trigger", "resolve")
    assert bad.key == good.key == "mytrader-ops/validate/staging"


# --------------------------------------------------------------------------- real watches


def _watch(
    server: LiveServer, tmp_path: Path, observers: tuple[object, ...], **kw: object
) -> tuple[MonitorOutcome, str]:
    values: dict[str, object] = {
        "target": server.url,
        "interval": "1s",
        "rate": 30.0,
        "json": True,
        "state_dir": tmp_path / "state",
        "phase": "all",
    }
    values.update(kw)
    out, err = io.StringIO(), io.StringIO()
    outcome = run_monitor(MonitorRequest(**values), out=out, err=err,  # type: ignore[arg-type]
                          extra_observers=observers)  # type: ignore[arg-type]  # fmt: skip
    return outcome, err.getvalue() + out.getvalue()


class _ClearWhenFiring:
    """Clears the injected fault once a trigger fires, so that it can clear on its own."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.cleared = False

    def window(self, w: object, states: Sequence[TriggerStatus], *rest: object) -> None:
        if not self.cleared and any(s.state == "firing" for s in states):
            self.server.clear_faults()
            self.cleared = True


@pytest.mark.slow
def test_a_watch_pages_once_resolves_when_the_trigger_clears_and_reports_a_dead_sink(
    server: LiveServer,
    tmp_path: Path,
    creds: None,
    services: dict[str, FakeService],
    alertmanager: Alertmanager,  # noqa: F811
) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there: connection refused
    config = tmp_path / "monitor.yaml"
    config.write_text(
        "version: 1\non_fire: keep-watching\nrunbook_url: https://runbooks.example/r\n"
        "triggers:\n  - {id: error-rate-above-10pct, kind: error-rate, above: 0.10,"
        " consecutive: 2}\n"
        "sinks:\n"
        f"  - {{kind: alertmanager, url: {alertmanager.url}}}\n"
        f"  - {{kind: pagerduty, routing_key: '${{TEST_PD_KEY}}', url: "
        f"'{services['pd'].url}/v2/enqueue'}}\n"
        "  - {kind: slack, url: '${TEST_SLACK_URL}'}\n"
        f"  - {{kind: opsgenie, api_key: '${{TEST_OG_KEY}}', url: 'http://127.0.0.1:{dead_port}',"
        " retries: 1, timeout_s: 1}\n"
    )
    server.set_faults(error_rate={"/api": 0.6})
    clearer = _ClearWhenFiring(server)
    try:
        outcome, printed = _watch(server, tmp_path, (clearer,), duration="9s",
                                  monitor_config=config)  # fmt: skip
    finally:
        server.clear_faults()
    assert clearer.cleared
    assert outcome.exit_code == 1, printed  # the first trigger that fired decides
    pd = [r.body["event_action"] for r in services["pd"].requests]
    assert pd == ["trigger", "resolve"], pd  # one page for many firing windows, then resolved
    assert services["pd"].violations == services["slack"].violations == []
    resolved = alertmanager.wait_notification("resolved")
    assert resolved["alerts"][0]["labels"]["watch"] == outcome.watch_id
    slack_text = json.dumps([r.body for r in services["slack"].requests])
    assert "the trigger cleared" in slack_text
    records = [r for r in read_log(tmp_path / "state" / "rollback-audit.jsonl").records
               if r["event"] == "page"]  # fmt: skip
    failed = [r for r in records if r["outcome"] == "failed"]
    assert {r["sink"] for r in failed} == {"opsgenie#4"}
    assert {r["action"] for r in failed} == {"trigger", "resolve"}
    assert all(r["attempts"] == 2 for r in failed)  # one retry after the first failure
    check = outcome.report.verdict("monitor-alert-sinks")
    assert check is not None
    assert check.status.value == "FAIL"
    assert not check.critical
    assert "opsgenie#4" in check.summary
    assert "alert sink opsgenie#4 failed" in printed
    everything = printed + (tmp_path / "state" / "rollback-audit.jsonl").read_text()
    assert PD_KEY not in everything
    assert OG_KEY not in everything
    assert SLACK_PATH not in everything


@pytest.mark.slow
def test_a_hanging_sink_never_delays_the_rollback(
    server: LiveServer, tmp_path: Path, creds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted: list[float] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    conns: list[socket.socket] = []

    def accept() -> None:  # accepts, reads nothing, never answers
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(time.time())
            conns.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    monkeypatch.setenv("TEST_PD_KEY", PD_KEY)
    stamp = tmp_path / "rolled-back-at"
    plan = tmp_path / "plan.yaml"
    step = {"name": "record", "kind": "command",
            "argv": [sys.executable, "-c", f"import time; open({str(stamp)!r}, 'w')"
                     ".write(str(time.time()))"]}  # fmt: skip
    plan.write_text(json.dumps({"name": "auto", "steps": [step]}))
    config = tmp_path / "monitor.yaml"
    config.write_text(
        "version: 1\nsinks:\n"
        f"  - {{kind: pagerduty, routing_key: '${{TEST_PD_KEY}}', "
        f"url: 'http://127.0.0.1:{listener.getsockname()[1]}/v2/enqueue', timeout_s: 4,"
        " retries: 0}\n"
    )
    server.set_faults(error_rate={"/api": 0.6})
    try:
        outcome, printed = watch(server, tmp_path, duration="30s", monitor_config=config,
                                 auto_rollback=True, rollback_plan=plan,
                                 rollback_env="staging", to_version="v1")  # fmt: skip
    finally:
        server.clear_faults()
        listener.close()
        for c in conns:
            c.close()
    assert outcome.exit_code == 1, printed
    assert accepted, "the page was never attempted"
    rolled_back_at = float(stamp.read_text())
    # The sink held its connection for 4 s; the rollback ran meanwhile, not after it.
    assert rolled_back_at - accepted[0] < scaled(2.0), (accepted, rolled_back_at)
    records = read_log(tmp_path / "state" / "rollback-audit.jsonl").records
    pages = [r for r in records if r["event"] == "page"]
    assert pages
    assert all(r["outcome"] == "failed" for r in pages), pages
    assert any("Timeout" in str(r["detail"]) for r in pages)
    assert [r["event"] for r in records if r["event"] != "page"][-1] == "rollback-end"
    check = outcome.report.verdict("monitor-alert-sinks")
    assert check is not None
    assert check.status.value == "FAIL"


def test_sinks_config_names_problems_and_needs_references(tmp_path: Path) -> None:
    from mytrader_ops.errors import ConfigError

    f = tmp_path / "m.yaml"
    f.write_text(
        "version: 1\nsinks:\n  - {kind: pagerduty, routing_key: literal-key}\n"
        "  - {kind: alertmanager, url: 'ftp://x'}\n  - {kind: opsgenie, api_key: '${K}',"
        " priority: P9}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_monitor_file(f)
    text = str(info.value)
    assert f"{f}:3:" in text
    assert f"{f}:4:" in text
    assert f"{f}:5:" in text
    assert "literal-key" not in text


@pytest.mark.slow
def test_validate_notify_pages_a_no_go_and_the_next_go_resolves_it(
    server: LiveServer, tmp_path: Path, services: dict[str, FakeService]
) -> None:
    from tests.monitor.conftest import PASSWORD, USER
    from tests.ops.conftest import run_cli

    config = tmp_path / "ops.yaml"
    config.write_text(
        "version: 1\ninclude: [smoke]\nenvironments:\n  staging:\n"
        f"    backend: {server.url}\n    credentials:\n"
        "      username: ${MYTRADER_OPS_USERNAME}\n      password: ${MYTRADER_OPS_PASSWORD}\n"
    )
    sinks = tmp_path / "sinks.yaml"
    sinks.write_text(
        "version: 1\nsinks:\n"
        f"  - {{kind: pagerduty, routing_key: '${{TEST_PD_KEY}}', "
        f"url: '{services['pd'].url}/v2/enqueue'}}\n"
        "  - {kind: slack, url: '${TEST_SLACK_URL}'}\n"
    )
    env = {"MYTRADER_OPS_USERNAME": USER, "MYTRADER_OPS_PASSWORD": PASSWORD,
           "TEST_PD_KEY": PD_KEY, "TEST_SLACK_URL": services["slack"].url + SLACK_PATH}  # fmt: skip
    argv = ("validate", "--config", str(config), "--env", "staging", "--no-store",
            "--notify", str(sinks))  # fmt: skip
    server.set_faults(hubs_down=True)
    try:
        bad = run_cli(*argv, env=env)
    finally:
        server.clear_faults()
    good = run_cli(*argv, env=env)
    assert (bad.code, good.code) == (1, 0), bad.stderr + good.stderr
    pd = [r.body for r in services["pd"].requests]
    assert [b["event_action"] for b in pd] == ["trigger", "resolve"]
    assert {b["dedup_key"] for b in pd} == {"mytrader-ops/validate/staging"}
    assert "hub-market-data FAIL" in json.dumps(pd[0]["payload"]["custom_details"])
    decisions = [r.body["blocks"][1]["fields"][0]["text"] for r in services["slack"].requests]
    assert decisions == ["*Decision*\nNO-GO", "*Decision*\nGO"]
    assert services["pd"].violations == services["slack"].violations == []
    assert PD_KEY not in bad.stdout + bad.stderr + good.stdout + good.stderr
    missing = run_cli(*argv, env=env | {"TEST_PD_KEY": ""})  # unset or empty
    assert missing.code == 2
    assert "${TEST_PD_KEY} is unset" in missing.stderr
