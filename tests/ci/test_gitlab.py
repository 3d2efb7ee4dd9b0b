"""The GitLab CI template's job script, run with the variables a GitLab job has, against a
local GitLab that checks each REST call; the template publishes junit.xml and the HTML
report from where the script writes them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.ci.conftest import PASSWORD, USER, write_config
from tests.support.fakeservices import FakeService, gitlab
from tests.support.live import LiveServer, scaled

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "ci" / "gitlab" / "mytrader-ops.gitlab-ci.yml"
TOKEN = "glpat-secretprojecttoken0123"
SHA = "c" * 40


@pytest.fixture
def api() -> Iterator[FakeService]:
    svc = gitlab(TOKEN, "1234").start()
    svc.state["notes"] = {1: "first!", 2: "ci bot says hi"}
    yield svc
    svc.stop()


def _job(tmp: Path, api: FakeService, config: Path, **extra: str) -> tuple[int, str]:
    """The template's job: its variables, then its `script` lines (before_script installs the
    package, already importable here)."""
    job = yaml.safe_load(TEMPLATE.read_text())[".mytrader-ops-validate"]
    env = {k: str(v) for k, v in job["variables"].items()}
    env |= {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp), "PYTHONPATH": str(REPO), "GITLAB_CI": "true",
        "CI_API_V4_URL": api.url + "/api/v4", "CI_PROJECT_ID": "1234", "CI_COMMIT_SHA": SHA,
        "CI_MERGE_REQUEST_IID": "17", "CI_PIPELINE_URL": "https://gitlab.example/p/-/pipelines/9",
        "MYTRADER_OPS_CONFIG": str(config), "MYTRADER_OPS_ENV": "staging",
        "MYTRADER_OPS_USERNAME": USER, "MYTRADER_OPS_PASSWORD": PASSWORD,
        "MYTRADER_OPS_GITLAB_TOKEN": TOKEN,
    }  # fmt: skip
    env |= extra
    script = "\n".join(job["script"]).replace("python ", f"{_python()} ")
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=env, cwd=tmp,
                          capture_output=True, text=True, timeout=scaled(120))  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def _python() -> str:
    import sys

    return sys.executable


@pytest.mark.slow
def test_the_template_job_gates_keeps_one_note_and_sets_the_status(
    server: LiveServer, tmp_path: Path, api: FakeService
) -> None:
    job = yaml.safe_load(TEMPLATE.read_text())[".mytrader-ops-validate"]
    assert job["artifacts"]["when"] == "always"
    junit = job["artifacts"]["reports"]["junit"]
    assert job["artifacts"]["paths"] == ["reports/mytrader-ops/"]
    config = write_config(tmp_path / "ops.yaml", server.url)
    code, printed = _job(tmp_path, api, config)
    assert code == 0, printed
    assert (tmp_path / junit).is_file()
    assert (tmp_path / "reports/mytrader-ops/report.html").is_file()
    assert api.state["statuses"][-1] == (SHA, {
        "state": "success", "name": "mytrader-ops/staging",
        "description": api.state["statuses"][-1][1]["description"],
        "target_url": "https://gitlab.example/p/-/pipelines/9"})  # fmt: skip
    server.set_faults(hubs_down=True)
    try:
        code, printed = _job(tmp_path, api, config)
    finally:
        server.clear_faults()
    assert code == 1, printed  # NO-GO fails the job
    notes = [n for n in api.state["notes"].values() if "mytrader-ops:gate" in n]
    assert len(notes) == 1  # rewritten in place (found on the second page)
    assert "**NO-GO**" in notes[0]
    assert "Diff against the last GO run" in notes[0]
    assert api.state["statuses"][-1][1]["state"] == "failed"
    assert api.violations == []
    assert TOKEN not in printed
    assert PASSWORD not in printed
    assert TOKEN not in (tmp_path / "reports/mytrader-ops/report.md").read_text()
