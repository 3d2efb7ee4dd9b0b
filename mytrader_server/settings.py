"""Server settings: one object from ``MYTRADER_*`` environment variables, validated at start-up."""

from __future__ import annotations

import secrets
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mytrader_server.errors import SettingsError

_DEV_SECRET_BYTES = 32
MIN_SECRET_BYTES = 32


class Settings(BaseSettings):
    """Everything the server can be told. Defaults are the embedded single-machine setup."""

    model_config = SettingsConfigDict(env_prefix="MYTRADER_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=5002, ge=0, le=65535)
    data_dir: Path = Path("data")
    database_url: str | None = None
    migrate_on_start: bool = True
    redis_url: str | None = None
    redis_prefix: str = Field(default="mytrader", pattern=r"^[A-Za-z0-9:_.-]{1,64}$")

    jwt_secret: str | None = None
    jwt_issuer: str = "mytrader"
    jwt_audience: str = "mytrader-api"
    token_ttl_s: int = Field(default=3600, ge=60, le=86_400)
    registration_enabled: bool = True
    password_max_bytes: int = Field(default=256, ge=16, le=4096)
    hash_concurrency: int = Field(default=2, ge=1, le=64)

    starting_cash: Decimal = Field(default=Decimal("100000"), gt=0, le=Decimal("1e12"))
    feed_seed: int = 42
    feed_interval_s: float = Field(default=0.25, gt=0, le=60)
    feed_stale_after_s: float = Field(default=5.0, gt=0, le=3600)

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_header_bytes: int = Field(default=32_768, ge=4096, le=1_048_576)
    header_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # httptools on uvloop (fast) or h11 on asyncio (the previous default); both enforce the two
    # limits above (mytrader_server/serving.py)
    http: Literal["httptools", "h11"] = "httptools"
    shutdown_timeout_s: float = Field(default=10.0, gt=0, le=300)
    login_rate_per_minute: int = Field(default=20, ge=1)
    order_rate_per_minute: int = Field(default=600, ge=1)
    forwarded_allow_ips: str = ""
    # the event-loop lag sampler's period (mytrader_event_loop_lag_seconds): a pause longer
    # than this plus x shows as a sample over x
    loop_sample_s: float = Field(default=0.1, ge=0.001, le=10)

    hub_keepalive_s: float = Field(default=15.0, gt=0)
    hub_client_timeout_s: float = Field(default=30.0, gt=0)
    hub_handshake_timeout_s: float = Field(default=15.0, gt=0)
    hub_max_message_bytes: int = Field(default=32_768, ge=1024)
    hub_send_queue: int = Field(default=256, ge=8)
    hub_max_connections_per_user: int = Field(default=20, ge=1)
    hub_max_connections: int = Field(default=10_000, ge=1)
    hub_close_on_token_expiry: bool = True

    faults_enabled: bool = False
    fault_profile: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @model_validator(mode="after")
    def _production_rules(self) -> Settings:
        if self.env == "production":
            if self.jwt_secret is None or len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"MYTRADER_JWT_SECRET must be set to at least {MIN_SECRET_BYTES} bytes "
                    "when MYTRADER_ENV=production"
                )
            if self.faults_enabled or self.fault_profile:
                raise ValueError("fault injection is refused when MYTRADER_ENV=production")
        elif self.jwt_secret is not None and len(self.jwt_secret.encode()) < 16:
            raise ValueError(
                "MYTRADER_JWT_SECRET is too short (at least 16 bytes, 32 in production)"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        """SQLAlchemy async URL: an explicit URL, else a SQLite file under the data directory."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'mytrader.db').as_posix()}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        if url.startswith("postgresql://"):
            return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
        if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
            return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def signing_secret(self) -> str:
        """The JWT secret; outside production a random one per process when none is configured."""
        if self.jwt_secret is not None:
            return self.jwt_secret
        return _process_secret()


_SECRET: list[str] = []


def _process_secret() -> str:
    if not _SECRET:
        _SECRET.append(secrets.token_urlsafe(_DEV_SECRET_BYTES))
    return _SECRET[0]


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment plus overrides; SettingsError lists every problem."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = "_".join(str(p) for p in err["loc"]).upper()
            name = f"MYTRADER_{loc}" if loc else "settings"
            problems.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from None
