"""GitHub REST (API version 2022-11-28): the self-updating comment and the statuses.

- Comment: `GET /repos/{owner}/{repo}/issues/{number}/comments?per_page=100&page=N` (every
  page, following `Link: rel="next"` up to 30 pages) to find the one carrying this
  environment's marker; `PATCH /repos/{owner}/{repo}/issues/comments/{id}` to rewrite it, or
  `POST /repos/{owner}/{repo}/issues/{number}/comments` for the first run.
- Commit status: `POST /repos/{owner}/{repo}/statuses/{sha}` with `state` (GO success, NO-GO
  failure, INCONCLUSIVE and errors error), `context` `mytrader-ops/<env>`, `description`
  (<= 140 characters) and `target_url` (the workflow run).
- Deployment status: `POST /repos/{owner}/{repo}/deployments/{id}/statuses` with `state`,
  `environment`, `description` and `log_url`.

Every call sends `Authorization: Bearer <token>`, `Accept: application/vnd.github+json` and
`X-GitHub-Api-Version: 2022-11-28`. The context (API URL, repository, pull request, head
sha, run URL) comes from the variables every runner sets and the event file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from mytrader_ops.ci.comment import marker
from mytrader_ops.ci.rest import RestClient, RestError
from mytrader_ops.redaction import Redactor

API_VERSION = "2022-11-28"
MAX_PAGES = 30
STATE = {"GO": "success", "GO WITH KNOWN ISSUES": "success", "NO-GO": "failure"}


@dataclass(frozen=True, slots=True)
class GitHubContext:
    api_url: str
    repository: str  # owner/name
    sha: str
    pull_request: int | None
    run_url: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHubContext:
        repo = env.get("GITHUB_REPOSITORY", "")
        if "/" not in repo:
            raise RestError("GITHUB_REPOSITORY is not set: not on a GitHub runner")
        event: dict[str, object] = {}
        path = env.get("GITHUB_EVENT_PATH")
        if path:
            try:
                with open(path, encoding="utf-8") as fh:
                    loaded = json.load(fh)
                event = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                event = {}
        pr = event.get("pull_request")
        number, sha = None, env.get("GITHUB_SHA", "")
        if isinstance(pr, dict) and isinstance(pr.get("number"), int):
            number = int(pr["number"])
            head = pr.get("head")
            if isinstance(head, dict) and isinstance(head.get("sha"), str):
                sha = head["sha"]  # the PR's head, not the merge commit GITHUB_SHA names
        server, run_id = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_RUN_ID")
        return cls(
            api_url=env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
            repository=repo,
            sha=sha,
            pull_request=number,
            run_url=f"{server}/{repo}/actions/runs/{run_id}" if server and run_id else None,
        )


def client(ctx: GitHubContext, token: str, redactor: Redactor) -> RestClient:
    redactor.add(token)
    return RestClient(
        ctx.api_url,
        {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "mytrader-ops",
        },
        redactor,
    )


def _next_link(link: str | None) -> str | None:
    for part in (link or "").split(","):
        url, _, rel = part.partition(";")
        if 'rel="next"' in rel:
            return url.strip().strip("<>")
    return None


def upsert_comment(api: RestClient, ctx: GitHubContext, env: str, body: str) -> str:
    """Rewrite this environment's comment on the pull request, or add it; "updated"/"created"."""
    assert ctx.pull_request is not None
    base = f"/repos/{ctx.repository}/issues"
    tag = marker(env)
    url: str | None = f"{base}/{ctx.pull_request}/comments?per_page=100&page=1"
    for _ in range(MAX_PAGES):
        if url is None:
            break
        page = api.call("GET", url, ok=(200,))
        for comment in page.body or []:
            if isinstance(comment, dict) and str(comment.get("body", "")).startswith(tag):
                api.call("PATCH", f"{base}/comments/{comment['id']}", {"body": body}, ok=(200,))
                return "updated"
        url = _next_link(page.headers.get("link"))
    api.call("POST", f"{base}/{ctx.pull_request}/comments", {"body": body}, ok=(201,))
    return "created"


def _description(decision: str, summary: str) -> str:
    text = f"{decision}: {summary}"
    return text if len(text) <= 140 else text[:139] + "…"


def commit_status(
    api: RestClient, ctx: GitHubContext, env: str, decision: str, summary: str
) -> None:
    body: dict[str, object] = {
        "state": STATE.get(decision, "error"),
        "context": f"mytrader-ops/{env}",
        "description": _description(decision, summary),
    }
    if ctx.run_url:
        body["target_url"] = ctx.run_url
    api.call("POST", f"/repos/{ctx.repository}/statuses/{ctx.sha}", body, ok=(201,))


def deployment_status(
    api: RestClient,
    ctx: GitHubContext,
    deployment_id: str,
    env: str,
    decision: str,
    summary: str,
) -> None:
    if not deployment_id.isdigit():
        raise RestError(f"deployment-id must be a number, got {deployment_id!r}")
    body: dict[str, object] = {
        "state": STATE.get(decision, "error"),
        "environment": env,
        "description": _description(decision, summary),
    }
    if ctx.run_url:
        body["log_url"] = ctx.run_url
    path = f"/repos/{ctx.repository}/deployments/{deployment_id}/statuses"
    api.call("POST", path, body, ok=(201,))
