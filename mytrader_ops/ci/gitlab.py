"""GitLab CI: run the gate in a job and publish it (the template's script).

    python -m mytrader_ops.ci.gitlab      # ci/gitlab/mytrader-ops.gitlab-ci.yml runs this

Runs `mytrader-ops validate --report-dir reports/mytrader-ops` with the job's variables
(`MYTRADER_OPS_CONFIG`, `_ENV`, `_TARGET`, `_FRONTEND`, `_BASELINE`, `_STORE`, `_ARGS`, the
last split like a shell would, never run by one) and exits with validate's exit code, so the
job fails on NO-GO (1), a usage error (2) and INCONCLUSIVE (3) unless the job says
`allow_failure: {exit_codes: [3]}`. The template publishes junit.xml as `reports: junit` and
the whole report directory (report.html included) as an artefact.

With `MYTRADER_OPS_GITLAB_TOKEN` (a project access token with `api` scope, a masked
variable; the job token cannot write notes), GitLab REST v4:

- Merge-request note, one per environment: `GET /projects/:id/merge_requests/:iid/notes`
  (`per_page=100`, following `X-Next-Page`) to find the note with this environment's marker,
  `PUT .../notes/:note_id` to rewrite it or `POST .../notes` the first time; `body` only.
- Commit status: `POST /projects/:id/statuses/:sha` with `state` (success on GO, failed
  otherwise), `name` `mytrader-ops/<env>`, `description` and `target_url` (the pipeline).

Every call sends `PRIVATE-TOKEN`. A failed call is a warning; the exit code stays validate's.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from mytrader_ops.ci.comment import comment_body, marker, run_diff
from mytrader_ops.ci.rest import RestClient, RestError
from mytrader_ops.redaction import Redactor

REPORT_DIR = Path("reports/mytrader-ops")
TOKEN_VAR = "MYTRADER_OPS_GITLAB_TOKEN"  # noqa: S105 - the variable's name
MAX_PAGES = 30


@dataclass(frozen=True, slots=True)
class GitLabContext:
    api_url: str
    project: str  # numeric id (or path), URL-encoded in paths
    sha: str
    merge_request: int | None
    pipeline_url: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitLabContext:
        api, project = env.get("CI_API_V4_URL"), env.get("CI_PROJECT_ID")
        if not api or not project:
            raise RestError("CI_API_V4_URL / CI_PROJECT_ID are not set: not in a GitLab job")
        iid = env.get("CI_MERGE_REQUEST_IID", "")
        return cls(
            api_url=api.rstrip("/"),
            project=quote(project, safe=""),
            sha=env.get("CI_COMMIT_SHA", ""),
            merge_request=int(iid) if iid.isdigit() else None,
            pipeline_url=env.get("CI_PIPELINE_URL") or env.get("CI_JOB_URL") or None,
        )


def client(ctx: GitLabContext, token: str, redactor: Redactor) -> RestClient:
    redactor.add(token)
    return RestClient(ctx.api_url, {"PRIVATE-TOKEN": token, "User-Agent": "mytrader-ops"}, redactor)


def upsert_note(api: RestClient, ctx: GitLabContext, env: str, body: str) -> str:
    assert ctx.merge_request is not None
    base = f"/projects/{ctx.project}/merge_requests/{ctx.merge_request}/notes"
    tag = marker(env)
    page: str | None = "1"
    for _ in range(MAX_PAGES):
        if not page:
            break
        answer = api.call("GET", base, params={"per_page": "100", "page": page}, ok=(200,))
        for note in answer.body or []:
            if isinstance(note, dict) and str(note.get("body", "")).startswith(tag):
                api.call("PUT", f"{base}/{note['id']}", {"body": body}, ok=(200,))
                return "updated"
        page = answer.headers.get("x-next-page") or None
    api.call("POST", base, {"body": body}, ok=(201,))
    return "created"


def commit_status(
    api: RestClient, ctx: GitLabContext, env: str, decision: str, summary: str
) -> None:
    text = f"{decision}: {summary}"
    body: dict[str, object] = {
        "state": "success" if decision in ("GO", "GO WITH KNOWN ISSUES") else "failed",
        "name": f"mytrader-ops/{env}",
        "description": text if len(text) <= 255 else text[:254] + "…",
    }
    if ctx.pipeline_url:
        body["target_url"] = ctx.pipeline_url
    api.call("POST", f"/projects/{ctx.project}/statuses/{ctx.sha}", body, ok=(200, 201))


def publish(env: Mapping[str, str], report_dir: Path, token: str, redactor: Redactor) -> None:
    from mytrader_ops.errors import OpsError
    from mytrader_ops.report.model import from_json, status_counts
    from mytrader_ops.store import RunStore, default_store

    report = from_json(json.loads((report_dir / "report.json").read_text()))
    ctx = GitLabContext.from_env(env)
    with client(ctx, token, redactor) as api:
        if ctx.merge_request is not None:
            store_file = env.get("MYTRADER_OPS_STORE")
            store = RunStore(Path(store_file) if store_file else default_store())
            try:
                base = store.latest_go(report.env_name, report.backend, before=report.run_id)
                diff, base_id = run_diff(report, base), base.run_id
            except OpsError:
                diff, base_id = None, None
            body = comment_body(report, diff, base_id, ctx.pipeline_url)
            done = upsert_note(api, ctx, report.env_name, redactor.redact(body))
            print(f"mytrader-ops: merge-request note {done}", flush=True)
        commit_status(api, ctx, report.env_name, report.decision.value, status_counts(report))


def main(environ: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if environ is None else environ)
    redactor = Redactor()
    token = env.get(TOKEN_VAR, "")
    redactor.add(token or None)
    argv = [sys.executable, "-m", "mytrader_ops", "validate", "--report-dir", str(REPORT_DIR)]
    for name in ("config", "env", "target", "frontend", "baseline", "store"):
        value = env.get(f"MYTRADER_OPS_{name.upper()}", "").strip()
        if value:
            argv += [f"--{name}", value]
    try:
        argv += shlex.split(env.get("MYTRADER_OPS_ARGS", ""))
    except ValueError as exc:
        print(f"mytrader-ops: error: MYTRADER_OPS_ARGS: {exc}", file=sys.stderr)
        return 2
    child = {k: v for k, v in env.items() if k != TOKEN_VAR}
    code = subprocess.run(argv, env=child, check=False).returncode
    if token and (REPORT_DIR / "report.json").is_file():
        from mytrader_ops.errors import OpsError

        try:
            publish(env, REPORT_DIR, token, redactor)
        except (OpsError, OSError, ValueError) as exc:
            print(redactor.redact(f"mytrader-ops: warning: not published: {exc}"), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
