"""The example manifests in deploy/ agree with the gate they call: the gate's ConfigMap is a
valid gate config, every env/suite a controller names exists in it, Argo's web provider
reads `decision` and its conditions judge the gate's real answers as intended, and the job
provider's command line is one the CLI accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from mytrader_ops.serve.settings import load_gate_settings
from tests.ops.conftest import run_cli
from tests.serve.test_gate import Gate, _suites
from tests.support.live import LiveServer

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _gate_config(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    [configmap] = [
        d for d in _docs(DEPLOY / "gate/mytrader-ops-gate.yaml") if d["kind"] == "ConfigMap"
    ]
    for name, text in configmap["data"].items():
        (tmp / name).write_text(text)
    monkeypatch.setenv("MYTRADER_OPS_USERNAME", "synthetic")
    monkeypatch.setenv("MYTRADER_OPS_PASSWORD", "synthetic-password")
    return load_gate_settings(tmp / "gate.yaml")


def _condition(expr: str, result: str) -> bool:
    """Argo's expressions as these templates write them: `result == "X"` joined by `||`."""
    terms = [t.strip() for t in expr.split("||")]
    values = []
    for term in terms:
        m = re.fullmatch(r'result == "([^"]*)"', term)
        assert m, f"unexpected condition {term!r}"
        values.append(m[1])
    return result in values


def test_controllers_name_only_what_the_gate_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _gate_config(tmp_path, monkeypatch)
    [service] = [d for d in _docs(DEPLOY / "gate/mytrader-ops-gate.yaml") if d["kind"] == "Service"]
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    port = service["spec"]["ports"][0]["port"]

    def served(env: str, suite: str) -> None:
        assert suite in settings.suites, suite
        assert env in settings.configs[suite].environments, (env, suite)

    [web] = _docs(DEPLOY / "argo-rollouts/analysis-template-web.yaml")
    args = {a["name"]: a["value"] for a in web["spec"]["args"]}
    [metric] = web["spec"]["metrics"]
    provider = metric["provider"]["web"]
    url = urlsplit(provider["url"])
    assert (url.hostname, url.port, url.path) == (host, port, "/gate")
    assert parse_qs(url.query) == {"env": ["{{args.env}}"], "suite": ["{{args.suite}}"]}
    served(args["env"], args["suite"])
    assert provider["jsonPath"] == "{$.decision}"
    assert provider["timeoutSeconds"] >= settings.deadline_s
    [canary] = _docs(DEPLOY / "flagger/canary.yaml")
    hooks = canary["spec"]["analysis"]["webhooks"]
    assert {h["type"] for h in hooks} == {"pre-rollout", "rollout"}
    for hook in hooks:
        url = urlsplit(hook["url"])
        assert (url.hostname, url.port, url.path) == (host, port, "/gate")
        served(hook["metadata"]["env"], hook["metadata"]["suite"])
    [job] = _docs(DEPLOY / "argo-rollouts/analysis-template-job.yaml")
    container = job["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"][
        "containers"][0]  # fmt: skip
    argv = container["args"]
    assert argv[:2] == ["mytrader-ops", "validate"]
    help_text = run_cli("validate", "--help").stdout
    for option in (a for a in argv[2:] if a.startswith("--")):
        assert option in help_text, option
    assert argv[argv.index("--config") + 1].removeprefix("/etc/mytrader-ops/") in (
        DEPLOY / "gate/mytrader-ops-gate.yaml").read_text()  # fmt: skip


@pytest.mark.slow
def test_argo_conditions_judge_the_gates_real_answers(server: LiveServer, tmp_path: Path) -> None:
    _suites(tmp_path, server.url)
    [web] = _docs(DEPLOY / "argo-rollouts/analysis-template-web.yaml")
    [metric] = web["spec"]["metrics"]
    gate = Gate(tmp_path, "version: 1\nsuites: {smoke: smoke.yaml}\nstore: runs.db\n")
    try:
        status, answer, _ = gate.call("GET", "?env=staging&suite=smoke", token=None)
        assert status == 200
        assert _condition(metric["successCondition"], str(answer["decision"]))
        assert not _condition(metric["failureCondition"], str(answer["decision"]))
        server.set_faults(hubs_down=True)
        try:
            status, answer, _ = gate.call("GET", "?env=staging&suite=smoke", token=None)
        finally:
            server.clear_faults()
        assert status == 200
        assert _condition(metric["failureCondition"], str(answer["decision"]))
        assert not _condition(metric["successCondition"], str(answer["decision"]))
    finally:
        gate.stop()
