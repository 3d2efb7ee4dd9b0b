"""HTTP-level probes: endpoint + JSON assertions, health reports, Prometheus metrics."""

from __future__ import annotations

import json
from collections.abc import Callable

from mytrader_ops import healthformat, jsonassert, promtext
from mytrader_ops.config import HealthCheck, HttpCheck, MetricsCheck
from mytrader_ops.observation import Observation, StepLog
from mytrader_ops.probes.context import ProbeContext, run_probe


def _snippet(body: bytes, limit: int = 120) -> str:
    text = body[:limit].decode("utf-8", "replace").replace("\n", " ")
    return text + ("..." if len(body) > limit else "")


def error_body(body: bytes) -> str | None:
    """The message of a `{code, message}` / `{error}` body, if the body looks like an error."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict):
        for key in ("error", "errors"):
            if doc.get(key):
                return f"{key}: {str(doc[key])[:120]}"
        if "code" in doc and "message" in doc and len(doc) <= 3:
            return f"code {doc['code']}: {str(doc['message'])[:120]}"
    return None


def _record(
    log: StepLog, status: healthformat.HealthStatus, allow_warn: bool
) -> Callable[[str, str, float | None], None]:
    """pass -> ok; warn -> warn (a failure when warnings are not allowed); else failed."""
    if status == "pass":
        return log.ok
    if status == "warn":
        return log.warn if allow_warn else log.fail
    return log.fail


async def probe_http(ctx: ProbeContext, check: HttpCheck) -> Observation:
    async def body(log: StepLog) -> str | None:
        headers: dict[str, str] = {"Accept": "application/json", **check.headers}
        if check.auth:
            credentials = await ctx.authenticate(log)
            if credentials is None:
                return None
            headers.update(credentials)
        got = await ctx.fetch(
            check.method, ctx.url(check.path), headers=headers, max_bytes=check.max_bytes
        )
        log.values["latency_ms"] = got.elapsed_ms
        if got.status not in check.expect_status:
            log.fail(
                "status",
                f"HTTP {got.status}, expected {check.expect_status}: {_snippet(got.body)}",
                got.elapsed_ms,
            )
            return None
        log.ok("status", f"HTTP {got.status}", got.elapsed_ms)
        for name, want in check.expect_headers.items():
            value = got.headers.get(name)
            if value is not None and want.lower() in value.lower():
                log.ok(f"header {name}", value[:80])
            else:
                log.fail(f"header {name}", f"expected to contain {want!r}, got {value!r}")
        if got.status < 300:
            err = error_body(got.body) if not check.json_assert else None
            if err is not None:
                log.fail("body", f"HTTP {got.status} with an error body ({err})")
                return None
        if check.json_assert:
            try:
                doc = json.loads(got.body)
            except ValueError:
                log.fail("json", f"body is not JSON: {_snippet(got.body)}")
                return None
            for a in check.json_assert:
                result = jsonassert.check(doc, a)
                (log.ok if result.ok else log.fail)("assert", result.detail)
        return None

    return await run_probe(check.id, check.kind, check.timeout_s, body, redactor=ctx.redactor)


async def probe_health(ctx: ProbeContext, check: HealthCheck) -> Observation:
    async def body(log: StepLog) -> str | None:
        got = await ctx.fetch("GET", ctx.url(check.path), max_bytes=1024 * 1024)
        log.values["latency_ms"] = got.elapsed_ms
        report = healthformat.classify(got.status, got.headers.get("content-type", ""), got.body)
        detail = f"HTTP {got.status}, {report.format}, status {report.status}"
        if report.note:
            detail += f" ({report.note})"
        if report.status == "unknown":
            log.unknown("overall", detail)
        else:
            _record(log, report.status, check.allow_warn)("overall", detail, got.elapsed_ms)
        names = {c.name for c in report.components}
        for comp in report.components:
            text = f"{comp.status}" + (f", {comp.observed}" if comp.observed else "")
            _record(log, comp.status, check.allow_warn)(f"component {comp.name}", text, None)
        for required in check.require_components:
            if required not in names:
                log.fail(f"component {required}", "missing from the health report")
        return None

    return await run_probe(check.id, check.kind, check.timeout_s, body, redactor=ctx.redactor)


async def probe_metrics(ctx: ProbeContext, check: MetricsCheck) -> Observation:
    async def body(log: StepLog) -> str | None:
        got = await ctx.fetch("GET", ctx.url(check.path), max_bytes=8 * 1024 * 1024)
        log.values["latency_ms"] = got.elapsed_ms
        if got.status != 200:
            log.fail("status", f"HTTP {got.status}: {_snippet(got.body)}", got.elapsed_ms)
            return None
        log.ok("status", "HTTP 200", got.elapsed_ms)
        expo = promtext.parse(got.body.decode("utf-8", "replace"))
        if expo.problems:
            log.fail("format", f"{len(expo.problems)} malformed line(s): {expo.problems[0]}")
        else:
            log.ok("format", f"{expo.samples} samples, {len(expo.families)} names")
        for name in check.require:
            if name in expo.families:
                log.ok(f"metric {name}", "present")
            else:
                log.fail(f"metric {name}", "absent")
        return None

    return await run_probe(check.id, check.kind, check.timeout_s, body, redactor=ctx.redactor)
