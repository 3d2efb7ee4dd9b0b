"""`validate` itself on a GitHub runner: report.md appended to the step summary, decision and
exit code in the output file; a typo is exit 2 with `decision=ERROR`, never a traceback."""

from __future__ import annotations

from pathlib import Path

from mytrader_ops.ci.runner import output_lines
from tests.ci.conftest import PASSWORD, USER, write_config
from tests.ops.conftest import run_cli
from tests.support.live import LiveServer


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_a_plain_run_step_gets_summary_and_outputs(server: LiveServer, tmp_path: Path) -> None:
    config = write_config(tmp_path / "ops.yaml", server.url)
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    summary.write_text("earlier step\n")  # appended to, never replaced
    env = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output),
           "MYTRADER_OPS_USERNAME": USER, "MYTRADER_OPS_PASSWORD": PASSWORD}  # fmt: skip
    done = run_cli("validate", "--config", str(config), "--env", "staging", "--no-store",
                   "--report-dir", str(tmp_path / "r"), env=env)  # fmt: skip
    assert done.code == 0, done.stderr
    text = summary.read_text()
    assert text.startswith("earlier step\n# MyTrader smoke test: GO")
    assert "auth-flow" in text
    assert PASSWORD not in text
    values = _outputs(output)
    assert values["decision"] == "GO"
    assert values["exit-code"] == "0"
    assert values["report-dir"] == str(tmp_path / "r")
    assert values["run-id"] in text


def test_a_typo_is_exit_2_with_decision_error(tmp_path: Path) -> None:
    output = tmp_path / "output"
    done = run_cli("validate", "--config", str(tmp_path / "missing.yaml"), "--no-store",
                   env={"GITHUB_OUTPUT": str(output)})  # fmt: skip
    assert done.code == 2
    assert "Traceback" not in done.stderr
    assert _outputs(output) == {"decision": "ERROR", "exit-code": "2"}


def test_outputs_cannot_inject_another_output() -> None:
    text = output_lines({"a": "x", "b": "line1\nexit-code=0"})
    assert text.startswith("a=x\nb<<ghadelimiter_")
    delimiter = text.splitlines()[1].split("<<", 1)[1]
    assert text.endswith(f"\nline1\nexit-code=0\n{delimiter}\n")
