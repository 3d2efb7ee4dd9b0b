"""Market-data providers: the interface, the quote cache, and a deterministic simulated feed.

The simulated feed is a seeded geometric Brownian motion per symbol with a U-shaped intraday
volume profile; given the same seed it produces the same sequence of ticks. Volume and trade
count are cumulative for the trading day, as on a real consolidated tape.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

from mytrader_server.events import Tick
from mytrader_server.market.universe import UNIVERSE, Asset

SECONDS_PER_YEAR = 365.0 * 24 * 3600
BAR_HISTORY = 500


@dataclass(slots=True)
class Bar:
    t: datetime
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 - Alpaca's field name
    c: Decimal
    v: int
    n: int

    def to_json(self) -> dict[str, str | int]:
        return {
            "t": self.t.isoformat().replace("+00:00", "Z"),
            "o": str(self.o),
            "h": str(self.h),
            "l": str(self.l),
            "c": str(self.c),
            "v": self.v,
            "n": self.n,
        }


@dataclass(slots=True)
class SymbolState:
    """Everything known about one symbol right now."""

    asset: Asset
    price: Decimal
    bid: Decimal
    ask: Decimal
    open: Decimal
    prev_close: Decimal
    high: Decimal
    low: Decimal
    volume: int = 0
    trade_count: int = 0
    seq: int = 0
    epoch: int = 0
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    bars: deque[Bar] = field(default_factory=lambda: deque(maxlen=BAR_HISTORY))

    def apply(self, tick: Tick) -> None:
        self.price = Decimal(tick.price)
        self.bid = Decimal(tick.bid)
        self.ask = Decimal(tick.ask)
        self.high = max(self.high, self.price)
        self.low = min(self.low, self.price)
        added_volume = max(0, tick.volume - self.volume)
        added_trades = max(0, tick.trade_count - self.trade_count)
        self.volume = tick.volume
        self.trade_count = tick.trade_count
        self.seq = tick.seq
        self.epoch = tick.epoch
        self.updated_at = datetime.fromisoformat(tick.timestamp.replace("Z", "+00:00"))
        self._roll_bar(added_volume, added_trades)

    def _roll_bar(self, volume: int, trades: int) -> None:
        minute = self.updated_at.replace(second=0, microsecond=0)
        if self.bars and self.bars[-1].t == minute:
            bar = self.bars[-1]
            bar.h = max(bar.h, self.price)
            bar.l = min(bar.l, self.price)
            bar.c = self.price
            bar.v += volume
            bar.n += trades
        else:
            self.bars.append(
                Bar(minute, self.price, self.price, self.price, self.price, volume, trades)
            )

    def quote_json(self) -> dict[str, str | int]:
        change = self.price - self.prev_close
        pct = (change / self.prev_close * 100) if self.prev_close else Decimal(0)
        return {
            "symbol": self.asset.symbol,
            "price": str(self.price),
            "bid": str(self.bid),
            "ask": str(self.ask),
            "open": str(self.open),
            "high": str(self.high),
            "low": str(self.low),
            "prev_close": str(self.prev_close),
            "change": str(change),
            "change_percent": str(pct.quantize(Decimal("0.01"), ROUND_HALF_EVEN)),
            "volume": self.volume,
            "trade_count": self.trade_count,
            "timestamp": self.updated_at.isoformat().replace("+00:00", "Z"),
        }


class MarketDataProvider(Protocol):
    """What a real market-data provider implements to replace the simulation."""

    def initial_state(self, now: datetime) -> Iterable[SymbolState]: ...

    def step(self, now: datetime) -> list[Tick]: ...

    def resume(self, states: Iterable[SymbolState], seq: int) -> None:
        """Continue from these prices, day totals and sequence number (a new feed leader)."""
        ...


def _quantize(value: float, asset: Asset) -> Decimal:
    exp = Decimal(1).scaleb(-asset.price_decimals)
    return Decimal(repr(value)).quantize(exp, ROUND_HALF_EVEN)


class SimulatedFeed:
    """A deterministic, seedable feed: the same seed gives the same ticks in the same order."""

    def __init__(self, seed: int, interval_s: float, assets: Iterable[Asset] = UNIVERSE) -> None:
        self._assets = list(assets)
        self._rng = random.Random(seed)
        self._interval_s = interval_s
        self._prices = {a.symbol: float(a.start_price) for a in self._assets}
        self._volume = dict.fromkeys(self._prices, 0)
        self._trades = dict.fromkeys(self._prices, 0)
        self._seq = 0

    def initial_state(self, now: datetime) -> list[SymbolState]:
        states = []
        for asset in self._assets:
            start = float(asset.start_price)
            prev_close = start * math.exp(self._rng.gauss(0, asset.volatility / math.sqrt(252)))
            price = _quantize(start, asset)
            spread = self._half_spread(asset, start)
            state = SymbolState(
                asset=asset,
                price=price,
                bid=_quantize(start - spread, asset),
                ask=_quantize(start + spread, asset),
                open=price,
                prev_close=_quantize(prev_close, asset),
                high=price,
                low=price,
                updated_at=now,
            )
            self._seed_history(state, now)
            states.append(state)
        return states

    def _seed_history(self, state: SymbolState, now: datetime) -> None:
        """Sixty one-minute bars leading up to now, so charts have something to draw at start."""
        price = float(state.prev_close)
        target = float(state.price)
        minute = now.replace(second=0, microsecond=0)
        sigma = state.asset.volatility * math.sqrt(60 / SECONDS_PER_YEAR)
        per_minute = max(1, state.asset.daily_volume // 390)
        for i in range(60, 0, -1):
            drift = (target - price) / i
            close = max(price + drift + price * self._rng.gauss(0, sigma), 1e-6)
            hi, lo = max(price, close) * 1.0005, min(price, close) * 0.9995
            vol = int(per_minute * self._rng.uniform(0.5, 1.5))
            state.bars.append(
                Bar(
                    minute - timedelta(minutes=i),
                    _quantize(price, state.asset),
                    _quantize(hi, state.asset),
                    _quantize(lo, state.asset),
                    _quantize(close, state.asset),
                    vol,
                    max(1, vol // 100),
                )
            )
            price = close

    @staticmethod
    def _half_spread(asset: Asset, price: float) -> float:
        return max(price * 0.0001, 10.0**-asset.price_decimals)

    def step(self, now: datetime) -> list[Tick]:
        """Advance every symbol by one interval; return one tick per symbol."""
        dt = self._interval_s / SECONDS_PER_YEAR
        stamp = now.isoformat().replace("+00:00", "Z")
        ticks = []
        for asset in self._assets:
            sym = asset.symbol
            shock = self._rng.gauss(0.0, 1.0)
            price = self._prices[sym] * math.exp(
                -0.5 * asset.volatility**2 * dt + asset.volatility * math.sqrt(dt) * shock
            )
            self._prices[sym] = price
            intensity = asset.daily_volume / (6.5 * 3600) * self._interval_s
            intensity *= self._intraday_profile(now) * (1.0 + min(abs(shock), 3.0))
            trades = max(1, int(self._rng.expovariate(1.0) * max(1.0, intensity / 100)))
            volume = max(1, int(self._rng.expovariate(1.0) * intensity))
            self._volume[sym] += volume
            self._trades[sym] += trades
            self._seq += 1
            spread = self._half_spread(asset, price)
            ticks.append(
                Tick(
                    symbol=sym,
                    price=str(_quantize(price, asset)),
                    bid=str(_quantize(price - spread, asset)),
                    ask=str(_quantize(price + spread, asset)),
                    volume=self._volume[sym],
                    trade_count=self._trades[sym],
                    timestamp=stamp,
                    seq=self._seq,
                )
            )
        return ticks

    def resume(self, states: Iterable[SymbolState], seq: int) -> None:
        """Take over where another process's feed left off: its prices, cumulative day volume
        and trade count, and a sequence number past every tick already published."""
        for state in states:
            symbol = state.asset.symbol
            if symbol in self._prices:
                self._prices[symbol] = float(state.price)
                self._volume[symbol] = max(self._volume[symbol], state.volume)
                self._trades[symbol] = max(self._trades[symbol], state.trade_count)
        self._seq = max(self._seq, seq)

    @staticmethod
    def _intraday_profile(now: datetime) -> float:
        """A U shape over the day: busier at the open and the close."""
        x = (now.hour * 60 + now.minute) / (24 * 60)
        return 0.6 + 1.6 * (x - 0.5) ** 2 * 4
