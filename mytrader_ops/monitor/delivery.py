"""Deliver pages to their sinks in the background: bounded, retried, never in the way.

Each sink has one worker thread and one queue, so the pages of one sink arrive in order (a
resolve never overtakes its trigger) and a slow or dead sink holds up no other sink, no
window and no rollback: `submit` only enqueues. An attempt has the sink's `timeout_s`; a
connection error, a timeout, a 429 or a 5xx is retried `retries` times with exponential
backoff (0.5, 1, 2, 4, 8 s, +-20%, or the service's `Retry-After` up to 8 s); any other 4xx is
final (the payload or the key is wrong: retrying cannot help). `close(deadline)` waits for the
queues at most that long and reports what is still undelivered as abandoned.

Every outcome (a refresh only when it failed) is handed to `on_result`: the monitor appends
it to the audit log as a `page` record and puts failures in the report. Nothing here prints a
sink's URL or key: details pass through the redactor, and keys travel only in headers/bodies.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from mytrader_ops.monitor.pagers import Request, iso, request_for
from mytrader_ops.monitor.pages import Page
from mytrader_ops.monitor.settings import (
    AlertmanagerSink,
    CommandSink,
    OpsgenieSink,
    PagerDutySink,
    PagerSink,
    SlackSink,
    WebhookSink,
)
from mytrader_ops.monitor.sinks import Alert, run_command, send_webhook
from mytrader_ops.redaction import ENV_REF, Redactor

AnySink = WebhookSink | CommandSink | AlertmanagerSink | PagerDutySink | OpsgenieSink | SlackSink
MAX_BACKOFF_S = 8.0
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one page at one sink."""

    sink: str
    action: str
    trigger: str
    key: str
    ok: bool
    attempts: int
    detail: str
    at: str

    def to_dict(self) -> dict[str, object]:
        return {
            "sink": self.sink,
            "action": self.action,
            "trigger": self.trigger,
            "key": self.key,
            "outcome": "ok" if self.ok else "failed",
            "attempts": self.attempts,
            "detail": self.detail,
            "at": self.at,
        }


def sink_name(sink: AnySink, index: int) -> str:
    return f"{sink.kind}#{index + 1}"


def resolve_secret(sink: AnySink) -> str | None:
    """The sink's URL or key from its `${VAR}` (or the plain Alertmanager URL); None if unset."""
    if isinstance(sink, AlertmanagerSink):
        match = ENV_REF.match(sink.url)
        return (os.environ.get(match.group(1)) or None) if match else sink.url
    if isinstance(sink, PagerDutySink):
        return sink.routing_key.reveal()
    if isinstance(sink, OpsgenieSink):
        return sink.api_key.reveal()
    if isinstance(sink, SlackSink | WebhookSink):
        return sink.url.reveal()
    return ""


def secret_value(sink: AnySink) -> str | None:
    """What must never be printed: keys, webhook URLs, an Alertmanager URL given as `${VAR}`."""
    if isinstance(sink, AlertmanagerSink) and not ENV_REF.match(sink.url):
        return None  # a plain URL in the config file is not a secret
    return resolve_secret(sink) or None


def missing_secret(sink: AnySink) -> str | None:
    """The `${VAR}` a sink needs and does not have, for a usage error before watching."""
    if resolve_secret(sink) is not None:
        return None
    if isinstance(sink, AlertmanagerSink):
        return sink.url
    if isinstance(sink, PagerDutySink):
        return f"${{{sink.routing_key.env_var}}}"
    if isinstance(sink, OpsgenieSink):
        return f"${{{sink.api_key.env_var}}}"
    if isinstance(sink, SlackSink | WebhookSink):
        return f"${{{sink.url.env_var}}}"
    return None


def legacy_alert(page: Page) -> Alert | None:
    """The webhook/command sinks' older vocabulary: firing, rolled-back, rollback-failed."""
    if page.action == "refresh":
        return None
    status = {"trigger": "firing", "update": "rollback-failed"}.get(page.action)
    if status is None:  # resolve
        status = "rolled-back" if page.reason.startswith("rolled back") else "resolved"
    message = page.summary if page.action == "trigger" else (page.reason or page.summary)
    if page.origin == "validate":
        status = page.decision
    return Alert(page.trigger, status, page.env, page.target, message)


def backoff_s(attempt: int, retry_after: float | None = None) -> float:
    """Delay before retry `attempt` (1-based): 0.5, 1, 2, 4, 8 s +-20% (at most 8 s), or
    Retry-After (at most 8 s)."""
    if retry_after is not None:
        return min(MAX_BACKOFF_S, max(0.0, retry_after))
    base: float = min(MAX_BACKOFF_S, 0.5 * 2.0 ** (attempt - 1))
    return min(MAX_BACKOFF_S, base * (0.8 + 0.4 * random.random()))


def _retry_after(response: httpx.Response) -> float | None:
    value = str(response.headers.get("retry-after", ""))
    try:
        return float(value)
    except ValueError:
        return None


class _Worker:
    def __init__(
        self,
        name: str,
        sink: AnySink,
        redactor: Redactor,
        on_result: Callable[[Delivery], None],
        stop: threading.Event,
    ) -> None:
        self.name = name
        self.sink = sink
        self.redactor = redactor
        self.on_result = on_result
        self.stop = stop
        self.queue: queue.Queue[Page | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name=f"page-{name}", daemon=True)
        self.client: httpx.Client | None = None

    def _run(self) -> None:
        timeout = getattr(self.sink, "timeout_s", 5.0)
        with httpx.Client(
            timeout=httpx.Timeout(timeout), trust_env=False, follow_redirects=False
        ) as client:
            self.client = client
            while (page := self.queue.get()) is not None:
                try:
                    if self.stop.is_set():
                        self._report(page, False, 0, "abandoned: the command ended first")
                    else:
                        self._deliver(page)
                except Exception as exc:  # a bug must not kill the worker and lose later pages
                    self._report(page, False, 1, f"internal error: {type(exc).__name__}")
                finally:
                    self.queue.task_done()
            self.queue.task_done()

    def _report(self, page: Page, ok: bool, attempts: int, detail: str) -> None:
        if ok and page.action == "refresh":
            return
        self.on_result(
            Delivery(
                self.name,
                page.action,
                page.trigger,
                page.key,
                ok,
                attempts,
                self.redactor.redact(detail)[:300],
                iso(time.time()),
            )
        )

    def _deliver(self, page: Page) -> None:
        sink = self.sink
        if isinstance(sink, WebhookSink | CommandSink):
            alert = legacy_alert(page)
            if alert is None:
                return
            result = (
                send_webhook(sink, alert, self.redactor)
                if isinstance(sink, WebhookSink)
                else run_command(sink, alert, self.redactor)
            )
            self._report(page, result.ok, 1, result.detail)
            return
        secret = resolve_secret(sink)
        if secret is None:
            self._report(page, False, 0, f"not sent: {missing_secret(sink)} is unset")
            return
        request = request_for(sink, secret, page)
        if request is None:
            return
        self._attempts(page, sink, request)

    def _attempts(self, page: Page, sink: PagerSink, request: Request) -> None:
        assert self.client is not None
        detail = ""
        for attempt in range(1, sink.retries + 2):
            retry_after = None
            try:
                response = self.client.request(
                    request.method, request.url, json=request.json, headers=request.headers
                )
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__}: {exc}"
            else:
                if 200 <= response.status_code < 300:
                    self._report(page, True, attempt, f"HTTP {response.status_code}")
                    return
                body = response.text[:160].replace("\n", " ")
                detail = f"HTTP {response.status_code}: {body}"
                if response.status_code not in _RETRYABLE:
                    self._report(page, False, attempt, detail)
                    return
                retry_after = _retry_after(response)
            if attempt > sink.retries or self.stop.wait(backoff_s(attempt, retry_after)):
                self._report(page, False, attempt, detail)
                return
        self._report(page, False, sink.retries + 1, detail)


class Dispatcher:
    """Pages in, deliveries out; `submit` never blocks, `close` is bounded."""

    def __init__(
        self,
        sinks: Sequence[AnySink],
        redactor: Redactor,
        on_result: Callable[[Delivery], None] | None = None,
    ) -> None:
        self._results: list[Delivery] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._on_result = on_result
        for sink in sinks:
            redactor.add(secret_value(sink))
        self._workers = [
            _Worker(sink_name(s, i), s, redactor, self._record, self._stop)
            for i, s in enumerate(sinks)
        ]
        for w in self._workers:
            w.thread.start()

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self._results.append(delivery)
        if self._on_result is not None:
            with contextlib.suppress(Exception):  # the audit log failing must not stop paging
                self._on_result(delivery)

    def submit(self, pages: Sequence[Page]) -> None:
        for page in pages:
            for w in self._workers:
                w.queue.put(page)

    @property
    def results(self) -> list[Delivery]:
        with self._lock:
            return list(self._results)

    def close(self, deadline_s: float) -> list[Delivery]:
        """Wait for every queue up to `deadline_s`, then abandon what is left."""
        end = time.monotonic() + deadline_s
        for w in self._workers:
            w.queue.put(None)
        for w in self._workers:
            w.thread.join(max(0.0, end - time.monotonic()))
        self._stop.set()
        for w in self._workers:
            w.thread.join(2.0)
            if w.thread.is_alive():
                self._record(
                    Delivery(w.name, "-", "-", "-", False, 0, "abandoned at exit", iso(time.time()))
                )
        return self.results
