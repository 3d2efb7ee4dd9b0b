"""Pure logic: the order state machine, order validation, rate limits, rankings, the feed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from mytrader_server.events import LocalBus, Tick
from mytrader_server.market.feed import SimulatedFeed
from mytrader_server.market.rankings import most_actives, movers
from mytrader_server.market.service import MarketService
from mytrader_server.market.universe import UNIVERSE, find_asset
from mytrader_server.ratelimit import RateLimiter
from mytrader_server.trading.schemas import OrderRequest
from mytrader_server.trading.states import (
    OPEN,
    TERMINAL,
    IllegalTransition,
    OrderStatus,
    can_transition,
    sources,
    transition,
)
from tests.support.live import scaled

S = OrderStatus


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (S.NEW, S.FILLED, True),
        (S.NEW, S.PARTIALLY_FILLED, True),
        (S.PARTIALLY_FILLED, S.FILLED, True),
        (S.NEW, S.CANCELED, True),
        (S.NEW, S.EXPIRED, True),
        (S.PENDING_CANCEL, S.CANCELED, True),
        (S.ACCEPTED, S.REJECTED, True),
        (S.FILLED, S.CANCELED, False),
        (S.CANCELED, S.FILLED, False),
        (S.EXPIRED, S.NEW, False),
        (S.REJECTED, S.NEW, False),
        (S.NEW, S.ACCEPTED, False),
    ],
)
def test_order_transitions(current: OrderStatus, target: OrderStatus, allowed: bool) -> None:
    assert can_transition(current, target) is allowed
    if allowed:
        assert transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition):
            transition(current, target)


def test_terminal_and_open_partition_every_state() -> None:
    assert {S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED} == TERMINAL
    assert set(OrderStatus) == OPEN | TERMINAL
    assert not OPEN & TERMINAL


@pytest.mark.parametrize(
    "qty",
    ["Infinity", "NaN", "-1", "0", "1e309", "1.123456789", "abc", 1e309, True, "1" * 50, None],
)
def test_order_quantity_rejects_bad_numbers(qty: object) -> None:
    with pytest.raises(ValidationError):
        OrderRequest.model_validate({"symbol": "AAPL", "qty": qty, "side": "buy"})


@pytest.mark.parametrize(
    "body",
    [
        {"symbol": "AAPL", "qty": "1", "side": "buy", "status": "filled"},
        {"symbol": "AAPL", "qty": "1", "side": "buy", "user_id": "x"},
        {"symbol": "AAPL", "qty": "1", "side": "buy", "filled_avg_price": "1"},
        {"symbol": "AAPL", "qty": "1", "side": "short"},
        {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit"},
        {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "limit_price": "10"},
        {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit", "limit_price": "Infinity"},
        {"symbol": "AAPL", "qty": "1", "side": "buy", "client_order_id": "x" * 49},
        {"symbol": "AAPL", "qty": "1", "side": "buy", "client_order_id": "semi;colon"},
        {"symbol": "AAPL", "qty": "1", "side": "buy", "time_in_force": "fok"},
    ],
)
def test_order_request_rejects_mass_assignment_and_bad_fields(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        OrderRequest.model_validate(body)


def test_order_fingerprint_ignores_number_spelling() -> None:
    a = OrderRequest.model_validate({"symbol": "aapl", "qty": "1.50", "side": "buy"})
    b = OrderRequest.model_validate({"symbol": "AAPL", "qty": 1.5, "side": "buy"})
    c = OrderRequest.model_validate({"symbol": "AAPL", "qty": "2", "side": "buy"})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert a.qty == Decimal("1.50")


def test_rate_limiter_refills_and_reports_wait() -> None:
    limiter = RateLimiter(rate_per_minute=2)
    assert limiter.take("k", now=0.0) == 0
    assert limiter.take("k", now=0.0) == 0
    wait = limiter.take("k", now=0.0)
    assert wait == 30  # one token every 30 s
    assert limiter.take("other", now=0.0) == 0  # keys are independent
    assert limiter.take("k", now=31.0) == 0


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(rate_per_minute=1, max_keys=10)
    for i in range(100):
        limiter.take(f"k{i}", now=0.0)
    assert len(limiter._buckets) == 10


def test_universe_has_stocks_and_crypto() -> None:
    classes = {a.asset_class for a in UNIVERSE}
    assert len(UNIVERSE) >= 20
    assert classes == {"us_equity", "crypto"}
    btc = find_asset("btc/usd")
    assert btc is not None
    assert btc.symbol == "BTCUSD"
    assert find_asset("NOPE") is None


def _run(seed: int, steps: int) -> list[tuple[str, str, int]]:
    feed = SimulatedFeed(seed=seed, interval_s=0.25)
    now = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    feed.initial_state(now)
    out = []
    for _ in range(steps):
        out.extend((t.symbol, t.price, t.volume) for t in feed.step(now))
    return out


def test_feed_is_deterministic_for_a_seed() -> None:
    assert _run(7, 20) == _run(7, 20)
    assert _run(7, 20) != _run(8, 20)


def test_feed_volume_and_trades_are_cumulative_and_prices_positive() -> None:
    feed = SimulatedFeed(seed=1, interval_s=0.25)
    now = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    feed.initial_state(now)
    last: dict[str, tuple[int, int]] = {}
    for _ in range(200):
        for tick in feed.step(now):
            volume, trades = last.get(tick.symbol, (0, 0))
            assert tick.volume > volume
            assert tick.trade_count > trades
            assert Decimal(tick.price) > 0
            assert Decimal(tick.bid) <= Decimal(tick.price) <= Decimal(tick.ask)
            last[tick.symbol] = (tick.volume, tick.trade_count)


async def test_rankings_follow_the_applied_ticks() -> None:
    market = MarketService(SimulatedFeed(3, 0.25), LocalBus(), 0.25)
    feed = SimulatedFeed(3, 0.25)
    feed.initial_state(datetime.now(UTC))
    for _ in range(5):
        await market.apply(feed.step(datetime.now(UTC)))
    states = list(market.states.values())
    leaders = most_actives(states, "volume", 5)
    volumes = [row["volume"] for row in leaders]
    assert volumes == sorted(volumes, reverse=True)
    assert len(leaders) == 5
    by_trades = most_actives(states, "trades", 100)
    assert len(by_trades) == len(states)
    moved = movers(states, 3)
    assert all(Decimal(r["percent_change"]) > 0 for r in moved["gainers"])
    assert all(Decimal(r["percent_change"]) < 0 for r in moved["losers"])


async def test_market_ignores_stale_and_unknown_ticks() -> None:
    bus = LocalBus()
    seen: list[object] = []
    bus.subscribe(seen.append)
    market = MarketService(SimulatedFeed(3, 0.25), bus, 0.25)
    feed = SimulatedFeed(3, 0.25)
    feed.initial_state(datetime.now(UTC))
    ticks = feed.step(datetime.now(UTC))
    assert ticks
    await market.apply(ticks)
    assert seen == ticks  # each new tick published once, in order
    await market.apply(ticks)  # replayed: same sequence numbers
    unknown = Tick("NOPE", "1.00", "0.99", "1.01", 1, 1, "2026-01-02T15:00:00Z", 10**9)
    await market.apply([unknown])  # a symbol outside the universe
    assert seen == ticks
    age = market.feed_age_s()
    assert age is not None
    assert 0 <= age < scaled(5)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (S.FILLED, {S.ACCEPTED, S.NEW, S.PARTIALLY_FILLED, S.PENDING_CANCEL}),
        (S.CANCELED, {S.ACCEPTED, S.NEW, S.PARTIALLY_FILLED, S.PENDING_CANCEL}),
        (S.EXPIRED, {S.NEW, S.PARTIALLY_FILLED}),
        (S.ACCEPTED, set()),
    ],
)
def test_conditional_update_sources_come_from_the_state_machine(
    target: OrderStatus, expected: set[OrderStatus]
) -> None:
    assert sources(target) == expected


def test_a_resumed_feed_continues_prices_totals_and_sequence() -> None:
    """A new scale-out feed leader continues where the old one left off: no sequence number is
    reused (followers drop stale ticks) and day volume never goes backwards."""
    old = SimulatedFeed(seed=1, interval_s=0.25)
    now = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    states = {s.asset.symbol: s for s in old.initial_state(now)}
    for _ in range(20):
        for tick in old.step(now):
            states[tick.symbol].apply(tick)
    last_seq = max(s.seq for s in states.values())
    new = SimulatedFeed(seed=99, interval_s=0.25)
    new.initial_state(now)
    new.resume(states.values(), last_seq)
    for tick in new.step(now):
        state = states[tick.symbol]
        assert tick.seq > last_seq
        assert tick.volume > state.volume
        assert abs(Decimal(tick.price) - state.price) / state.price < Decimal("0.05")
