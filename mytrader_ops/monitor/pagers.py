"""Page events as each paging service documents its payload. Pure: requests, not I/O.

- Alertmanager, `POST /api/v2/alerts` (the v2 OpenAPI spec, `postableAlerts`): a list of
  `{labels, annotations, startsAt, endsAt}`; labels `alertname`, `trigger`, `env`, `watch`,
  `severity`; the evidence and `runbook_url` in annotations. A firing alert's `endsAt` is
  `hold` ahead and moves on with every refresh; resolving sets it to now.
- PagerDuty Events API v2, `POST /v2/enqueue`: `routing_key`, `event_action`
  (`trigger`/`resolve`), `dedup_key`; a trigger's `payload` has `summary` (<= 1024 characters),
  `source`, `severity`, `timestamp`, `custom_details`; `links` for the runbook.
- Opsgenie Alert API: `POST /v2/alerts` (`message` <= 130 characters, `alias` <= 512,
  `description`, `details`, `priority`) with `Authorization: GenieKey KEY`; close with
  `POST /v2/alerts/{alias}/close?identifierType=alias`; a note on an update.
- Slack incoming webhooks with Block Kit: `text` (the notification fallback) and `blocks`
  (header <= 150 characters, section text <= 3000, at most 10 fields); mrkdwn escapes
  `&`, `<`, `>`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import quote

from mytrader_ops.monitor.pages import Page
from mytrader_ops.monitor.settings import (
    AlertmanagerSink,
    OpsgenieSink,
    PagerDutySink,
    PagerSink,
    SlackSink,
    parse_duration,
)

JsonValue = object


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request to a paging service. `headers` may hold a key: never print them."""

    method: str
    url: str
    json: JsonValue
    headers: dict[str, str] = field(default_factory=dict, repr=False)


def iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def headline(page: Page) -> str:
    if page.origin == "validate":
        return f"{page.decision}: release gate on {page.env}"
    if page.action == "resolve":
        return f"RESOLVED: {page.trigger} on {page.env}"
    if page.action == "update":
        return f"FIRING: {page.trigger} on {page.env}: {page.rollback}"
    return f"FIRING: {page.trigger} on {page.env}"


def description(page: Page) -> str:
    lines = [page.summary]
    lines += [f"- {e.text}" for e in page.evidence]
    if page.rollback:
        lines.append(f"rollback: {page.rollback}")
    if page.reason:
        lines.append(f"why: {page.reason}")
    if page.runbook:
        lines.append(f"runbook: {page.runbook}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- Alertmanager


def alertmanager_request(sink: AlertmanagerSink, base_url: str, page: Page) -> Request | None:
    # every action is a post: an update re-sends the alert with the rollback's state
    labels = {
        "alertname": "MyTraderOpsTrigger" if page.origin == "monitor" else "MyTraderReleaseGate",
        "trigger": page.trigger,
        "env": page.env,
        "watch": page.watch_id if page.origin == "monitor" else "validate",
        "severity": sink.severity,
    }
    annotations = {
        "summary": _cut(headline(page), 300),
        "description": _cut(description(page), 4000),
        "evidence": _cut("\n".join(e.text for e in page.evidence), 4000),
        "target": page.target,
        "rollback": page.rollback,
        "decision": page.decision,
    }
    if page.origin == "validate":
        annotations["run"] = page.watch_id
    if page.runbook:
        annotations["runbook_url"] = page.runbook
    ends = page.at_s if page.action == "resolve" else page.at_s + parse_duration(sink.hold)
    alert = {
        "labels": labels,
        "annotations": {k: v for k, v in annotations.items() if v},
        "startsAt": iso(page.started_at_s),
        "endsAt": iso(ends),
    }
    return Request("POST", base_url.rstrip("/") + "/api/v2/alerts", [alert])


# --------------------------------------------------------------------------- PagerDuty


def pagerduty_request(sink: PagerDutySink, routing_key: str, page: Page) -> Request | None:
    if page.action in ("refresh", "update"):
        return None  # the incident is open already; PagerDuty keeps its own timeline
    if page.action == "resolve":
        body: dict[str, object] = {
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": page.key,
        }
        return Request("POST", sink.url, body)
    details: dict[str, object] = {
        "evidence": [e.text for e in page.evidence],
        "target": page.target,
        "rollback": page.rollback,
        "decision": page.decision,
        "watch": page.watch_id,
    }
    body = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": page.key,
        "payload": {
            "summary": _cut(f"{headline(page)}: {page.summary}", 1024),
            "source": page.target,
            "severity": sink.severity,
            "timestamp": iso(page.at_s),
            "component": "mytrader",
            "group": page.env,
            "class": page.trigger,
            "custom_details": details,
        },
        "client": "mytrader-ops",
    }
    if page.runbook.startswith(("http://", "https://")):
        body["links"] = [{"href": page.runbook, "text": "Runbook"}]
    return Request("POST", sink.url, body)


# --------------------------------------------------------------------------- Opsgenie


def opsgenie_request(sink: OpsgenieSink, api_key: str, page: Page) -> Request | None:
    base = sink.url.rstrip("/") + "/v2/alerts"
    headers = {"Authorization": f"GenieKey {api_key}"}
    alias = quote(page.key, safe="")
    if page.action == "refresh":
        return None
    if page.action == "resolve":
        note = _cut(page.reason or "resolved", 25000)
        return Request(
            "POST",
            f"{base}/{alias}/close?identifierType=alias",
            {"source": "mytrader-ops", "note": note},
            headers,
        )
    if page.action == "update":
        return Request(
            "POST",
            f"{base}/{alias}/notes?identifierType=alias",
            {
                "source": "mytrader-ops",
                "note": _cut(page.reason or page.rollback or page.summary, 25000),
            },
            headers,
        )
    details = {
        "env": page.env,
        "target": page.target,
        "trigger": page.trigger,
        "watch": page.watch_id,
        "rollback": page.rollback,
        "decision": page.decision,
    }
    if page.runbook:
        details["runbook"] = page.runbook
    body = {
        "message": _cut(headline(page), 130),
        "alias": page.key,
        "description": _cut(description(page), 15000),
        "details": {k: _cut(v, 8000) for k, v in details.items() if v},
        "entity": page.env,
        "source": "mytrader-ops",
        "priority": sink.priority,
        "tags": ["mytrader-ops", page.env, page.trigger],
    }
    return Request("POST", base, body, headers)


# --------------------------------------------------------------------------- Slack


def mrkdwn(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(page: Page) -> dict[str, object]:
    title = headline(page)
    fields = [
        {"type": "mrkdwn", "text": f"*Decision*\n{mrkdwn(page.decision)}"},
        {"type": "mrkdwn", "text": f"*Environment*\n{mrkdwn(page.env)}"},
        {"type": "mrkdwn", "text": f"*Target*\n{mrkdwn(_cut(page.target, 500))}"},
    ]
    if page.rollback:
        fields.append(
            {"type": "mrkdwn", "text": f"*Rollback*\n{mrkdwn(_cut(page.rollback, 1500))}"}
        )
    evidence = "\n".join(f"• {mrkdwn(e.text)}" for e in page.evidence) or mrkdwn(page.summary)
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, 150)}},
        {"type": "section", "fields": fields},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(f"*Evidence* (value vs threshold)\n{evidence}", 3000),
            },
        },
    ]
    if page.runbook:
        link = (
            f"<{page.runbook}|{mrkdwn(page.runbook.rsplit('/', 1)[-1])}>"
            if page.runbook.startswith(("http://", "https://"))
            else f"`{mrkdwn(page.runbook)}`"
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Runbook*: {link}"}})
    context = f"mytrader-ops · {page.origin} `{mrkdwn(page.watch_id)}`"
    if page.reason:
        context += f" · {mrkdwn(_cut(page.reason, 1000))}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": _cut(f"{title}: {page.summary}", 3000), "blocks": blocks}


def slack_request(sink: SlackSink, url: str, page: Page) -> Request | None:
    if page.action == "refresh":
        return None
    return Request("POST", url, slack_blocks(page))


def request_for(sink: PagerSink, secret: str, page: Page) -> Request | None:
    """The request a sink sends for a page, or None when the page is nothing to it.
    `secret` is the sink's resolved URL (alertmanager, slack) or key (pagerduty, opsgenie)."""
    if isinstance(sink, AlertmanagerSink):
        return alertmanager_request(sink, secret, page)
    if isinstance(sink, PagerDutySink):
        return pagerduty_request(sink, secret, page)
    if isinstance(sink, OpsgenieSink):
        return opsgenie_request(sink, secret, page)
    return slack_request(sink, secret, page)
