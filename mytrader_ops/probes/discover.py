"""`mytrader-ops init`: find what a deployment exposes, by asking it.

Health endpoints at their usual paths (IETF, ASP.NET Core, Spring Actuator, Kubernetes),
SignalR hubs (negotiate on the paths given, or on hub paths found in the frontend's scripts),
Prometheus `/metrics`, an OpenAPI document and its parameterless GET routes. Only what answered
is reported (a 401 is recorded as "needs auth"); nothing is guessed. Bounded: each request has
the context's deadline and size cap, and the number of routes tried is capped.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field

import httpx

from mytrader_ops import healthformat, promtext
from mytrader_ops.probes.context import ProbeContext, ProbeIOError

HEALTH_PATHS = (
    "/health",
    "/health/ready",
    "/health/live",
    "/healthz",
    "/readyz",
    "/livez",
    "/actuator/health",
    "/hc",
)
OPENAPI_PATHS = ("/openapi.json", "/swagger/v1/swagger.json", "/v3/api-docs", "/swagger.json")
MAX_ROUTES = 5
_HUB_IN_SCRIPT = re.compile(r"""["'](/[A-Za-z0-9_\-/]*hubs?/[A-Za-z0-9_\-]+)["']""")
_SCRIPT_SRC = re.compile(r"""<script[^>]+src=["']([^"']+)["']""", re.I)


@dataclass(frozen=True, slots=True)
class Found:
    kind: str  # health | hub | metrics | route | openapi
    path: str
    detail: str  # what answered, for the comment beside the check
    needs_auth: bool = False
    names: tuple[str, ...] = ()  # metric families seen (metrics)


@dataclass(slots=True)
class Discovery:
    target: str
    frontend: str | None
    found: list[Found] = field(default_factory=list)
    tried: int = 0

    @property
    def looks_like_mytrader(self) -> bool:
        return any(f.kind == "route" and f.path == "/api/symbols" for f in self.found) or any(
            f.kind == "health" and "database:responseTime" in f.detail for f in self.found
        )


async def _get(ctx: ProbeContext, url: str) -> tuple[int, str, str] | None:
    try:
        got = await ctx.fetch("GET", url, max_bytes=1024 * 1024)
    except (httpx.HTTPError, OSError, ProbeIOError):
        return None
    return got.status, got.headers.get("content-type", ""), got.body.decode("utf-8", "replace")


async def _health(ctx: ProbeContext, path: str) -> Found | None:
    got = await _get(ctx, ctx.url(path))
    if got is None or got[0] in (404, 405):
        return None
    status, ctype, text = got
    report = healthformat.classify(status, ctype, text.encode())
    if report.format in ("text", "json") and report.status == "unknown":
        return None  # an answer that is not a health report
    names = ", ".join(c.name for c in report.components[:6])
    detail = f"HTTP {status}, {report.format}, status {report.status}" + (
        f"; components: {names}" if names else ""
    )
    return Found("health", path, detail, needs_auth=status == 401)


async def _metrics(ctx: ProbeContext) -> Found | None:
    got = await _get(ctx, ctx.url("/metrics"))
    if got is None or got[0] != 200:
        return None
    expo = promtext.parse(got[2])
    if expo.problems or not expo.families:
        return None
    names = tuple(sorted(expo.families)[:3])
    return Found("metrics", "/metrics", f"{expo.samples} samples", names=names)


async def _openapi(ctx: ProbeContext) -> list[Found]:
    for path in OPENAPI_PATHS:
        got = await _get(ctx, ctx.url(path))
        if got is None or got[0] != 200:
            continue
        try:
            doc = json.loads(got[2])
        except ValueError:
            continue
        paths = doc.get("paths") if isinstance(doc, dict) else None
        if not isinstance(paths, dict):
            continue
        out = [Found("openapi", path, f"{len(paths)} paths")]
        plain = [
            p for p, ops in paths.items() if "{" not in p and isinstance(ops, dict) and "get" in ops
        ]
        for route in plain[:MAX_ROUTES]:
            answer = await _get(ctx, ctx.url(route))
            if answer is not None and answer[0] in (200, 401):
                out.append(Found("route", route, f"HTTP {answer[0]}", needs_auth=answer[0] == 401))
        return out
    return []


async def _hub_paths_in_frontend(ctx: ProbeContext) -> list[str]:
    if ctx.frontend is None:
        return []
    page = await _get(ctx, ctx.frontend + "/")
    if page is None or page[0] != 200:
        return []
    texts = [page[2]]
    for src in _SCRIPT_SRC.findall(page[2])[:10]:
        if src.startswith("/"):
            script = await _get(ctx, ctx.frontend + src)
            if script is not None and script[0] == 200:
                texts.append(script[2])
    return sorted({p for t in texts for p in _HUB_IN_SCRIPT.findall(t)})


async def _hub(ctx: ProbeContext, path: str) -> Found | None:
    try:
        got = await ctx.fetch(
            "POST", ctx.url(f"{path}/negotiate?negotiateVersion=1"), max_bytes=64 * 1024
        )
    except (httpx.HTTPError, OSError, ProbeIOError):
        return None
    if got.status == 401:
        return Found("hub", path, "negotiate HTTP 401 (needs auth)", needs_auth=True)
    if got.status != 200:
        return None
    try:
        doc = json.loads(got.body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or "connectionId" not in doc:
        return None
    transports = [
        t.get("transport") for t in doc.get("availableTransports", []) if isinstance(t, dict)
    ]
    return Found("hub", path, f"negotiate HTTP 200, transports {', '.join(map(str, transports))}")


async def discover(ctx: ProbeContext, hubs: list[str]) -> Discovery:
    """Everything that answered, in a stable order."""
    found = Discovery(ctx.backend, ctx.frontend)
    health = await asyncio.gather(*(_health(ctx, p) for p in HEALTH_PATHS))
    found.found += [f for f in health if f is not None]
    metrics = await _metrics(ctx)
    if metrics is not None:
        found.found.append(metrics)
    found.found += await _openapi(ctx)
    for path in sorted({*hubs, *await _hub_paths_in_frontend(ctx)}):
        hub = await _hub(ctx, path)
        if hub is not None:
            found.found.append(hub)
    found.tried = len(HEALTH_PATHS) + 1 + len(OPENAPI_PATHS) + len(hubs)
    return found


async def looks_like_mytrader(ctx: ProbeContext) -> bool:
    """Does the target answer like a MyTrader API (its symbols route or its health
    components)? Used to tell a stranger that the default suite is MyTrader's."""
    symbols, ready = await asyncio.gather(
        _get(ctx, ctx.url("/api/symbols")), _get(ctx, ctx.url("/health/ready"))
    )
    if symbols is not None and symbols[0] in (200, 401) and symbols[2].lstrip().startswith("["):
        return True
    return ready is not None and "market-data:freshness" in ready[2]
