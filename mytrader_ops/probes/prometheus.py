"""Prometheus as an evidence source: run a check's PromQL query (instant or over a range) on
the environment's Prometheus, with its own auth. What came back is data for the pure judge
(`validate.promjudge`); an unreachable server or a rejected query is data too, never a crash.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

import httpx

from mytrader_ops.config import PrometheusCheck, PrometheusSource, span_seconds
from mytrader_ops.probes import authn
from mytrader_ops.probes.context import ProbeContext, ProbeIOError, describe_error

MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Series:
    labels: str  # `{job="api", instance="..."}`
    samples: tuple[tuple[float, float], ...]  # (UNIX seconds, value); NaN kept as NaN


@dataclass(frozen=True, slots=True)
class PromResult:
    series: tuple[Series, ...] = ()
    unreachable: str | None = None  # no answer, or an answer that is not Prometheus's
    rejected: str | None = None  # the server refused the query (its own message)
    evaluated_at: float = 0.0
    range_s: float | None = None
    step_s: float | None = None
    notes: tuple[str, ...] = field(default=())


def _labels(metric: object) -> str:
    if not isinstance(metric, dict) or not metric:
        return "{}"
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def _num(text: object) -> float:
    try:
        return float(str(text))  # Prometheus writes values as strings: "NaN", "+Inf" too
    except ValueError:
        return math.nan


def parse_answer(doc: object) -> tuple[tuple[Series, ...], str | None]:
    """The series of a Prometheus API answer, or why it is not one (pure)."""
    if not isinstance(doc, dict) or doc.get("status") != "success":
        error = doc.get("error") if isinstance(doc, dict) else None
        return (), str(error or "not a Prometheus answer")
    data = doc.get("data")
    if not isinstance(data, dict):
        return (), "no data in the answer"
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return (Series("{}", ((float(result[0]), _num(result[1])),)),), None
    if not isinstance(result, list):
        return (), f"unexpected result type {kind!r}"
    out = []
    for item in result:
        if not isinstance(item, dict):
            continue
        if kind == "vector" and isinstance(item.get("value"), list):
            ts, value = item["value"]
            out.append(Series(_labels(item.get("metric")), ((float(ts), _num(value)),)))
        elif kind == "matrix" and isinstance(item.get("values"), list):
            samples = tuple((float(ts), _num(v)) for ts, v in item["values"])
            out.append(Series(_labels(item.get("metric")), samples))
    return tuple(out), None


# The probes read raw bytes under a size cap: ask for them uncompressed.
_PLAIN = {"Accept": "application/json", "Accept-Encoding": "identity"}


async def _headers(ctx: ProbeContext, source: PrometheusSource) -> dict[str, str]:
    if source.auth is None:
        return dict(_PLAIN)

    async def post(
        url: str, headers: dict[str, str], json_body: object, form: bytes | None
    ) -> authn.Answer:
        got = await ctx.fetch(
            "POST", url, headers=headers, json_body=json_body, content=form, max_bytes=65536
        )
        try:
            parsed: object = json.loads(got.body)
        except ValueError:
            parsed = None
        return authn.Answer(got.status, parsed, got.body[:200].decode("utf-8", "replace"))

    cred = await authn.obtain(source.auth, source.url, post, ctx.redactor)
    return {**cred.headers, **_PLAIN}


async def query_check(
    ctx: ProbeContext, source: PrometheusSource, check: PrometheusCheck
) -> PromResult:
    """Run a check's query (instant, or over its range at its step)."""
    if check.range is None:
        return await query(ctx, source, check.query)
    return await query(
        ctx, source, check.query, span_seconds(check.range), span_seconds(check.step)
    )


async def query(
    ctx: ProbeContext,
    source: PrometheusSource,
    promql: str,
    range_s: float | None = None,
    step_s: float | None = None,
) -> PromResult:
    """Run a query; never raises for the server's sake."""
    now = time.time()
    base = source.url.rstrip("/")
    try:
        headers = await _headers(ctx, source)
    except (authn.AuthUnavailable, authn.AuthFailed) as exc:
        return PromResult(unreachable=f"Prometheus auth: {exc}", evaluated_at=now)
    params: dict[str, str] = {"query": promql}
    if range_s is None or step_s is None:
        range_s = step_s = None
        path = "/api/v1/query"
        params["time"] = f"{now:.3f}"
    else:
        path = "/api/v1/query_range"
        params.update(start=f"{now - range_s:.3f}", end=f"{now:.3f}", step=f"{step_s:g}")
    url = f"{base}{path}?{httpx.QueryParams(params)}"
    try:
        got = await ctx.fetch("GET", url, headers=headers, max_bytes=MAX_BYTES)
    except (httpx.HTTPError, OSError, ProbeIOError) as exc:
        return PromResult(unreachable=f"Prometheus {base}: {describe_error(exc)}", evaluated_at=now)
    try:
        doc: object = json.loads(got.body)
    except ValueError:
        return PromResult(
            unreachable=f"Prometheus {base} answered HTTP {got.status} without JSON",
            evaluated_at=now,
        )
    series, problem = parse_answer(doc)
    if problem is not None and got.status in (400, 422):
        return PromResult(rejected=problem, evaluated_at=now)
    if problem is not None:
        return PromResult(
            unreachable=f"Prometheus {base} answered HTTP {got.status}: {problem}",
            evaluated_at=now,
        )
    return PromResult(series, evaluated_at=now, range_s=range_s, step_s=step_s)


class PrometheusUnreachable(LookupError):
    """No Prometheus to ask (down, or its auth refused)."""


async def parse_check(ctx: ProbeContext, source: PrometheusSource, promql: str) -> str | None:
    """The server's objection to a query, or None: `/api/v1/parse_query` where the server has
    it, else an instant query (a parse error is a 400 there too). Raises PrometheusUnreachable."""
    base = source.url.rstrip("/")
    params = httpx.QueryParams({"query": promql})
    try:
        headers = await _headers(ctx, source)
        got = await ctx.fetch("GET", f"{base}/api/v1/parse_query?{params}", headers=headers)
        if got.status == 404:
            got = await ctx.fetch("GET", f"{base}/api/v1/query?{params}", headers=headers)
    except (httpx.HTTPError, OSError, ProbeIOError, authn.AuthUnavailable, authn.AuthFailed) as exc:
        raise PrometheusUnreachable(f"Prometheus {base}: {describe_error(exc)}") from None
    if got.status in (400, 422):
        try:
            doc = json.loads(got.body)
        except ValueError:
            return f"HTTP {got.status}"
        return str(doc.get("error", f"HTTP {got.status}")) if isinstance(doc, dict) else None
    return None
