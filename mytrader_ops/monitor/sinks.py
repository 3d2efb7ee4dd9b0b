"""Alert sinks: a webhook (Slack-compatible `{"text": ...}` JSON) and a command (argv).

(The paging sinks, Alertmanager, PagerDuty, Opsgenie and Slack Block Kit, are pagers.py;
all of them are delivered in the background by delivery.py, these two included.)

Both are bounded (timeouts), both see only redacted text, and a failing sink is reported,
never fatal: the watch and the rollback go on. The webhook URL is a secret (`${ENV_VAR}`);
it is never printed. A command is an argv list, never a shell: `{trigger}`, `{status}`,
`{env}`, `{target}`, `{message}` in an argument are replaced by their value, each value
staying one argument however many spaces or `;` it holds. The command runs in its own
session; at the timeout its whole process group is terminated, then killed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mytrader_ops.monitor.settings import CommandSink, WebhookSink
from mytrader_ops.redaction import Redactor

FIELDS = ("trigger", "status", "env", "target", "message")


@dataclass(frozen=True, slots=True)
class Alert:
    trigger: str
    status: str  # firing, rolled-back, rollback-failed, ended
    env: str
    target: str
    message: str

    def values(self) -> dict[str, str]:
        return {
            "trigger": self.trigger,
            "status": self.status,
            "env": self.env,
            "target": self.target,
            "message": self.message,
        }

    def text(self) -> str:
        return (
            f"[mytrader-ops monitor] {self.status.upper()} {self.trigger} on {self.env} "
            f"({self.target}): {self.message}"
        )


@dataclass(frozen=True, slots=True)
class SinkResult:
    sink: str
    ok: bool
    detail: str


def render_argv(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Substitute the known `{field}`s inside each argument; never splits or joins arguments."""
    out = []
    for arg in argv:
        for key in FIELDS:
            arg = arg.replace("{" + key + "}", values.get(key, ""))
        out.append(arg)
    return out


def send_webhook(sink: WebhookSink, alert: Alert, redactor: Redactor) -> SinkResult:
    import httpx

    url = sink.url.reveal()
    if not url:
        return SinkResult("webhook", False, f"${{{sink.url.env_var}}} is unset: not sent")
    redactor.add(url)
    try:
        with httpx.Client(
            timeout=httpx.Timeout(sink.timeout_s), trust_env=False, follow_redirects=False
        ) as client:
            response = client.post(url, json={"text": redactor.redact(alert.text())})
        ok = 200 <= response.status_code < 300
        return SinkResult("webhook", ok, f"HTTP {response.status_code}")
    except httpx.HTTPError as exc:
        return SinkResult("webhook", False, redactor.redact(f"{type(exc).__name__}: {exc}")[:200])


def run_command(sink: CommandSink, alert: Alert, redactor: Redactor) -> SinkResult:
    from mytrader_ops.rollback.process import run_process

    values = {k: redactor.redact(v) for k, v in alert.values().items()}
    argv = render_argv(sink.argv, values)
    done = run_process(argv, timeout_s=sink.timeout_s, grace_s=2.0, env=dict(os.environ))
    name = f"command {sink.argv[0]}"
    if done.error:
        return SinkResult(name, False, done.error)
    if done.timed_out:
        return SinkResult(name, False, f"timed out after {sink.timeout_s:g} s; process group ended")
    return SinkResult(name, done.exit_code == 0, f"exit code {done.exit_code}")


def notify(
    sinks: Sequence[WebhookSink | CommandSink], alert: Alert, redactor: Redactor
) -> list[SinkResult]:
    results = []
    for sink in sinks:
        if isinstance(sink, WebhookSink):
            results.append(send_webhook(sink, alert, redactor))
        else:
            results.append(run_command(sink, alert, redactor))
    return results
