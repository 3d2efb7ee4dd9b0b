"""The GitHub Action's own steps (action.yml), run as a runner runs a composite action: each
step's `env:` with `${{ inputs.* }}` filled in, `bash -eo pipefail`, a fresh GITHUB_OUTPUT per
step, GITHUB_ENV carried to later steps, the action's outputs read from the step outputs. A
local GitHub checks every REST call against the documented shape."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.ci.conftest import PASSWORD, USER, write_config
from tests.support.fakeservices import FakeService, github
from tests.support.live import LiveServer, scaled

REPO = Path(__file__).resolve().parents[2]
TOKEN = "ghs_actiontokensecret0123456789abcdef"
HEAD = "a" * 40
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _expr(text: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
    def one(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref.startswith("inputs."):
            return inputs[ref.removeprefix("inputs.")]
        parts = ref.split(".")
        if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
            return steps.get(parts[1], {}).get(parts[3], "")
        raise AssertionError(f"the harness does not understand ${{{{ {ref} }}}}")

    return EXPR.sub(one, text)


def _condition(cond: str, inputs: dict[str, str]) -> bool:
    m = re.fullmatch(r"inputs\.([\w-]+) == '([^']*)'", cond.strip())
    assert m, f"the harness does not understand if: {cond}"
    return inputs[m[1]] == m[2]


def _read_outputs(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            end = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        name, _, value = line.partition("=")
        out[name] = value
        i += 1
    return out


def run_action(
    inputs: dict[str, str], runner_env: dict[str, str], tmp: Path
) -> tuple[int, dict[str, str], str]:
    spec = yaml.safe_load((REPO / "action.yml").read_text())
    assert set(inputs) <= set(spec["inputs"]), set(inputs) - set(spec["inputs"])
    values = {k: str(v.get("default", "")) for k, v in spec["inputs"].items()} | inputs
    steps: dict[str, dict[str, str]] = {}
    github_env: dict[str, str] = {}
    printed = ""
    for i, step in enumerate(spec["runs"]["steps"]):
        if "if" in step and not _condition(step["if"], values):
            continue
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "no expression inside a script (injection)"
        output = tmp / f"output-{i}"
        output.touch()
        env = dict(runner_env)
        env.update(github_env)
        env.update({k: _expr(str(v), values, steps) for k, v in step.get("env", {}).items()})
        env["GITHUB_OUTPUT"] = str(output)
        env["GITHUB_ACTION_PATH"] = str(REPO)
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            env=env, cwd=tmp, capture_output=True, text=True, timeout=scaled(120),
        )  # fmt: skip
        printed += done.stdout + done.stderr
        steps[step.get("id", str(i))] = _read_outputs(output)
        for line in Path(runner_env["GITHUB_ENV"]).read_text().splitlines():
            name, _, value = line.partition("=")
            github_env[name] = value
        if done.returncode != 0:
            outputs = {k: _expr(o["value"], values, steps) for k, o in spec["outputs"].items()}
            return done.returncode, outputs, printed
    outputs = {k: _expr(o["value"], values, steps) for k, o in spec["outputs"].items()}
    return 0, outputs, printed


@pytest.fixture
def api() -> Iterator[FakeService]:
    svc = github(TOKEN, "acme/mytrader").start()
    svc.state["comments"] = {1: "LGTM", 2: "<!-- other-bot -->", 3: "please rebase"}
    yield svc
    svc.stop()


def _runner_env(tmp: Path, api: FakeService, event: str = "pull_request") -> dict[str, str]:
    event_file = tmp / "event.json"
    event_file.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": HEAD}}}))
    for name in ("summary.md", "github_env", "github_path"):
        (tmp / name).touch()
    return {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp), "PYTHONPATH": str(REPO),
        "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/mytrader",
        "GITHUB_SHA": "b" * 40, "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(event_file),
        "GITHUB_API_URL": api.url, "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "4242", "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
        "GITHUB_ENV": str(tmp / "github_env"), "GITHUB_PATH": str(tmp / "github_path"),
        "RUNNER_TEMP": str(tmp), "RUNNER_OS": "Linux",
        "MYTRADER_OPS_USERNAME": USER, "MYTRADER_OPS_PASSWORD": PASSWORD,
    }  # fmt: skip


@pytest.mark.slow
def test_the_action_gates_comments_once_per_environment_and_posts_statuses(
    server: LiveServer, tmp_path: Path, api: FakeService
) -> None:
    env = _runner_env(tmp_path, api)
    inputs = {"config": str(write_config(tmp_path / "ops.yaml", server.url)), "env": "staging",
              "github-token": TOKEN, "store": str(tmp_path / "runs.db"), "install": "false",
              "python": sys.executable}  # fmt: skip
    code, outputs, printed = run_action(inputs, env, tmp_path)
    assert code == 0, printed
    assert outputs == {"decision": "GO", "exit-code": "0",
                       "report-dir": str(tmp_path / "mytrader-ops-report")}  # fmt: skip
    assert (tmp_path / "mytrader-ops-report" / "junit.xml").is_file()
    assert "# MyTrader smoke test: GO" in (tmp_path / "summary.md").read_text()
    [ours] = [b for b in api.state["comments"].values() if "mytrader-ops:gate" in b]
    assert ours.startswith("<!-- mytrader-ops:gate env=staging -->")
    assert "**GO** on `staging`" in ours
    assert "No earlier GO run" in ours
    assert "[workflow run](https://github.example/acme/mytrader/actions/runs/4242)" in ours
    sha, status = api.state["statuses"][-1]
    assert sha == HEAD  # the pull request's head, not the merge commit
    assert (status["state"], status["context"]) == ("success", "mytrader-ops/staging")

    server.set_faults(hubs_down=True)  # the next release breaks the hubs: NO-GO
    try:
        code, outputs, printed = run_action(inputs, env, tmp_path)
    finally:
        server.clear_faults()
    assert code == 1, printed  # fail-on: NO-GO INCONCLUSIVE (the default)
    assert outputs["decision"] == "NO-GO"
    assert outputs["exit-code"] == "1"
    gate_comments = [b for b in api.state["comments"].values() if "mytrader-ops:gate" in b]
    assert len(gate_comments) == 1  # updated in place, found on page 2 of the comments
    [ours] = gate_comments
    assert "**NO-GO**" in ours
    assert "`hub-market-data` | FAIL" in ours
    assert "Diff against the last GO run" in ours
    assert "Decision: GO -> NO-GO" in ours
    assert len(api.state["comments"]) == 4
    assert api.state["statuses"][-1][1]["state"] == "failure"
    assert "::error title=mytrader-ops::NO-GO" in printed

    inputs |= {"fail-on": "none", "status": "deployment", "deployment-id": "42", "comment": "false"}
    server.set_faults(hubs_down=True)
    try:
        code, outputs, printed = run_action(inputs, env, tmp_path)
    finally:
        server.clear_faults()
    assert code == 0, printed  # fail-on: none
    assert outputs["decision"] == "NO-GO"
    [(deployment, status)] = api.state["deployment_statuses"]
    assert deployment == "42"
    assert status["state"] == "failure"
    assert status["environment"] == "staging"
    assert status["log_url"].endswith("/runs/4242")
    assert api.violations == []
    everything = printed + (tmp_path / "summary.md").read_text() + json.dumps(api.state["comments"])
    assert TOKEN not in everything
    assert PASSWORD not in everything


def test_a_bad_input_is_a_usage_error_and_a_rest_failure_a_warning(
    server: LiveServer, tmp_path: Path, api: FakeService
) -> None:
    env = _runner_env(tmp_path, api)
    base = {"target": server.url, "install": "false", "python": sys.executable,
            "store": str(tmp_path / "runs.db")}  # fmt: skip
    code, outputs, printed = run_action(base | {"fail-on": "sometimes"}, env, tmp_path)
    assert code == 2
    assert outputs["decision"] == "ERROR"
    assert "Traceback" not in printed
    code, outputs, printed = run_action(base | {"args": "--duration 'unbalanced"}, env, tmp_path)
    assert code == 2
    api.fail_next[:] = [401, 401]  # a revoked token: the gate's verdict stands, with a warning
    code, outputs, printed = run_action(
        base | {"github-token": "bad-token-value", "args": "--config " + str(
            write_config(tmp_path / "ops.yaml", server.url)) + " --env staging",
                "target": ""},
        env | {"MYTRADER_OPS_USERNAME": USER}, tmp_path,
    )  # fmt: skip
    assert code == 0, printed
    assert outputs["decision"] == "GO"
    assert "::warning title=mytrader-ops::could not publish to GitHub" in printed
    assert "bad-token-value" not in printed
