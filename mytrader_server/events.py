"""Events that leave the trading core for the hubs, and the bus that carries them.

The in-process ``LocalBus`` is the embedded default. Scale-out replaces it with a bus that also
fans events out across processes (see ``hubs.redis_bus``); publishers do not know which one runs.
Handlers must not block: they hand the event to a queue and return.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from typing_extensions import TypeAliasType

log = logging.getLogger(__name__)

UserTarget = Literal["OrderUpdate", "PortfolioUpdate"]
JSONValue = TypeAliasType(
    "JSONValue", "str | int | float | bool | list[JSONValue] | dict[str, JSONValue] | None"
)
JSONObject = dict[str, JSONValue]


@dataclass(frozen=True, slots=True)
class Tick:
    """One market-data update for a symbol. Prices are decimal strings, as on the REST API."""

    symbol: str
    price: str
    bid: str
    ask: str
    volume: int
    trade_count: int
    timestamp: str
    seq: int
    # scale-out: the feed lease's epoch when this tick was published (0 in the embedded default);
    # ticks are ordered by (epoch, seq), so a former leader's sequence numbers never win
    epoch: int = 0

    def to_json(self) -> dict[str, JSONValue]:
        return {
            "symbol": self.symbol,
            "price": self.price,
            "bid": self.bid,
            "ask": self.ask,
            "volume": self.volume,
            "tradeCount": self.trade_count,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True, slots=True)
class UserEvent:
    """A message for one user's connections only (their orders, their portfolio)."""

    user_id: str
    target: UserTarget
    payload: dict[str, JSONValue]


Event = Tick | UserEvent
Handler = Callable[[Event], None]


class EventBus(Protocol):
    def publish(self, event: Event) -> None: ...

    def subscribe(self, handler: Handler) -> Callable[[], None]: ...


class LocalBus:
    """Delivers each event synchronously to every handler in this process."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

    def publish(self, event: Event) -> None:
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # a broken subscriber must not stop the others
                log.exception("event handler failed")
