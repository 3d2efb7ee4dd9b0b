"""Health in application/health+json (IETF draft-inadarei-api-health-check-06).

``/health/live`` is the process alone (no I/O). ``/health/ready`` and ``/health`` make a real
database round trip and report the feed's freshness and every registered component (the hubs);
503 when any component fails. Never cached.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mytrader_server import __version__
from mytrader_server.api.deps import Ctx
from mytrader_server.context import ComponentHealth, ServerContext
from mytrader_server.db.engine import ping

router = APIRouter(tags=["health"])
HEALTH_JSON = "application/health+json"
NO_CACHE = {"Cache-Control": "no-store, no-cache, must-revalidate", "Pragma": "no-cache"}
DB_WARN_MS = 100.0
DB_TIMEOUT_S = 2.0
DB_MAX_AGE_S = 0.5


LIVE_BODY = b'{"status":"pass"}'


@router.get("/health/live")
async def live() -> JSONResponse:
    """Kept for the OpenAPI schema: ``RequestMiddleware`` answers ``GET /health/live`` itself
    with ``LIVE_RESPONSE`` (the same bytes), without routing (see ``app.create_app``)."""
    return JSONResponse({"status": "pass"}, media_type=HEALTH_JSON, headers=NO_CACHE)


# (status, headers, body) of ``live()``: what RequestMiddleware sends for GET /health/live
LIVE_RESPONSE: tuple[int, list[tuple[bytes, bytes]], bytes] = (
    200,
    [
        *((k.lower().encode(), v.encode()) for k, v in NO_CACHE.items()),
        (b"content-length", str(len(LIVE_BODY)).encode()),
        (b"content-type", HEALTH_JSON.encode()),
    ],
    LIVE_BODY,
)


@router.get("/health/ready")
async def ready(ctx: Ctx) -> JSONResponse:
    return await _report(ctx)


@router.get("/health")
async def health(ctx: Ctx) -> JSONResponse:
    return await _report(ctx)


async def database_health(ctx: ServerContext) -> ComponentHealth:
    """The database round trip, at most ``DB_MAX_AGE_S`` old and never two at once.

    Probes from orchestrators, load balancers and release gates arrive together; one real round
    trip answers all of them for half a second (its ``time`` says when it was measured), so a
    flood of health checks can neither load the database nor queue behind it.
    """
    if ctx.faults.database_down:
        return ComponentHealth(
            "database:responseTime", "datastore", "fail", None, "ms", "database unavailable"
        )
    if ctx.db_health is not None and time.monotonic() - ctx.db_health[0] < DB_MAX_AGE_S:
        return ctx.db_health[1]
    if ctx.db_health_inflight is None:
        ctx.db_health_inflight = asyncio.ensure_future(_measure_database(ctx))
        ctx.db_health_inflight.add_done_callback(lambda _: _clear_inflight(ctx))
    return await asyncio.shield(ctx.db_health_inflight)


def _clear_inflight(ctx: ServerContext) -> None:
    ctx.db_health_inflight = None


async def _measure_database(ctx: ServerContext) -> ComponentHealth:
    result = await _round_trip(ctx)
    ctx.db_health = (time.monotonic(), result)
    return result


async def _round_trip(ctx: ServerContext) -> ComponentHealth:
    measured_at = datetime.now(UTC)
    try:
        async with asyncio.timeout(DB_TIMEOUT_S):
            latency_ms = await ping(ctx.engine)
    except TimeoutError:
        return ComponentHealth(
            "database:responseTime",
            "datastore",
            "fail",
            None,
            "ms",
            "database timed out",
            measured_at,
        )
    except Exception as exc:
        return ComponentHealth(
            "database:responseTime",
            "datastore",
            "fail",
            None,
            "ms",
            type(exc).__name__,
            measured_at,
        )
    ctx.metrics.db_latency.labels("ping").observe(latency_ms / 1000)
    status = "pass" if latency_ms < DB_WARN_MS else "warn"
    return ComponentHealth(
        "database:responseTime", "datastore", status, round(latency_ms, 3), "ms", "", measured_at
    )


def feed_health(ctx: ServerContext) -> ComponentHealth:
    age = ctx.market.feed_age_s()
    limit = ctx.settings.feed_stale_after_s
    if age is None:
        # Just started: fresh if the first tick is still within one stale period of start.
        uptime = time.monotonic() - ctx.started_at
        status = "warn" if uptime < limit else "fail"
        return ComponentHealth(
            "market-data:freshness", "component", status, None, "s", "no tick yet"
        )
    status = "pass" if age <= limit else "fail"
    output = "" if status == "pass" else f"last tick {age:.1f} s ago (limit {limit:g} s)"
    return ComponentHealth("market-data:freshness", "component", status, round(age, 3), "s", output)


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def _report(ctx: ServerContext) -> JSONResponse:
    components = [await database_health(ctx), feed_health(ctx)]
    for probe in ctx.health_probes:
        try:
            components.append(await probe())
        except Exception as exc:
            components.append(
                ComponentHealth("component:status", "component", "fail", None, "", str(exc)[:200])
            )
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    statuses = {c.status for c in components}
    overall = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    checks: dict[str, list[dict[str, object]]] = {}
    for c in components:
        entry: dict[str, object] = {
            "componentType": c.component_type,
            "observedValue": c.observed_value,
            "observedUnit": c.observed_unit,
            "status": c.status,
            "time": _stamp(c.measured_at) if c.measured_at else now,
        }
        if c.output:
            entry["output"] = c.output
        checks.setdefault(c.key, []).append(entry)
    checks["uptime"] = [
        {
            "componentType": "system",
            "observedValue": round(time.monotonic() - ctx.started_at, 3),
            "observedUnit": "s",
            "status": "pass",
            "time": now,
        }
    ]
    body = {
        "status": overall,
        "version": "1",
        "releaseId": __version__,
        "serviceId": "mytrader",
        "description": "health of the MyTrader API",
        "checks": checks,
    }
    return JSONResponse(
        body,
        status_code=503 if overall == "fail" else 200,
        media_type=HEALTH_JSON,
        headers=NO_CACHE,
    )
