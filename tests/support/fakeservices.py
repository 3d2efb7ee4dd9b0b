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

Answer = tuple[int, object]  # status, JSON body (or a str for text/plain)


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
                if injected is not None:
                    status, answer = injected, {"message": "injected failure"}
                else:
                    try:
                        status, answer = service.route(service, seen)
                    except Violation as exc:
                        with lock:
                            service.violations.append(f"{seen.method} {seen.path}: {exc}")
                        status, answer = 400, {"message": str(exc)}
                data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
                self.send_response(status)
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
