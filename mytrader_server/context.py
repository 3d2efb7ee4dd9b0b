"""The server's collaborators, built once by ``create_app`` and handed to routers and hubs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mytrader_server.auth.passwords import PasswordService
from mytrader_server.auth.tokens import TokenService
from mytrader_server.events import EventBus
from mytrader_server.faults import FaultInjector
from mytrader_server.market.service import MarketService
from mytrader_server.metrics import Metrics
from mytrader_server.settings import Settings

HealthProbe = Callable[[], Awaitable["ComponentHealth"]]


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """One entry of the health report (IETF draft-inadarei-api-health-check)."""

    key: str  # "component:measurement", e.g. "database:responseTime"
    component_type: str
    status: str  # pass | warn | fail
    observed_value: float | int | None
    observed_unit: str
    output: str = ""
    measured_at: datetime | None = None  # when the value was measured, if not just now


@dataclass(slots=True)
class ServerContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    writer_sessions: async_sessionmaker[AsyncSession]
    bus: EventBus
    market: MarketService
    tokens: TokenService
    passwords: PasswordService
    faults: FaultInjector
    metrics: Metrics
    started_at: float = field(default_factory=time.monotonic)
    # the last database health measurement (monotonic time, result) and the one in flight
    db_health: tuple[float, ComponentHealth] | None = None
    db_health_inflight: asyncio.Future[ComponentHealth] | None = None
    # extra health probes registered by components (the hubs register theirs here)
    health_probes: list[HealthProbe] = field(default_factory=list)
    # called at shutdown, in reverse order (the hubs send Close messages here)
    shutdown_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
