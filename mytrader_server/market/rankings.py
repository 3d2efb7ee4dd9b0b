"""Pure rankings over symbol states: most actives (Alpaca's screener shape) and movers."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from mytrader_server.market.feed import SymbolState

RankBy = Literal["volume", "trades"]


def most_actives(states: Iterable[SymbolState], by: RankBy, top: int) -> list[dict[str, str | int]]:
    """Symbols ranked by cumulative day volume or trade count, largest first, ties by symbol."""

    def key(s: SymbolState) -> tuple[int, str]:
        return (-(s.volume if by == "volume" else s.trade_count), s.asset.symbol)

    ranked = sorted(states, key=key)[:top]
    return [
        {"symbol": s.asset.symbol, "volume": s.volume, "trade_count": s.trade_count} for s in ranked
    ]


def movers(states: Iterable[SymbolState], top: int) -> dict[str, list[dict[str, str]]]:
    """The top gainers and losers by percent change against the previous close."""
    rows = []
    for s in states:
        change = s.price - s.prev_close
        pct = change / s.prev_close * 100 if s.prev_close else Decimal(0)
        rows.append((pct, s, change))
    rows.sort(key=lambda r: (r[0], r[1].asset.symbol))

    def row(pct: Decimal, s: SymbolState, change: Decimal) -> dict[str, str]:
        return {
            "symbol": s.asset.symbol,
            "percent_change": str(pct.quantize(Decimal("0.01"), ROUND_HALF_EVEN)),
            "change": str(change),
            "price": str(s.price),
        }

    gainers = [row(*r) for r in reversed(rows) if r[0] > 0][:top]
    losers = [row(*r) for r in rows if r[0] < 0][:top]
    return {"gainers": gainers, "losers": losers}
