"""The resting-order book: which open limit orders each price move could fill, in memory.

Scanning every open order in the database on every tick cost O(open orders) per tick; the book
answers "which orders does this bid/ask cross?" from a per-symbol index. It is rebuilt from the
database at start and reconciled periodically, so orders placed through another process (scale-
out) are found too; the conditional UPDATE in the engine keeps a fill exactly-once regardless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class RestingOrder:
    id: str
    symbol: str
    side: str
    limit_price: Decimal
    time_in_force: str
    created_on: date


class OrderBook:
    def __init__(self) -> None:
        self._by_symbol: dict[str, dict[str, RestingOrder]] = {}
        self._symbol_of: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._symbol_of)

    def add(self, order: RestingOrder) -> None:
        self.remove(order.id)
        self._by_symbol.setdefault(order.symbol, {})[order.id] = order
        self._symbol_of[order.id] = order.symbol

    def remove(self, order_id: str) -> None:
        symbol = self._symbol_of.pop(order_id, None)
        if symbol is not None:
            self._by_symbol[symbol].pop(order_id, None)

    def replace_all(self, orders: list[RestingOrder]) -> None:
        self._by_symbol.clear()
        self._symbol_of.clear()
        for order in orders:
            self.add(order)

    def crossing(
        self, symbol: str, bid: Decimal, ask: Decimal
    ) -> list[tuple[RestingOrder, Decimal]]:
        """Orders this quote fills, with their fill price: the touch, never worse than the limit."""
        hits = []
        for order in self._by_symbol.get(symbol, {}).values():
            if order.side == "buy" and ask <= order.limit_price:
                hits.append((order, ask))
            elif order.side == "sell" and bid >= order.limit_price:
                hits.append((order, bid))
        return hits

    def expired(self, today: date) -> list[RestingOrder]:
        return [
            o
            for orders in self._by_symbol.values()
            for o in orders.values()
            if o.time_in_force == "day" and o.created_on < today
        ]
