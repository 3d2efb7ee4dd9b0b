"""Local stand-ins for PagerDuty, Opsgenie, Slack, GitHub and GitLab that check each request
against the shape their documentation gives (paths, headers, body fields, lengths) and answer
as the service does. A request that breaks the documented shape is answered 400 (as the
service would) and kept in `violations`, which every test asserts empty.

Sources: PagerDuty Events API v2 ("Send an Alert Event", `/v2/enqueue`); Opsgenie Alert API
(create, close, add note); Slack "Sending messages using incoming webhooks" and the Block
Kit reference (block limits); GitHub REST (issue comments, commit statuses, deployment
statuses; API version 2022-11-28); GitLab REST v4 (merge request notes, commit statuses).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# status, JSON body (or a str for text/plain), and optionally extra response headers
Answer = tuple[int, object] | tuple[int, object, dict[str, str]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeService:
    """A ThreadingHTTPServer on 127.0.0.1:0 whose `route` checks and answers each request."""

    route: Callable[[FakeService, Seen], Answer]
    requests: list[Seen] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before routing
    state: dict[str, Any] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    def start(self) -> FakeService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                body: Any = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = raw.decode(errors="replace")
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with lock:
                    service.requests.append(seen)
                    injected = service.fail_next.pop(0) if service.fail_next else None
                extra: dict[str, str] = {}
                if injected is not None:
                    status, answer = injected, {"message": "injected failure"}
                else:
                    try:
                        with lock:
                            routed = service.route(service, seen)
                        status, answer = routed[0], routed[1]
                        extra = routed[2] if len(routed) > 2 else {}  # type: ignore[misc]
                    except Violation as exc:
                        with lock:
                            service.violations.append(f"{seen.method} {seen.path}: {exc}")
                        status, answer = 400, {"message": str(exc)}
                data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                ctype = "text/plain" if isinstance(answer, str) else "application/json"
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = _any

            def log_message(self, *args: object) -> None:
                pass

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class Violation(Exception):
    """The request breaks the service's documented shape."""


def need(cond: bool, message: str) -> None:
    if not cond:
        raise Violation(message)


def _str(body: dict[str, Any], key: str, limit: int, required: bool = True) -> None:
    if key not in body:
        need(not required, f"{key} is required")
        return
    need(isinstance(body[key], str) and body[key] != "", f"{key} must be a non-empty string")
    need(len(body[key]) <= limit, f"{key} is longer than {limit} characters")


def _json(seen: Seen) -> dict[str, Any]:
    need(seen.headers.get("content-type", "").startswith("application/json"), "not JSON")
    need(isinstance(seen.body, dict), "the body must be a JSON object")
    return seen.body  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- PagerDuty

PD_KEYS = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client",
           "client_url"}  # fmt: skip
PD_PAYLOAD = {"summary", "source", "severity", "timestamp", "component", "group", "class",
              "custom_details"}  # fmt: skip
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def pagerduty(routing_key: str) -> FakeService:
    def route(svc: FakeService, seen: Seen) -> Answer:
        need(seen.method == "POST" and seen.path == "/v2/enqueue", "POST /v2/enqueue only")
        body = _json(seen)
        need(set(body) <= PD_KEYS, f"unknown fields {sorted(set(body) - PD_KEYS)}")
        need(body.get("routing_key") == routing_key, "invalid routing_key")
        action = body.get("event_action")
        need(action in ("trigger", "acknowledge", "resolve"), "event_action")
        if "dedup_key" in body:
            _str(body, "dedup_key", 255)
        if action == "trigger":
            payload = body.get("payload")
            need(isinstance(payload, dict), "payload is required to trigger")
            need(set(payload) <= PD_PAYLOAD, f"unknown payload fields {set(payload) - PD_PAYLOAD}")
            _str(payload, "summary", 1024)
            _str(payload, "source", 255)
            need(payload.get("severity") in ("critical", "error", "warning", "info"), "severity")
            if "timestamp" in payload:
                need(bool(ISO.match(str(payload["timestamp"]))), "timestamp is not ISO 8601")
            if "custom_details" in payload:
                need(isinstance(payload["custom_details"], dict), "custom_details is an object")
            for link in body.get("links", []):
                need(set(link) <= {"href", "text"} and "href" in link, "links[] {href, text}")
                need(str(link["href"]).startswith(("http://", "https://")), "links[].href URL")
        else:
            need("dedup_key" in body, f"dedup_key is required to {action}")
        return 202, {"status": "success", "message": "Event processed",
                     "dedup_key": body.get("dedup_key", "generated")}  # fmt: skip

    return FakeService(route)


# --------------------------------------------------------------------------- Opsgenie

OG_CREATE = {"message", "alias", "description", "responders", "visibleTo", "actions", "tags",
             "details", "entity", "source", "priority", "user", "note"}  # fmt: skip
OG_ALIAS_PATH = re.compile(r"^/v2/alerts/(?P<alias>[^/]+)/(?P<what>close|notes)$")


def opsgenie(api_key: str) -> FakeService:
    def route(svc: FakeService, seen: Seen) -> Answer:
        need(seen.headers.get("authorization") == f"GenieKey {api_key}", "GenieKey auth")
        body = _json(seen)
        need(seen.method == "POST", "POST only")
        if seen.path == "/v2/alerts":
            need(set(body) <= OG_CREATE, f"unknown fields {sorted(set(body) - OG_CREATE)}")
            _str(body, "message", 130)
            _str(body, "alias", 512, required=False)
            _str(body, "description", 15000, required=False)
            _str(body, "entity", 512, required=False)
            _str(body, "source", 100, required=False)
            need(body.get("priority", "P3") in ("P1", "P2", "P3", "P4", "P5"), "priority")
            tags = body.get("tags", [])
            need(isinstance(tags, list) and len(tags) <= 20, "tags: at most 20")
            need(all(isinstance(t, str) and len(t) <= 50 for t in tags), "tags: <= 50 chars")
            details = body.get("details", {})
            need(all(isinstance(v, str) for v in details.values()), "details: string values")
            svc.state.setdefault("open", set()).add(body.get("alias"))
        else:
            m = OG_ALIAS_PATH.match(seen.path)
            need(m is not None, f"unknown path {seen.path}")
            assert m is not None
            need(seen.query.get("identifierType") == ["alias"], "identifierType=alias")
            _str(body, "note", 25000, required=m["what"] == "notes")
            _str(body, "source", 100, required=False)
            if m["what"] == "close":
                svc.state.setdefault("closed", set()).add(m["alias"])
        return 202, {"result": "Request will be processed", "took": 0.01, "requestId": "r-1"}

    return FakeService(route)


# --------------------------------------------------------------------------- Slack

SLACK_BLOCKS = {"header", "section", "context", "divider", "actions", "image", "rich_text"}


def _text_object(obj: Any, limit: int, kinds: tuple[str, ...] = ("plain_text", "mrkdwn")) -> None:
    need(isinstance(obj, dict) and obj.get("type") in kinds, f"text object of {kinds}")
    need(isinstance(obj.get("text"), str) and 0 < len(obj["text"]) <= limit, f"text <= {limit}")


def slack(path: str) -> FakeService:
    def route(svc: FakeService, seen: Seen) -> Answer:
        need(seen.method == "POST" and seen.path == path, "the webhook's own path only")
        body = _json(seen)
        need("text" in body or "blocks" in body, "text or blocks is required")
        blocks = body.get("blocks", [])
        need(isinstance(blocks, list) and len(blocks) <= 50, "at most 50 blocks")
        for b in blocks:
            kind = b.get("type")
            need(kind in SLACK_BLOCKS, f"block type {kind!r}")
            if kind == "header":
                _text_object(b.get("text"), 150, ("plain_text",))
            elif kind == "section":
                need("text" in b or "fields" in b, "section needs text or fields")
                if "text" in b:
                    _text_object(b["text"], 3000)
                fields = b.get("fields", [])
                need(len(fields) <= 10, "at most 10 fields")
                for f in fields:
                    _text_object(f, 2000)
            elif kind == "context":
                elements = b.get("elements", [])
                need(0 < len(elements) <= 10, "context: 1-10 elements")
                for e in elements:
                    _text_object(e, 3000)
        return 200, "ok"

    return FakeService(route)


# --------------------------------------------------------------------------- GitHub

GH_STATES = {"error", "failure", "pending", "success"}
GH_DEPLOY_STATES = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
GH_COMMENTS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments$")
GH_COMMENT = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$")
GH_STATUS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$")
GH_DEPLOY = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/deployments/(?P<id>\d+)/statuses$")
PAGE_SIZE = 2  # small pages, so that the client must follow Link: rel="next"


def _url(value: Any, name: str) -> None:
    need(isinstance(value, str) and value.startswith(("http://", "https://")), f"{name}: URL")


def github(token: str, repo: str) -> FakeService:
    """Comments live in `state["comments"]` ({id: body}); statuses in `state["statuses"]`."""

    def route(svc: FakeService, seen: Seen) -> Answer:
        h = seen.headers
        need(h.get("authorization") == f"Bearer {token}", "Authorization: Bearer <token>")
        need(
            h.get("accept") == "application/vnd.github+json", "Accept: application/vnd.github+json"
        )
        need(h.get("x-github-api-version") == "2022-11-28", "X-GitHub-Api-Version: 2022-11-28")
        need(bool(h.get("user-agent")), "User-Agent is required")
        comments: dict[int, str] = svc.state.setdefault("comments", {})
        if (m := GH_COMMENTS.match(seen.path)) and m["repo"] == repo:
            if seen.method == "GET":
                per_page = int(seen.query.get("per_page", ["30"])[0])
                need(1 <= per_page <= 100, "per_page is 1-100")
                page = int(seen.query.get("page", ["1"])[0])
                ids = sorted(comments)
                chunk = ids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
                headers = {}
                if page * PAGE_SIZE < len(ids):
                    nxt = f"{svc.url}{seen.path}?per_page={per_page}&page={page + 1}"
                    headers["Link"] = f'<{nxt}>; rel="next"'
                body = [{"id": i, "body": comments[i], "user": {"login": "bot"}} for i in chunk]
                return 200, body, headers
            need(seen.method == "POST", "GET or POST")
            data = _json(seen)
            need(set(data) == {"body"}, "only body")
            _str(data, "body", 65536)
            new_id = 1000 + len(comments) + len(svc.state.get("deleted", []))
            comments[new_id] = data["body"]
            return 201, {"id": new_id, "body": data["body"]}
        if (m := GH_COMMENT.match(seen.path)) and m["repo"] == repo:
            need(seen.method == "PATCH", "PATCH a comment")
            data = _json(seen)
            need(set(data) == {"body"}, "only body")
            _str(data, "body", 65536)
            cid = int(m["id"])
            if cid not in comments:
                return 404, {"message": "Not Found"}
            comments[cid] = data["body"]
            return 200, {"id": cid, "body": data["body"]}
        if (m := GH_STATUS.match(seen.path)) and m["repo"] == repo:
            need(seen.method == "POST", "POST a status")
            data = _json(seen)
            need(set(data) <= {"state", "target_url", "description", "context"}, "fields")
            need(data.get("state") in GH_STATES, "state")
            _str(data, "description", 140, required=False)
            _str(data, "context", 255, required=False)
            if "target_url" in data:
                _url(data["target_url"], "target_url")
            svc.state.setdefault("statuses", []).append((m["sha"], data))
            return 201, {"id": 1, **data}
        if (m := GH_DEPLOY.match(seen.path)) and m["repo"] == repo:
            need(seen.method == "POST", "POST a deployment status")
            data = _json(seen)
            allowed = {"state", "target_url", "log_url", "description", "environment",
                       "environment_url", "auto_inactive"}  # fmt: skip
            need(set(data) <= allowed, f"fields {set(data) - allowed}")
            need(data.get("state") in GH_DEPLOY_STATES, "state")
            _str(data, "description", 140, required=False)
            if "log_url" in data:
                _url(data["log_url"], "log_url")
            svc.state.setdefault("deployment_statuses", []).append((m["id"], data))
            return 201, {"id": 1, **data}
        raise Violation(f"no such endpoint {seen.method} {seen.path}")

    return FakeService(route)


# --------------------------------------------------------------------------- GitLab

GL_NOTES = re.compile(r"^/api/v4/projects/(?P<p>[^/]+)/merge_requests/(?P<iid>\d+)/notes$")
GL_NOTE = re.compile(
    r"^/api/v4/projects/(?P<p>[^/]+)/merge_requests/(?P<iid>\d+)/notes/(?P<id>\d+)$"
)
GL_STATUS = re.compile(r"^/api/v4/projects/(?P<p>[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$")
GL_STATES = {"pending", "running", "success", "failed", "canceled", "skipped"}


def gitlab(token: str, project: str) -> FakeService:
    def route(svc: FakeService, seen: Seen) -> Answer:
        need(seen.headers.get("private-token") == token, "PRIVATE-TOKEN")
        notes: dict[int, str] = svc.state.setdefault("notes", {})
        if (m := GL_NOTES.match(seen.path)) and m["p"] == project:
            if seen.method == "GET":
                per_page = int(seen.query.get("per_page", ["20"])[0])
                need(1 <= per_page <= 100, "per_page is 1-100")
                page = int(seen.query.get("page", ["1"])[0])
                ids = sorted(notes)
                chunk = ids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
                nxt = str(page + 1) if page * PAGE_SIZE < len(ids) else ""
                body = [{"id": i, "body": notes[i], "system": False} for i in chunk]
                return 200, body, {"X-Next-Page": nxt, "X-Page": str(page)}
            need(seen.method == "POST", "GET or POST")
            data = _json(seen)
            _str(data, "body", 1_000_000)
            new_id = 500 + len(notes)
            notes[new_id] = data["body"]
            return 201, {"id": new_id, "body": data["body"]}
        if (m := GL_NOTE.match(seen.path)) and m["p"] == project:
            need(seen.method == "PUT", "PUT a note")
            data = _json(seen)
            _str(data, "body", 1_000_000)
            nid = int(m["id"])
            if nid not in notes:
                return 404, {"message": "404 Not found"}
            notes[nid] = data["body"]
            return 200, {"id": nid, "body": data["body"]}
        if (m := GL_STATUS.match(seen.path)) and m["p"] == project:
            need(seen.method == "POST", "POST a status")
            data = _json(seen)
            allowed = {"state", "ref", "name", "context", "target_url", "description",
                       "coverage", "pipeline_id"}  # fmt: skip
            need(set(data) <= allowed, f"fields {set(data) - allowed}")
            need(data.get("state") in GL_STATES, "state")
            _str(data, "description", 255, required=False)
            if "target_url" in data:
                _url(data["target_url"], "target_url")
            svc.state.setdefault("statuses", []).append((m["sha"], data))
            return 201, {"id": 1, "status": data["state"], "name": data.get("name")}
        raise Violation(f"no such endpoint {seen.method} {seen.path}")

    return FakeService(route)
