"""JSON views of orders, accounts and positions (Alpaca's field names, decimals as strings)."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from mytrader_server.db.models import Account, Order, Position
from mytrader_server.events import JSONValue
from mytrader_server.market.service import MarketService
from mytrader_server.market.universe import find_asset

CENT = Decimal("0.01")


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _money(value: Decimal) -> str:
    return format(value.quantize(CENT, ROUND_HALF_EVEN), "f")


def order_json(order: Order) -> dict[str, JSONValue]:
    asset = find_asset(order.symbol)
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": _ts(order.created_at),
        "updated_at": _ts(order.updated_at),
        "submitted_at": _ts(order.submitted_at),
        "filled_at": _ts(order.filled_at),
        "canceled_at": _ts(order.canceled_at),
        "expired_at": _ts(order.expired_at),
        "symbol": order.symbol,
        "asset_class": asset.asset_class if asset else None,
        "qty": _dec(order.qty),
        "filled_qty": _dec(order.filled_qty),
        "filled_avg_price": _dec(order.filled_avg_price),
        "side": order.side,
        "type": order.type,
        "order_type": order.type,
        "time_in_force": order.time_in_force,
        "limit_price": _dec(order.limit_price),
        "stop_price": None,
        "status": order.status,
        "reject_reason": order.reject_reason,
    }


def position_json(position: Position, market: MarketService) -> dict[str, JSONValue]:
    state = market.get(position.symbol)
    price = state.price if state else position.cost_basis / position.qty
    lastday = state.prev_close if state else price
    market_value = position.qty * price
    unrealized = market_value - position.cost_basis
    plpc = unrealized / position.cost_basis if position.cost_basis else Decimal(0)
    intraday = position.qty * (price - lastday)
    return {
        "symbol": position.symbol,
        "asset_class": state.asset.asset_class if state else None,
        "exchange": state.asset.exchange if state else None,
        "qty": _dec(position.qty),
        "qty_available": _dec(position.qty),
        "side": "long",
        "avg_entry_price": _dec((position.cost_basis / position.qty).quantize(Decimal("0.0001"))),
        "cost_basis": _money(position.cost_basis),
        "market_value": _money(market_value),
        "current_price": _dec(price),
        "lastday_price": _dec(lastday),
        "change_today": _dec(((price - lastday) / lastday).quantize(Decimal("0.0001")))
        if lastday
        else "0",
        "unrealized_pl": _money(unrealized),
        "unrealized_plpc": _dec(plpc.quantize(Decimal("0.0001"))),
        "unrealized_intraday_pl": _money(intraday),
    }


def account_json(
    account: Account, positions: list[Position], reserved: Decimal, market: MarketService
) -> dict[str, JSONValue]:
    long_value = Decimal(0)
    for p in positions:
        state = market.get(p.symbol)
        long_value += p.qty * (state.price if state else p.cost_basis / p.qty)
    equity = account.cash + long_value
    return {
        "id": account.id,
        "account_number": account.account_number,
        "status": "ACTIVE",
        "currency": "USD",
        "cash": _money(account.cash),
        "buying_power": _money(account.cash - reserved),
        "equity": _money(equity),
        "portfolio_value": _money(equity),
        "long_market_value": _money(long_value),
        "short_market_value": "0.00",
        "pattern_day_trader": False,
        "trading_blocked": False,
        "account_blocked": False,
        "shorting_enabled": False,
        "multiplier": "1",
        "created_at": _ts(account.created_at),
    }
