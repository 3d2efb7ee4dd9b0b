"""The script of the GitHub Action (`action.yml` at the repository root).

    python -m mytrader_ops.ci.action      # inputs arrive as INPUT_* variables

1. Runs `mytrader-ops validate` with the inputs (`config`, `env`, `target`, `frontend`,
   `baseline`, `store`, `args` split like a shell would, never run by one) and
   `--report-dir`; validate itself appends report.md to `$GITHUB_STEP_SUMMARY` and writes
   `decision`, `exit-code`, `run-id` and `report-dir` to `$GITHUB_OUTPUT`.
2. With `github-token`: rewrites this environment's pull-request comment (decision, blocking
   checks, the diff against the last GO run in the run store) and posts a commit status, or a
   deployment status with `status: deployment` and `deployment-id`.
3. Exits non-zero when the decision is listed in `fail-on` (default `NO-GO INCONCLUSIVE`)
   and always on a usage error (2); otherwise 0, so the workflow decides what follows.

A failed comment or status is a warning annotation, never a changed decision.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from mytrader_ops.ci.runner import write_outputs
from mytrader_ops.redaction import Redactor

DECISIONS = ("GO", "GO WITH KNOWN ISSUES", "NO-GO", "INCONCLUSIVE")


def _input(env: Mapping[str, str], name: str) -> str:
    return env.get(f"INPUT_{name.upper().replace('-', '_')}", "").strip()


def fail_on(text: str) -> set[str]:
    """`NO-GO INCONCLUSIVE` (commas or spaces); `none` fails on nothing but usage errors."""
    words = {w.strip().upper() for w in text.replace(",", " ").split() if w.strip()}
    if not words:
        return {"NO-GO", "INCONCLUSIVE"}
    if words == {"NONE"}:
        return set()
    unknown = words - set(DECISIONS) - {"KNOWN-ISSUES"}
    if unknown:
        raise ValueError(f"fail-on: unknown decision(s) {sorted(unknown)}; use NO-GO, INCONCLUSIVE")
    return {"GO WITH KNOWN ISSUES" if w == "KNOWN-ISSUES" else w for w in words}


def validate_argv(env: Mapping[str, str], report_dir: Path) -> list[str]:
    argv = [sys.executable, "-m", "mytrader_ops", "validate", "--report-dir", str(report_dir)]
    for name in ("config", "env", "target", "frontend", "baseline", "store"):
        value = _input(env, name)
        if value:
            argv += [f"--{name}", value]
    return argv + shlex.split(_input(env, "args"))


def annotate(kind: str, text: str) -> None:
    clean = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    print(f"::{kind} title=mytrader-ops::{clean}", flush=True)


def publish(env: Mapping[str, str], report_dir: Path, token: str, redactor: Redactor) -> None:
    from mytrader_ops.ci import github
    from mytrader_ops.ci.comment import comment_body, run_diff
    from mytrader_ops.errors import OpsError
    from mytrader_ops.report.model import from_json, status_counts
    from mytrader_ops.store import RunStore, default_store

    report = from_json(json.loads((report_dir / "report.json").read_text()))
    ctx = github.GitHubContext.from_env(env)
    with github.client(ctx, token, redactor) as api:
        if ctx.pull_request is not None and _input(env, "comment").lower() != "false":
            store = RunStore(
                Path(_input(env, "store")) if _input(env, "store") else default_store()
            )
            try:
                base = store.latest_go(report.env_name, report.backend, before=report.run_id)
                diff, base_id = run_diff(report, base), base.run_id
            except OpsError:
                diff, base_id = None, None
            body = comment_body(report, diff, base_id, ctx.run_url)
            done = github.upsert_comment(api, ctx, report.env_name, redactor.redact(body))
            print(f"mytrader-ops: pull-request comment {done}", flush=True)
        status = _input(env, "status").lower() or "commit"
        summary = status_counts(report)
        if status == "commit":
            github.commit_status(api, ctx, report.env_name, report.decision.value, summary)
        elif status == "deployment":
            github.deployment_status(
                api, ctx, _input(env, "deployment-id"), report.env_name,
                report.decision.value, summary,
            )  # fmt: skip
        elif status != "none":
            raise OpsError(f"status must be commit, deployment or none, got {status!r}")


def main(environ: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if environ is None else environ)
    redactor = Redactor()
    token = _input(env, "github-token")
    redactor.add(token or None)
    runner_temp = env.get("RUNNER_TEMP") or "."
    report_dir = Path(_input(env, "report-dir") or Path(runner_temp) / "mytrader-ops-report")
    try:
        failing = fail_on(_input(env, "fail-on"))
        argv = validate_argv(env, report_dir)
    except ValueError as exc:
        annotate("error", f"usage: {exc}")
        write_outputs({"decision": "ERROR", "exit-code": "2", "report-dir": str(report_dir)}, env)
        return 2
    child = {k: v for k, v in env.items() if k != "INPUT_GITHUB_TOKEN"}  # validate needs no token
    code = subprocess.run(argv, env=child, check=False).returncode
    report_file = report_dir / "report.json"
    if not report_file.is_file():
        write_outputs(
            {"decision": "ERROR", "exit-code": str(code), "report-dir": str(report_dir)}, env
        )
        annotate("error", f"validate ended with exit code {code} and no report")
        return code or 2
    decision = json.loads(report_file.read_text())["decision"]
    if token:
        from mytrader_ops.errors import OpsError

        try:
            publish(env, report_dir, token, redactor)
        except (OpsError, OSError, ValueError) as exc:
            annotate("warning", redactor.redact(f"could not publish to GitHub: {exc}"))
    if decision in failing:
        annotate("error", f"{decision} (exit code {code}); see the job summary")
        return code or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
