"""The server's one error type and its JSON shape ``{"code", "message"}``."""

from __future__ import annotations

from http import HTTPStatus


class SettingsError(Exception):
    """The server was configured wrongly; it refuses to start and says why."""


class TradingError(Exception):
    """A client-visible error: rendered as ``{"code": code, "message": message}`` with status_code.

    Codes follow Alpaca's style: the HTTP status times 1e5 plus a small detail number.
    """

    def __init__(self, status_code: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.code = code if code is not None else status_code * 100_000 + 1
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


def not_found(what: str) -> TradingError:
    return TradingError(HTTPStatus.NOT_FOUND, f"{what} not found")


def unauthorized(message: str = "unauthorized") -> TradingError:
    err = TradingError(HTTPStatus.UNAUTHORIZED, message)
    err.headers["WWW-Authenticate"] = "Bearer"
    return err


def unprocessable(message: str) -> TradingError:
    return TradingError(HTTPStatus.UNPROCESSABLE_ENTITY, message)


def rate_limited(retry_after_s: int) -> TradingError:
    err = TradingError(HTTPStatus.TOO_MANY_REQUESTS, "rate limit exceeded; retry later")
    err.headers["Retry-After"] = str(max(1, retry_after_s))
    return err


def trading_paused(reason: str) -> TradingError:
    """This process cannot trust its quotes (scale-out: cut off from Redis); retry elsewhere."""
    err = TradingError(
        HTTPStatus.SERVICE_UNAVAILABLE,
        f"order matching is paused on this server ({reason}); retry shortly",
        code=50300002,
    )
    err.headers["Retry-After"] = "2"
    return err
