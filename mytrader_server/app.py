"""``create_app(settings)``: the FastAPI app with everything wired, for servers and tests."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from mytrader_server import __version__
from mytrader_server.api import admin, auth, health, market, trading
from mytrader_server.auth.passwords import PasswordService
from mytrader_server.auth.tokens import TokenService
from mytrader_server.context import ServerContext
from mytrader_server.db.engine import create_engine, create_sessionmaker
from mytrader_server.db.migrate import require_head, upgrade_to_head
from mytrader_server.errors import TradingError
from mytrader_server.faults import FaultInjector, FaultProfile
from mytrader_server.hubs import install_hubs
from mytrader_server.hubs.scaleout import RedisBus, create_bus, start_scale_out
from mytrader_server.market.feed import SimulatedFeed
from mytrader_server.market.service import MarketService
from mytrader_server.metrics import Metrics
from mytrader_server.middleware import RequestMiddleware
from mytrader_server.ratelimit import RateLimiter
from mytrader_server.runtime import RuntimeMonitor
from mytrader_server.settings import Settings
from mytrader_server.shared_limits import RedisRateLimiter
from mytrader_server.trading.engine import OrderEngine

log = logging.getLogger(__name__)


def build_context(settings: Settings) -> ServerContext:
    engine = create_engine(settings)
    metrics = Metrics()
    bus = create_bus(settings.redis_url, settings.redis_prefix)  # LocalBus without Redis
    profile = (
        FaultProfile.model_validate(json.loads(settings.fault_profile))
        if settings.fault_profile
        else None
    )
    faults = FaultInjector(settings.faults_enabled or profile is not None, profile)
    market = MarketService(
        SimulatedFeed(settings.feed_seed, settings.feed_interval_s), bus, settings.feed_interval_s
    )
    market.stalled = faults.feed_stalled
    return ServerContext(
        settings=settings,
        engine=engine,
        sessions=create_sessionmaker(engine),
        writer_sessions=create_sessionmaker(engine, write=True),
        bus=bus,
        market=market,
        tokens=TokenService(
            settings.signing_secret(),
            settings.jwt_issuer,
            settings.jwt_audience,
            settings.token_ttl_s,
        ),
        passwords=PasswordService(settings.password_max_bytes, settings.hash_concurrency),
        faults=faults,
        metrics=metrics,
    )


def create_app(settings: Settings, route_hub_sockets: bool = True) -> FastAPI:
    """The app. ``route_hub_sockets=False``: the caller routes hub WebSockets itself, with a
    ``HubMiddleware`` in front of the app (``build_server``), so that HTTP requests do not pass
    through a second one."""
    ctx = build_context(settings)
    engine = OrderEngine(ctx.sessions, ctx.writer_sessions, ctx.market, ctx.bus, ctx.metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await upgrade_to_head(ctx.engine)
        else:
            await require_head(ctx.engine)
        await engine.load_book()
        ctx.market.add_listener(engine.on_ticks)
        await start_scale_out(ctx)  # with Redis: join the other processes, elect the feed
        ctx.market.start()
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # collector's full passes, which otherwise walk the whole heap during requests. The
        # monitor freezes again once new hub connections settle, and samples loop lag and GC.
        monitor.start()
        log.info("mytrader started", extra={"version": __version__, "env": settings.env})
        try:
            yield
        finally:
            for hook in reversed(ctx.shutdown_hooks):
                try:
                    await hook()
                except Exception:
                    log.exception("shutdown hook failed")
            await ctx.market.stop()
            await monitor.stop()
            await ctx.engine.dispose()

    app = FastAPI(
        title="MyTrader API",
        version=__version__,
        description="Paper trading, market data and real-time hubs.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.engine = engine
    app.state.login_limiter = _limiter(ctx, "login", settings.login_rate_per_minute)
    app.state.order_limiter = _limiter(ctx, "orders", settings.order_rate_per_minute)
    ctx.metrics.before_scrape(_feed_lag_updater(ctx))
    ctx.metrics.before_scrape(_feed_counts_updater(ctx))
    ctx.market.lag_observer = ctx.metrics.feed_schedule_lag.observe

    for router in (health.router, auth.router, market.router, trading.router, admin.router):
        app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4")

    _install_error_handlers(app)
    install_hubs(app, ctx, route_sockets=route_hub_sockets)
    hubs = app.state.hubs
    monitor = RuntimeMonitor(
        ctx.metrics, lambda: len(hubs.connections), sample_s=settings.loop_sample_s
    )
    app.state.runtime = monitor
    app.add_middleware(
        RequestMiddleware,
        metrics=ctx.metrics,
        faults=ctx.faults,
        max_body_bytes=settings.max_body_bytes,
        static={"/health/live": health.LIVE_RESPONSE},
    )
    return app


def _limiter(ctx: ServerContext, name: str, rate: int) -> RateLimiter | RedisRateLimiter:
    """Per process in the embedded default; shared by every process when Redis is configured."""
    bus = ctx.bus
    if isinstance(bus, RedisBus):
        return RedisRateLimiter(lambda: bus.client, bus.prefix, name, rate, bus.cut_off_reason)
    return RateLimiter(rate)


def _feed_lag_updater(ctx: ServerContext) -> Callable[[], None]:
    def update() -> None:
        age = ctx.market.feed_age_s()
        ctx.metrics.feed_lag.set(age if age is not None else -1)

    return update


def _feed_counts_updater(ctx: ServerContext) -> Callable[[], None]:
    """Add the feed's plain-int step counts to the Prometheus counters at scrape time."""
    m = ctx.metrics
    counters = {
        "scheduled": m.feed_steps_scheduled,
        "produced": m.feed_steps_produced,
        "skipped": m.feed_steps_skipped,
        "unpublished": m.feed_steps_unpublished,
    }
    flushed = dict.fromkeys(counters, 0)

    def update() -> None:
        counts = ctx.market.counts
        for name, counter in counters.items():
            value = getattr(counts, name)
            if value > flushed[name]:
                counter.inc(value - flushed[name])
                flushed[name] = value
        lag = ctx.market.schedule_lag_s()
        m.feed_schedule_lag_now.set(lag if lag is not None else -1)

    return update


def _error(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TradingError)
    async def trading_error(_: Request, exc: TradingError) -> JSONResponse:
        return _error(exc.status_code, exc.code, exc.message, exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:10]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg")))
        return _error(422, 42200000, "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        return _error(exc.status_code, exc.status_code * 100_000, message.lower(), exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def database_error(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database error: %s", type(exc).__name__)
        return _error(503, 50300001, "database unavailable", {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
        return _error(500, 50000000, "internal error")
