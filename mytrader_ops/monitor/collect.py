"""One window of I/O: validate's open-model sampler plus a few probes, reduced to a summary.

During a window of `interval` seconds the monitor:
- samples the API paths open-model at `rate` per second each (latency from the intended send
  time, late and dropped sends counted: validate's `run_sampler`), the direct API path;
- reads `/health/ready` (overall status, the database component) and scrapes `/metrics`;
- opens one hub session directly (negotiate, connect, handshake, close) and, when logged in,
  one the way a mobile client does (`access_token` in the query); through the frontend proxy
  too when a frontend URL is given;
- keeps the sampler's own health (was the monitor, not the target, the bottleneck?), which
  the report's latency verdict reads;
- calls an authorized endpoint with the session's token (logging in again when there is none,
  when it is refused, and every `relogin_s`): a refused login or a fresh token refused is an
  authentication failure; a 5xx or rate limit is not an authentication verdict (no data).
Every failure is a reading in the summary, never an exception.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from mytrader_ops import healthformat
from mytrader_ops.config import PrometheusSource
from mytrader_ops.monitor.promvalues import Scrape, db_mean_ms, reduce_scrape
from mytrader_ops.monitor.stream import StreamWatcher
from mytrader_ops.monitor.windows import (
    AuthState,
    ComponentStatus,
    PathTally,
    WindowSummary,
    find_gaps,
)
from mytrader_ops.probes import prometheus
from mytrader_ops.probes.context import ProbeContext, ProbeIOError, describe_error
from mytrader_ops.probes.hubsession import HubAuth, HubError, HubSession, hub_auth
from mytrader_ops.probes.sampler import StreamSpec, run_sampler
from mytrader_ops.stats import LatencyHistogram

DEFAULT_PATHS = ("/api/symbols", "/api/market-data/quotes/AAPL")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True, slots=True)
class CollectSettings:
    interval_s: float
    rate: float
    api_paths: tuple[str, ...] = DEFAULT_PATHS
    request_timeout_s: float = 5.0
    probe_timeout_s: float = 5.0
    gap_threshold_s: float = 5.0
    relogin_s: float = 300.0
    login_path: str = "/api/auth/login"
    me_path: str = "/api/auth/me"
    hub_path: str = "/hubs/market-data"
    hub_attempts: int = 3  # direct connections per window, spread over it
    mobile_hub_path: str = "/hubs/portfolio"
    slow_thresholds_ms: tuple[float, ...] = ()  # latency SLOs: samples above each are counted
    prometheus: PrometheusSource | None = None
    # prometheus triggers: (trigger id, PromQL, "max" for `above` or "min" for `below`)
    prom_queries: tuple[tuple[str, str, str], ...] = ()


@dataclass(slots=True)
class CollectState:
    """What carries from one window to the next (never persisted: rebuilt on resume)."""

    token: str | None = None
    token_at: float = 0.0
    auth_error: str = ""
    prev_scrape: Scrape | None = None
    auth_failures: int = 0
    notes: list[str] = field(default_factory=list)


async def _fetch(
    ctx: ProbeContext, method: str, url: str, timeout_s: float, **kw: object
) -> tuple[int | None, bytes, str]:
    """(status, body, error) within an overall deadline; never raises for the target."""
    try:
        async with asyncio.timeout(timeout_s):
            got = await ctx.fetch(method, url, **kw)  # type: ignore[arg-type]
        return got.status, got.body, ""
    except TimeoutError:
        return None, b"", f"no answer within {timeout_s:g} s"
    except (httpx.HTTPError, OSError, ProbeIOError, ValueError) as exc:
        return None, b"", ctx.redactor.redact(describe_error(exc))


async def _health(
    ctx: ProbeContext, s: CollectSettings
) -> tuple[bool, ComponentStatus | None, float | None, str]:
    status, body, error = await _fetch(
        ctx, "GET", ctx.url("/health/ready"), s.probe_timeout_s, max_bytes=256 * 1024
    )
    if status is None:
        return False, None, None, f"/health/ready: {error}"
    report = healthformat.classify(status, "application/health+json", body)
    db: ComponentStatus | None = None
    db_ms: float | None = None
    # With several database components (primary, replica...) the worst one counts; its
    # round-trip figure is the slowest one reported.
    for comp in report.components:
        if comp.name.startswith("database") and comp.status in ("pass", "warn", "fail"):
            if db is None or healthformat.rank(comp.status) > healthformat.rank(db):
                db = comp.status
            m = _NUMBER.search(comp.observed)
            if m and comp.status != "fail":
                db_ms = max(db_ms or 0.0, float(m.group()))
    ok = status == 200 and report.status in ("pass", "warn")
    note = "" if ok else f"/health/ready: HTTP {status}, status {report.status}"
    return ok, db, db_ms, note


async def _prom(ctx: ProbeContext, s: CollectSettings) -> dict[str, list[Any]]:
    """Each prometheus trigger's worst series value this window, or None with why."""
    if s.prometheus is None or not s.prom_queries:
        return {}
    source = s.prometheus

    async def one(promql: str, worst: str) -> list[Any]:
        try:
            async with asyncio.timeout(s.probe_timeout_s):
                got = await prometheus.query(ctx, source, promql)
        except TimeoutError:
            return [None, f"no answer within {s.probe_timeout_s:g} s"]
        if got.unreachable or got.rejected:
            return [None, ctx.redactor.redact(got.unreachable or f"rejected: {got.rejected}")]
        values = [v for series in got.series for _t, v in series.samples]
        if not values:
            return [None, "the query matched nothing"]
        if any(math.isnan(v) for v in values):
            return [None, "NaN"]
        return [max(values) if worst == "max" else min(values), ""]

    answers = await asyncio.gather(*(one(q, w) for _i, q, w in s.prom_queries))
    return {i: a for (i, _q, _w), a in zip(s.prom_queries, answers, strict=True)}


async def _metrics(ctx: ProbeContext, s: CollectSettings) -> tuple[Scrape | None, str]:
    status, body, error = await _fetch(
        ctx, "GET", ctx.url("/metrics"), s.probe_timeout_s, max_bytes=8 * 1024 * 1024
    )
    if status != 200:
        return None, f"/metrics: {error or f'HTTP {status}'}"
    return reduce_scrape(body.decode("utf-8", "replace")), ""


async def _hub(
    ctx: ProbeContext, path: str, auth: HubAuth, timeout_s: float, base: str | None = None
) -> str | None:
    """None when negotiate + connect + handshake + close worked, else why not."""
    try:
        async with asyncio.timeout(timeout_s):
            session = await HubSession.open(ctx, path, auth, base=base, open_timeout_s=timeout_s)
            await session.close()
        return None
    except HubError as exc:
        return ctx.redactor.redact(f"{exc.step}: {exc.detail}")[:120]
    except TimeoutError:
        return f"no session within {timeout_s:g} s"
    except (httpx.HTTPError, OSError, ProbeIOError) as exc:
        return ctx.redactor.redact(describe_error(exc))[:120]


def _access_token(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    token = doc.get("accessToken") if isinstance(doc, dict) else None
    return token if isinstance(token, str) and token else None


async def _configured_auth(ctx: ProbeContext, s: CollectSettings) -> tuple[AuthState, str]:
    """The environment's own auth (bearer, API key, OAuth2, a custom login): obtained once,
    again before it expires, and judged by an authorized call."""
    cred, reason, failed = await ctx.credential()
    if cred is None:
        return ("failed" if failed else "no-data"), reason
    status, _body, error = await _fetch(
        ctx,
        "GET",
        ctx.url(s.me_path),
        s.probe_timeout_s,
        headers={**cred.headers, "Accept": "application/json"},
        max_bytes=64 * 1024,
    )
    if status == 200:
        return "ok", f"authorized call GET {s.me_path}: HTTP 200"
    if status in (401, 403):
        return "failed", f"the configured credential was refused: GET {s.me_path} HTTP {status}"
    return "no-data", f"authorized call not judged ({error or f'HTTP {status}'})"


async def _auth(
    ctx: ProbeContext, s: CollectSettings, state: CollectState
) -> tuple[AuthState, str]:
    if ctx.auth is not None:
        return await _configured_auth(ctx, s)
    if not ctx.has_credentials:
        return "no-data", "no credentials (set MYTRADER_OPS_USERNAME and MYTRADER_OPS_PASSWORD)"
    now = time.monotonic()
    fresh = False
    if state.token is None or now - state.token_at > s.relogin_s:
        status, body, error = await _fetch(
            ctx,
            "POST",
            ctx.url(s.login_path),
            s.probe_timeout_s,
            json_body={"username": ctx.username, "password": ctx.password},
            max_bytes=64 * 1024,
        )
        if status in (401, 403):
            state.token = None
            return "failed", f"login refused for the configured user: HTTP {status}"
        token = _access_token(body) if status == 200 else None
        if token is None:
            why = error or f"HTTP {status}"
            return "no-data", f"login not judged ({why}: not an authentication verdict)"
        ctx.redactor.add(token)
        state.token, state.token_at, fresh = token, now, True
    status, _body, error = await _fetch(
        ctx,
        "GET",
        ctx.url(s.me_path),
        s.probe_timeout_s,
        headers={"Authorization": f"Bearer {state.token}", "Accept": "application/json"},
        max_bytes=64 * 1024,
    )
    if status == 200:
        return "ok", f"authorized call GET {s.me_path}: HTTP 200" + (
            " (new login)" if fresh else ""
        )
    if status == 401:
        state.token = None
        if fresh:
            return "failed", f"a fresh token was refused: GET {s.me_path} HTTP 401"
        # An old token refused: log in again now rather than wait a window.
        return await _auth(ctx, s, state)
    return "no-data", f"authorized call not judged ({error or f'HTTP {status}'})"


async def collect_window(
    ctx: ProbeContext,
    s: CollectSettings,
    state: CollectState,
    stream: StreamWatcher | None,
    index: int,
    start_s: float,
) -> tuple[WindowSummary, LatencyHistogram]:
    """Measure one window that starts at wall-clock `start_s` and lasts `s.interval_s`."""
    end_s = start_s + s.interval_s
    cpu0 = time.process_time()
    sample_task = asyncio.create_task(
        run_sampler(
            ctx.backend,
            [StreamSpec(p, watch_ms=s.slow_thresholds_ms) for p in s.api_paths],
            rate=s.rate,
            duration_s=max(0.05, end_s - time.time()),
            max_connections=32,
            request_timeout_s=s.request_timeout_s,
            late_after_ms=50.0,
            ssl_context=ctx.ssl_context,
        )
    )
    notes: list[str] = []
    (
        (health_ok, db, db_ms, health_note),
        (scrape, metrics_note),
        (auth, auth_detail),
        prom,
    ) = await asyncio.gather(_health(ctx, s), _metrics(ctx, s), _auth(ctx, s, state), _prom(ctx, s))
    notes += [n for n in (health_note, metrics_note) if n]
    paths: dict[str, PathTally] = {}
    failures: Counter[str] = Counter()
    jobs: list[tuple[str, str, HubAuth, str | None, float]] = []
    spacing = s.interval_s / max(1, s.hub_attempts)
    for i in range(s.hub_attempts):
        jobs.append(("direct-hub", s.hub_path, HubAuth(), None, i * spacing))
    mobile: HubAuth | None = None
    if ctx.auth is not None:
        mobile, _reason, _failed = await hub_auth(ctx, in_query=True)
    elif state.token is not None:
        mobile = HubAuth(state.token, in_query=True)
    if mobile is not None:
        jobs.append(("mobile-hub", s.mobile_hub_path, mobile, None, spacing / 2))
    if ctx.frontend is not None:
        jobs.append(("proxy-hub", s.hub_path, HubAuth(), ctx.frontend, spacing / 2))

    async def attempt(path: str, auth: HubAuth, base: str | None, delay: float) -> str | None:
        await asyncio.sleep(max(0.0, start_s + delay - time.time()))
        return await _hub(ctx, path, auth, s.probe_timeout_s, base)

    results = await asyncio.gather(*(attempt(p, a, b, d) for _n, p, a, b, d in jobs))
    for (name, *_rest), why in zip(jobs, results, strict=True):
        got = paths.get(name, PathTally())
        paths[name] = PathTally(got.attempts + 1, got.ok + (0 if why else 1))
        if why:
            failures[f"{name}: {why}"] += 1
    if ctx.frontend is not None:
        status, _b, err = await _fetch(
            ctx, "GET", ctx.url(s.api_paths[0], ctx.frontend), s.probe_timeout_s
        )
        paths["proxy-api"] = PathTally(1, 1 if status == 200 else 0)
        if status != 200:
            failures[f"proxy-api: {err or f'HTTP {status}'}"] += 1
    sampled = await sample_task
    n, errors = sampled.total()
    kinds: Counter[str] = Counter()
    late = dropped = 0
    for r in sampled.streams.values():
        late += r.late
        dropped += r.dropped
        for k, v in r.error_kinds.items():
            kinds[f"{r.path}: {k}"] += v
    window_hist = LatencyHistogram()
    for r in sampled.streams.values():
        window_hist.merge(r.histogram)
    merged = window_hist.summary()
    paths["direct-api"] = PathTally(n, n - errors)
    # the stream
    messages, max_gap, connected = 0, None, False
    gaps: tuple[tuple[float, float], ...] = ()
    if stream is not None:
        arrivals, before, connected = stream.drain(end_s)
        rep = find_gaps(arrivals, start_s, max(end_s, time.time()), s.gap_threshold_s, before)
        messages, max_gap, gaps = rep.messages, rep.max_gap_s, rep.gaps_over
        if not connected and stream.last_error:
            notes.append(f"market-data stream: {stream.last_error}")
    db_query = db_mean_ms(state.prev_scrape, scrape) if scrape is not None else None
    if scrape is not None:
        state.prev_scrape = scrape
        if scrape.rss_bytes is None:
            notes.append("/metrics has no process_resident_memory_bytes")
    summary = WindowSummary(
        index=index,
        start_s=start_s,
        end_s=max(end_s, time.time()),
        requests=n,
        errors=errors,
        late=late,
        dropped=dropped,
        latency_samples=window_hist.count,
        p50_ms=_finite(merged.p50_ms),
        p95_ms=_finite(merged.p95_ms),
        p99_ms=_finite(merged.p99_ms),
        max_ms=_finite(merged.max_ms),
        error_kinds=dict(kinds.most_common(5)),
        health_attempts=1,
        health_ok=1 if health_ok else 0,
        db_status=db,
        db_ms=db_ms,
        paths=paths,
        hub_failures=dict(failures.most_common(5)),
        auth=auth,
        auth_detail=ctx.redactor.redact(auth_detail),
        stream_messages=messages,
        stream_connected=connected,
        stream_max_gap_s=max_gap,
        stream_gaps=gaps,
        rss_bytes=scrape.rss_bytes if scrape else None,
        cpu_seconds=scrape.cpu_seconds if scrape else None,
        db_query_ms=db_query,
        feed_lag_s=scrape.feed_lag_s if scrape else None,
        hub_connections=scrape.hub_connections if scrape else None,
        monitor_cpu_s=time.process_time() - cpu0,
        sampler_valid=sampled.health.valid,
        sampler_note=sampled.health.note,
        sampler_lag_p95_ms=round(sampled.health.lag_p95_ms, 3),
        sampler_lag_p99_ms=round(sampled.health.lag_p99_ms, 3),
        slow={
            f"{t:g}": sum(r.histogram.count_above_ms(t) for r in sampled.streams.values())
            for t in s.slow_thresholds_ms
        },
        prom=prom,
        notes=tuple(notes),
    )
    return summary, window_hist


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)
