"""The tradable universe: US stocks and crypto pairs, with realistic starting prices."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

AssetClass = Literal["us_equity", "crypto"]


@dataclass(frozen=True, slots=True)
class Asset:
    symbol: str
    name: str
    exchange: str
    asset_class: AssetClass
    start_price: Decimal
    daily_volume: int  # typical shares/coins traded per day, drives simulated volume
    volatility: float  # annualised

    @property
    def fractionable(self) -> bool:
        return self.asset_class == "crypto"

    @property
    def price_decimals(self) -> int:
        return 2 if self.start_price >= 1 else 6


def _stock(symbol: str, name: str, exchange: str, price: str, volume: int, vol: float) -> Asset:
    return Asset(symbol, name, exchange, "us_equity", Decimal(price), volume, vol)


def _crypto(symbol: str, name: str, price: str, volume: int, vol: float) -> Asset:
    return Asset(symbol, name, "CRYPTO", "crypto", Decimal(price), volume, vol)


UNIVERSE: tuple[Asset, ...] = (
    _stock("AAPL", "Apple Inc.", "NASDAQ", "189.50", 55_000_000, 0.25),
    _stock("MSFT", "Microsoft Corporation", "NASDAQ", "415.20", 22_000_000, 0.24),
    _stock("NVDA", "NVIDIA Corporation", "NASDAQ", "118.30", 250_000_000, 0.50),
    _stock("AMZN", "Amazon.com, Inc.", "NASDAQ", "182.10", 40_000_000, 0.30),
    _stock("GOOGL", "Alphabet Inc. Class A", "NASDAQ", "171.40", 25_000_000, 0.28),
    _stock("META", "Meta Platforms, Inc.", "NASDAQ", "502.70", 15_000_000, 0.35),
    _stock("TSLA", "Tesla, Inc.", "NASDAQ", "246.90", 95_000_000, 0.55),
    _stock("AMD", "Advanced Micro Devices, Inc.", "NASDAQ", "158.20", 45_000_000, 0.45),
    _stock("NFLX", "Netflix, Inc.", "NASDAQ", "682.40", 3_500_000, 0.35),
    _stock("JPM", "JPMorgan Chase & Co.", "NYSE", "205.60", 9_000_000, 0.20),
    _stock("V", "Visa Inc.", "NYSE", "276.30", 6_500_000, 0.18),
    _stock("KO", "The Coca-Cola Company", "NYSE", "63.10", 13_000_000, 0.14),
    _stock("XOM", "Exxon Mobil Corporation", "NYSE", "113.80", 16_000_000, 0.22),
    _stock("WMT", "Walmart Inc.", "NYSE", "68.90", 18_000_000, 0.16),
    _stock("DIS", "The Walt Disney Company", "NYSE", "98.40", 10_000_000, 0.27),
    _stock("INTC", "Intel Corporation", "NASDAQ", "30.20", 50_000_000, 0.40),
    _stock("SPY", "SPDR S&P 500 ETF Trust", "ARCA", "548.30", 60_000_000, 0.15),
    _stock("QQQ", "Invesco QQQ Trust", "NASDAQ", "470.10", 35_000_000, 0.20),
    _crypto("BTCUSD", "Bitcoin / US Dollar", "67250.00", 30_000, 0.60),
    _crypto("ETHUSD", "Ethereum / US Dollar", "3480.00", 350_000, 0.70),
    _crypto("SOLUSD", "Solana / US Dollar", "148.50", 2_500_000, 0.90),
    _crypto("DOGEUSD", "Dogecoin / US Dollar", "0.1250", 900_000_000, 1.00),
    _crypto("ADAUSD", "Cardano / US Dollar", "0.4500", 300_000_000, 0.90),
    _crypto("LTCUSD", "Litecoin / US Dollar", "72.40", 1_200_000, 0.80),
)

BY_SYMBOL: dict[str, Asset] = {a.symbol: a for a in UNIVERSE}


def find_asset(symbol: str) -> Asset | None:
    """Look a symbol up case-insensitively, tolerating ``BTC/USD`` for ``BTCUSD``."""
    return BY_SYMBOL.get(symbol.strip().upper().replace("/", "").replace("-", ""))
