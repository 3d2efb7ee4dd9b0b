"""Fault injection for release testing: latency, errors, database outage, feed stall, hubs down.

Off unless ``MYTRADER_FAULTS_ENABLED`` is set, refused in production, switched at run time by an
admin through ``PUT /api/admin/faults`` or at start-up with ``MYTRADER_FAULT_PROFILE`` (the same
JSON). Route keys are path prefixes; ``*`` matches every path. Health and metrics routes are
never delayed or failed by route faults: they must be able to report the damage.
"""

from __future__ import annotations

import random
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mytrader_server.errors import unprocessable

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Millis = Annotated[float, Field(ge=0.0, le=60_000.0)]
EXEMPT_PREFIXES = ("/health", "/metrics", "/api/admin/faults")


class FaultProfile(BaseModel):
    """What is broken. An empty profile means a healthy release."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: dict[str, Millis] = Field(default_factory=dict)
    error_rate: dict[str, Rate] = Field(default_factory=dict)
    error_status: int = Field(default=500, ge=500, le=599)
    database_down: bool = False
    feed_stalled: bool = False
    hubs_down: bool = False

    def is_healthy(self) -> bool:
        return self == FaultProfile()


def _match(table: dict[str, float], path: str) -> float:
    best_len, value = -1, 0.0
    for prefix, v in table.items():
        if (prefix == "*" or path.startswith(prefix)) and len(prefix) > best_len:
            best_len, value = len(prefix), v
    return value


class FaultInjector:
    def __init__(self, enabled: bool, profile: FaultProfile | None = None, seed: int = 0) -> None:
        self.enabled = enabled
        self.profile = profile or FaultProfile()
        self._rng = random.Random(seed)

    def set(self, profile: FaultProfile) -> None:
        if not self.enabled:
            raise unprocessable("fault injection is disabled on this server")
        self.profile = profile

    def latency_s(self, path: str) -> float:
        if not self.enabled or path.startswith(EXEMPT_PREFIXES):
            return 0.0
        return _match(self.profile.latency_ms, path) / 1000.0

    def should_fail(self, path: str) -> bool:
        if not self.enabled or path.startswith(EXEMPT_PREFIXES):
            return False
        rate = _match(self.profile.error_rate, path)
        return rate > 0 and self._rng.random() < rate

    @property
    def database_down(self) -> bool:
        return self.enabled and self.profile.database_down

    @property
    def feed_stalled(self) -> bool:
        return self.enabled and self.profile.feed_stalled

    @property
    def hubs_down(self) -> bool:
        return self.enabled and self.profile.hubs_down
