"""Checks for what the probes do not cover (issue 10, part 3): `kind: command` and `kind: tls`,
through the real CLI. Certificates come from the openssl CLI (a throwaway CA, a server
certificate signed by it) and are served by a real TLS server on loopback.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ops.conftest import ThreadedServer, read_request, response, run_cli

Serve = Callable[..., ThreadedServer]
PY = sys.executable


def _validate(tmp: Path, checks: str, target: str, env: dict[str, str] | None = None) -> Any:
    cfg = tmp / "c.yaml"
    cfg.write_text("version: 1\nchecks:\n" + checks)
    res = run_cli(
        "validate", "--config", str(cfg), "--target", target, "--report-dir", str(tmp / "r"),
        "--no-store", "--no-color", env=env or {},
    )  # fmt: skip
    doc = json.loads((tmp / "r" / "report.json").read_text())
    return res.code, {v["check_id"]: v for v in doc["verdicts"]}, res.stdout + res.stderr


def _command(argv: list[str], extra: str = "") -> str:
    return f"  - {{id: c, title: C, kind: command, command: {json.dumps(argv)}{extra}}}\n"


@pytest.mark.parametrize(
    ("argv", "extra", "status", "says"),
    [
        ([PY, "-c", "print('fine')"], "", "PASS", "exit code 0: fine"),
        ([PY, "-c", "import sys; print('broken'); sys.exit(4)"], "", "FAIL", "exit code 4"),
        ([PY, "-c", "import time; time.sleep(30)"], ", timeout_s: 1", "FAIL", "within 1 s"),
        (["/nonexistent/program"], "", "INCONCLUSIVE", "could not start"),
        ([PY, "-c", "print('{\"value\": 0.2}')"], ", max: 0.5", "PASS", "value 0.2"),
        ([PY, "-c", "print('{\"value\": 0.9}')"], ", max: 0.5", "FAIL", "value 0.9"),
        ([PY, "-c", "print('{\"value\": 3}')"], ", min: 5", "FAIL", "value 3"),
        ([PY, "-c", "print('no json')"], ", max: 0.5", "INCONCLUSIVE", 'no {"value"'),
    ],
)
def test_command_check(tmp_path: Path, argv: list[str], extra: str, status: str, says: str) -> None:
    _code, verdicts, out = _validate(tmp_path, _command(argv, extra), "http://127.0.0.1:9")
    assert verdicts["c"]["status"] == status, out
    assert says in verdicts["c"]["summary"] + " ".join(verdicts["c"]["evidence"]), verdicts["c"]


def test_a_command_sees_only_its_allowlist_and_its_output_is_redacted(tmp_path: Path) -> None:
    script = "import os; print(os.environ.get('CHECK_API_TOKEN'), os.environ.get('NOT_ALLOWED'))"
    checks = _command([PY, "-c", script], ", env: [CHECK_API_TOKEN]")
    env = {"CHECK_API_TOKEN": "tok-secret-771", "NOT_ALLOWED": "leaked-value"}
    _code, verdicts, out = _validate(tmp_path, checks, "http://127.0.0.1:9", env)
    evidence = " ".join(verdicts["c"]["evidence"])
    assert "*** None" in evidence  # the allowed secret arrived (masked); the other did not
    assert "tok-secret-771" not in out
    assert "leaked-value" not in out


def test_a_command_that_leaves_a_child_behind_is_ended_whole(tmp_path: Path) -> None:
    marker = tmp_path / "survivor"
    script = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3); "
        f'open({str(marker)!r}, "w")\'])\n'
        "import time; time.sleep(30)\n"
    )
    _code, verdicts, _out = _validate(
        tmp_path, _command([PY, "-c", script], ", timeout_s: 1"), "http://127.0.0.1:9"
    )
    assert verdicts["c"]["status"] == "FAIL"
    subprocess.run([PY, "-c", "import time; time.sleep(3.5)"], check=True)
    assert not marker.exists()  # the grandchild was ended with its group


def _certificates(tmp: Path, days: int) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 valid for `days`."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is needed (Debian's openssl package)")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "30", "-subj", "/CN=test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (tmp / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "srv.pem", "-days", str(days), "-extfile", "ext.cnf")  # fmt: skip
    return tmp / "ca.pem", tmp / "srv.pem", tmp / "srv.key"


async def _ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(response(200, b"{}"))
    await writer.drain()


def _tls_server(serve: Serve, cert: Path, key: Path) -> ThreadedServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return serve(_ok, ssl_context=context)


def _env_config(url: str, ca: Path | None, min_days: int) -> str:
    ca_line = f"    ca_file: {ca}\n" if ca is not None else ""
    return (
        f"default_env: e\nenvironments:\n  e:\n    backend: {url}\n{ca_line}"
        f"checks:\n  - {{id: t, title: TLS, kind: tls, min_days: {min_days}}}\n"
    )


def _run_env(tmp: Path, body: str) -> Any:
    cfg = tmp / "t.yaml"
    cfg.write_text("version: 1\n" + body)
    res = run_cli(
        "validate", "--config", str(cfg), "--report-dir", str(tmp / "r"), "--no-store",
        "--no-color",
    )  # fmt: skip
    doc = json.loads((tmp / "r" / "report.json").read_text())
    return res.code, doc["verdicts"][0], res.stdout + res.stderr


@pytest.mark.parametrize(("days", "min_days", "status"), [(90, 14, "PASS"), (5, 14, "FAIL")])
def test_tls_chain_expiry_and_protocol(
    serve: Serve, tmp_path: Path, days: int, min_days: int, status: str
) -> None:
    ca, cert, key = _certificates(tmp_path, days)
    server = _tls_server(serve, cert, key)
    _code, verdict, out = _run_env(tmp_path, _env_config(server.url, ca, min_days))
    assert verdict["status"] == status, out
    evidence = " ".join(verdict["evidence"])
    assert "[ok] chain" in evidence
    assert "TLSv1.3" in evidence or "TLSv1.2" in evidence
    (m,) = verdict["measurements"]
    assert m["threshold"] == min_days
    assert days - 1 <= m["value"] <= days  # the days left, beside the threshold


def test_tls_without_its_ca_does_not_verify_and_plain_http_has_no_tls(
    serve: Serve, tmp_path: Path
) -> None:
    _ca, cert, key = _certificates(tmp_path, 90)
    server = _tls_server(serve, cert, key)
    _code, verdict, out = _run_env(tmp_path, _env_config(server.url, None, 14))
    assert verdict["status"] == "FAIL", out
    assert "does not verify for 127.0.0.1" in verdict["summary"]
    _code, verdict, out = _run_env(tmp_path, _env_config("http://127.0.0.1:9", None, 14))
    assert verdict["status"] == "FAIL", out
    assert "not an https URL" in verdict["summary"]
