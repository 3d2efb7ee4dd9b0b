"""The CLI contract: lazy imports for --help, exit codes, no tracebacks for operator typos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mytrader_ops.resources import data_dir, shipped_suites
from tests.ops.conftest import REPO, run_cli


def test_help_imports_no_heavy_modules() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['mytrader-ops', '--help']\n"
        "from mytrader_ops.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('httpx', 'websockets', 'yaml', 'pydantic', 'hdrh', "
        "'numpy', 'scipy') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "Exit codes: 0 GO" in done.stdout
    assert "3 INCONCLUSIVE" in done.stdout


def test_monitor_and_a_plain_validate_never_import_the_statistics_libraries() -> None:
    """numpy and scipy serve only the baseline judge: the monitor's modules (watch, triggers,
    verdicts) and validate without --baseline/--compare-to do not load them."""
    code = (
        "import sys\n"
        "import mytrader_ops.monitor.service, mytrader_ops.monitor.loop\n"
        "import mytrader_ops.monitor.verdicts, mytrader_ops.validate.runner\n"
        "import mytrader_ops.validate.sla, mytrader_ops.cli\n"
        "print(sorted(m for m in ('numpy', 'scipy') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_validate_help_documents_contract() -> None:
    res = run_cli("validate", "--help")
    assert res.code == 0
    for option in (
        "--config",
        "--env",
        "--target",
        "--frontend",
        "--report-dir",
        "--duration",
        "--rate",
        "--quiet",
        "--no-color",
    ):
        assert option in res.stdout
    assert "1 NO-GO" in res.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("validate",), "nothing to validate"),
        (("validate", "--target", "localhost:5002"), "--target must be an http(s) URL"),
        (("validate", "--target", "http://x", "--duration", "-1"), "--duration"),
        (("validate", "--config", "/nonexistent/x.yaml"), "cannot read"),
        (("validate", "--target", "http://x", "--env", "prod"), "unknown environment 'prod'"),
        (("validate", "--bogus"), "No such option"),
        (("config", "check", "/nonexistent.yaml"), "cannot read"),
        (("report", "diff", "a"), "usage"),
    ],
)
def test_operator_typos_exit_2_without_traceback(args: tuple[str, ...], fragment: str) -> None:
    res = run_cli(*args)
    assert res.code == 2, (res.stdout, res.stderr)
    assert fragment in res.stderr + res.stdout
    assert "Traceback" not in res.stderr + res.stdout


def test_config_check_reports_every_problem_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nchecks:\n  - id: a\n    title: t\n    kind: http\n    path: /x\n"
        "    critical: off\n    critical: true\n"
    )
    res = run_cli("config", "check", str(bad))
    assert res.code == 2
    assert f"{bad}:7: checks[0].critical: ambiguous value 'off'" in res.stderr
    assert f"{bad}:8: checks[0].critical: duplicate key" in res.stderr
    assert "Traceback" not in res.stderr


def test_config_check_ok_for_shipped_suites() -> None:
    for name in shipped_suites():
        res = run_cli("config", "check", str(data_dir("checks") / f"{name}.yaml"))
        assert res.code == 0, res.stderr
        assert "OK" in res.stdout


def test_config_schema_is_json_schema() -> None:
    res = run_cli("config", "schema")
    assert res.code == 0
    schema = json.loads(res.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "environments" in schema["properties"]


def test_unsafe_yaml_is_a_config_error_with_line(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "c.yaml"
    bad.write_text(f"version: 1\ntitle: !!python/object/apply:os.system ['touch {marker}']\n")
    res = run_cli("validate", "--config", str(bad), "--target", "http://127.0.0.1:9")
    assert res.code == 2
    assert ":2: title: tag" in res.stderr
    assert not marker.exists()


def test_runbook_for_every_check_id() -> None:
    from mytrader_ops.config import load_config

    runbooks = data_dir("runbooks")
    for name in shipped_suites():
        for check in load_config(data_dir("checks") / f"{name}.yaml").checks:
            path = runbooks / f"{check.id}.md"
            assert path.is_file(), f"missing runbook for {check.id}"
            text = path.read_text()
            for section in (
                "## What it checks",
                "## What a failure means",
                "## First steps",
                "## Escalation",
                "## Who decides",
            ):
                assert section in text, f"{path.name} lacks {section}"


def test_secret_in_a_mistyped_url_is_not_echoed() -> None:
    res = run_cli("validate", "--target", "http://bob:hunter2-canary@db.internal:5432/x?token=abc")
    assert res.code in (1, 2, 3)
    assert "hunter2-canary" not in res.stdout + res.stderr
    assert "token=abc" not in res.stdout + res.stderr


def test_unknown_stored_run_is_a_usage_error(tmp_path: Path) -> None:
    res = run_cli("report", "nope", "--store", str(tmp_path / "runs.db"))
    assert res.code == 2
    assert "no stored run 'nope'" in res.stderr


def test_quiet_no_color_against_a_down_target(tmp_path: Path) -> None:
    res = run_cli(
        "validate",
        "--config",
        str(REPO / "checks/smoke.yaml"),
        "--target",
        "http://127.0.0.1:9",
        "--quiet",
        "--no-color",
        "--store",
        str(tmp_path / "runs.db"),
    )
    assert res.code == 1, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("NO-GO run ")
    assert any("FAIL: backend-live:" in line for line in lines)
    assert "\x1b[" not in res.stdout


@pytest.mark.slow
def test_an_interrupted_validate_is_no_verdict_exit_3(tmp_path: Path) -> None:
    """Ctrl-C while sampling: no decision is printed or stored, and the exit code is
    INCONCLUSIVE's (3), never GO's."""
    import signal
    import socket
    import time

    from tests.support.live import scaled

    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MYTRADER_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "mytrader_ops", "validate", "--target", url, "--no-color",
             "--store", str(tmp_path / "runs.db")],
            env={**env, "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1"},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Ctrl-C as a terminal delivers it: a test run started as a background job has
            # SIGINT ignored (POSIX), and a child would inherit that and not stop
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        time.sleep(scaled(3))
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=scaled(30))
        except subprocess.TimeoutExpired:
            # it hung after Ctrl-C (seen once in CI): SIGABRT makes faulthandler print every
            # thread's stack, and the process is reaped here, not left to other tests
            proc.send_signal(signal.SIGABRT)
            out, err = proc.communicate(timeout=scaled(10))
            raise AssertionError(
                f"validate did not stop after SIGINT\n{out[-2000:]}\n{err[-6000:]}"
            ) from None
    assert proc.returncode == 3, out + err
    assert "interrupted: no verdict" in err
    assert "Traceback" not in err
    assert not any(line.startswith(("GO", "NO-GO")) for line in out.splitlines())
    assert not (tmp_path / "runs.db").exists()
