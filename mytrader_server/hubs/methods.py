"""The three hubs' methods and the dispatcher that calls them with .NET's error strings.

Method names resolve case-insensitively (``DefaultHubDispatcher`` uses OrdinalIgnoreCase).
A call without an invocationId gets no reply at all, not even an error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from mytrader_server.events import JSONValue
from mytrader_server.hubs.connection import CLOSE_NORMAL, HubConnection
from mytrader_server.hubs.fanout import (
    MARKET_DATA,
    PORTFOLIO,
    RECEIVE_MARKET_DATA,
    TRADING,
    FanOut,
)
from mytrader_server.hubs.protocol import (
    CancelInvocation,
    Close,
    HubMessage,
    Invocation,
    StreamInvocation,
    encode_completion,
    encode_invocation,
    encode_json,
)
from mytrader_server.hubs.streams import PriceStream
from mytrader_server.market.feed import SymbolState
from mytrader_server.market.service import MarketService
from mytrader_server.market.universe import find_asset
from mytrader_server.trading.engine import OrderEngine

log = logging.getLogger(__name__)

MAX_SYMBOLS_PER_CALL: Final = 200
MAX_STREAM_COUNT: Final = 1_000_000
MAX_STREAMS_PER_CONNECTION: Final = 50


class HubError(Exception):
    """.NET's HubException: the message is shown to the client after the generic text."""


class ArgumentError(Exception):
    """The arguments do not bind to the method's parameters."""


@dataclass(slots=True)
class HubServices:
    fanout: FanOut
    market: MarketService
    engine: OrderEngine


@dataclass(slots=True)
class Call:
    conn: HubConnection
    services: HubServices
    after: list[str] = field(default_factory=list)  # records pushed after the Completion


Invoke = Callable[[Call, tuple[JSONValue, ...]], Awaitable[JSONValue]]
StartStream = Callable[[Call, str, tuple[JSONValue, ...]], PriceStream]


@dataclass(frozen=True, slots=True)
class HubMethod:
    name: str
    invoke: Invoke | None = None
    stream: StartStream | None = None


@dataclass(frozen=True, slots=True)
class HubSpec:
    name: str
    requires_auth: bool
    methods: dict[str, HubMethod]  # keyed by lower-case name

    @classmethod
    def of(cls, name: str, requires_auth: bool, *methods: HubMethod) -> HubSpec:
        return cls(name, requires_auth, {m.name.lower(): m for m in methods})


# ---- argument binding ------------------------------------------------------------------------


def _arity(args: tuple[JSONValue, ...], least: int, most: int) -> None:
    if not least <= len(args) <= most:
        raise ArgumentError(
            f"Invocation provides {len(args)} argument(s) but target expects {most}."
        )


def _symbols(value: JSONValue) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArgumentError("expected an array of strings")
    if len(value) > MAX_SYMBOLS_PER_CALL:
        raise HubError(f"At most {MAX_SYMBOLS_PER_CALL} symbols per call.")
    found: list[str] = []
    for raw in value:
        assert isinstance(raw, str)
        asset = find_asset(raw)
        if asset is None:
            raise HubError(f"Unknown symbol '{raw[:32]}'.")
        if asset.symbol not in found:
            found.append(asset.symbol)
    return found


def snapshot_json(state: SymbolState) -> dict[str, JSONValue]:
    """The current quote in the ReceiveMarketData shape, sent when a subscription starts."""
    return {
        "symbol": state.asset.symbol,
        "price": str(state.price),
        "bid": str(state.bid),
        "ask": str(state.ask),
        "volume": state.volume,
        "tradeCount": state.trade_count,
        "timestamp": state.updated_at.isoformat().replace("+00:00", "Z"),
    }


# ---- market-data -----------------------------------------------------------------------------


async def subscribe_to_symbols(call: Call, args: tuple[JSONValue, ...]) -> JSONValue:
    """Push ReceiveMarketData for these symbols; returns the connection's subscriptions."""
    _arity(args, 1, 1)
    symbols = _symbols(args[0])
    new = [s for s in symbols if s not in call.conn.symbols]
    call.services.fanout.subscribe(call.conn, symbols)
    for symbol in new:
        state = call.services.market.get(symbol)
        if state is not None:
            call.after.append(encode_invocation(RECEIVE_MARKET_DATA, [snapshot_json(state)]))
    return list[JSONValue](sorted(call.conn.symbols))


async def unsubscribe_from_symbols(call: Call, args: tuple[JSONValue, ...]) -> JSONValue:
    _arity(args, 1, 1)
    call.services.fanout.unsubscribe(call.conn, _symbols(args[0]))
    return list[JSONValue](sorted(call.conn.symbols))


def stream_prices(call: Call, invocation_id: str, args: tuple[JSONValue, ...]) -> PriceStream:
    """Stream one symbol's ticks (starting with the current quote) until cancelled or ``count``."""
    _arity(args, 1, 2)
    symbol = args[0]
    if not isinstance(symbol, str):
        raise ArgumentError("symbol must be a string")
    count: int | None = None
    if len(args) == 2 and args[1] is not None:
        raw = args[1]
        if not isinstance(raw, int) or isinstance(raw, bool) or not 0 < raw <= MAX_STREAM_COUNT:
            raise ArgumentError("count must be a positive integer")
        count = raw
    if len(call.conn.streams) >= MAX_STREAMS_PER_CONNECTION:
        raise HubError(f"At most {MAX_STREAMS_PER_CONNECTION} streams per connection.")
    asset = find_asset(symbol)
    state = call.services.market.get(symbol) if asset else None
    if asset is None or state is None:
        raise HubError(f"Unknown symbol '{symbol[:32]}'.")
    fanout = call.services.fanout
    stream = PriceStream(call.conn, invocation_id, asset.symbol, count, fanout.remove_stream)
    fanout.add_stream(stream)
    call.conn.streams[invocation_id] = stream
    stream.on_tick(encode_json(snapshot_json(state)))
    return stream


# ---- trading and portfolio -------------------------------------------------------------------


async def get_open_orders(call: Call, args: tuple[JSONValue, ...]) -> JSONValue:
    """The caller's open orders (what OrderUpdate pushes will change from here on)."""
    _arity(args, 0, 0)
    assert call.conn.principal is not None
    orders = await call.services.engine.list_orders(call.conn.principal, "open", 500)
    return list[JSONValue](orders)


async def get_portfolio(call: Call, args: tuple[JSONValue, ...]) -> JSONValue:
    """The caller's account and positions, in the PortfolioUpdate shape."""
    _arity(args, 0, 0)
    assert call.conn.principal is not None
    return await call.services.engine.portfolio(call.conn.principal.user_id)


HUBS: Final = {
    MARKET_DATA: HubSpec.of(
        MARKET_DATA,
        False,
        HubMethod("SubscribeToSymbols", invoke=subscribe_to_symbols),
        HubMethod("UnsubscribeFromSymbols", invoke=unsubscribe_from_symbols),
        HubMethod("StreamPrices", stream=stream_prices),
    ),
    TRADING: HubSpec.of(TRADING, True, HubMethod("GetOpenOrders", invoke=get_open_orders)),
    PORTFOLIO: HubSpec.of(PORTFOLIO, True, HubMethod("GetPortfolio", invoke=get_portfolio)),
}


# ---- dispatch --------------------------------------------------------------------------------


def _unexpected(target: str, exc: Exception | None = None) -> str:
    text = f"An unexpected error occurred invoking '{target}' on the server."
    if isinstance(exc, HubError):
        text += f" HubException: {exc}"
    return text


class Dispatcher:
    def __init__(self, services: HubServices) -> None:
        self.services = services

    async def __call__(self, conn: HubConnection, message: HubMessage) -> None:
        if isinstance(message, Invocation):
            await self._invoke(conn, message)
        elif isinstance(message, StreamInvocation):
            self._start_stream(conn, message)
        elif isinstance(message, CancelInvocation):
            stream = conn.streams.get(message.invocation_id)
            if stream is not None:
                stream.complete()
        elif isinstance(message, Close):
            conn.close(CLOSE_NORMAL, "")
        # Ping needs no answer; StreamItem/Completion from clients are not used by these hubs.

    async def _invoke(self, conn: HubConnection, message: Invocation) -> None:
        spec = HUBS[conn.hub]
        reply_to = message.invocation_id
        method = spec.methods.get(message.target.lower())
        target = message.target
        if method is None:
            error = f"Unknown hub method '{target}'"
        elif method.invoke is None:
            error = (
                f"The client attempted to invoke the streaming '{target}' method with a "
                "non-streaming invocation."
            )
        elif message.stream_ids:
            error = f"Failed to invoke '{target}' due to an error on the server."
        else:
            call = Call(conn, self.services)
            try:
                result = await method.invoke(call, message.arguments)
            except ArgumentError:
                error = f"Failed to invoke '{target}' due to an error on the server."
            except HubError as exc:
                error = _unexpected(target, exc)
            except Exception as exc:
                log.warning("hub method failed: %s", type(exc).__name__, extra={"hub": conn.hub})
                error = _unexpected(target)
            else:
                if reply_to is not None:
                    conn.push(encode_completion(reply_to, result=result))
                for record in call.after:
                    conn.push(record)
                return
        if reply_to is not None:
            conn.push(encode_completion(reply_to, error=error))

    def _start_stream(self, conn: HubConnection, message: StreamInvocation) -> None:
        spec = HUBS[conn.hub]
        method = spec.methods.get(message.target.lower())
        target = message.target
        reply_to = message.invocation_id
        if method is None:
            error = f"Unknown hub method '{target}'"
        elif method.stream is None:
            error = (
                f"The client attempted to invoke the non-streaming '{target}' method with a "
                "streaming invocation."
            )
        elif message.stream_ids:
            error = f"Failed to invoke '{target}' due to an error on the server."
        elif reply_to in conn.streams:
            error = f"Invocation ID '{reply_to[:64]}' is already in use."
        else:
            try:
                method.stream(Call(conn, self.services), reply_to, message.arguments)
                return
            except ArgumentError:
                error = f"Failed to invoke '{target}' due to an error on the server."
            except HubError as exc:
                error = _unexpected(target, exc)
            except Exception as exc:
                log.warning("hub stream failed: %s", type(exc).__name__, extra={"hub": conn.hub})
                error = _unexpected(target)
        conn.push(encode_completion(reply_to, error=error))
