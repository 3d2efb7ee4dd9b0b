"""Order placement, cancellation and fills against the market feed, one transaction each.

Every state change is a conditional UPDATE on the order's current status, so two processes (or a
fill racing a cancel) can never both move one order: exactly one wins, the other sees 0 rows.
Events go to the bus only after the transaction commits.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mytrader_server.auth.tokens import Principal
from mytrader_server.db.models import Account, Fill, Order, Position
from mytrader_server.errors import TradingError, not_found, trading_paused, unprocessable
from mytrader_server.events import EventBus, JSONObject, Tick, UserEvent
from mytrader_server.market.service import MarketService
from mytrader_server.market.universe import find_asset
from mytrader_server.metrics import Metrics
from mytrader_server.trading.book import OrderBook, RestingOrder
from mytrader_server.trading.schemas import OrderRequest
from mytrader_server.trading.states import (
    EVENT_FOR,
    OPEN,
    TERMINAL,
    OrderStatus,
    sources,
    transition,
)
from mytrader_server.trading.views import account_json, order_json, position_json

log = logging.getLogger(__name__)
OPEN_VALUES = [s.value for s in OPEN]
_FILLABLE = [s.value for s in sources(OrderStatus.FILLED)]
BOOK_RELOAD_S = 5.0  # pick up orders placed through other processes


@dataclass(frozen=True, slots=True)
class Placed:
    order: JSONObject
    created: bool


class OrderEngine:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        writer_sessions: async_sessionmaker[AsyncSession],
        market: MarketService,
        bus: EventBus,
        metrics: Metrics,
    ) -> None:
        self._sessions = sessions
        self._writes = writer_sessions
        self._market = market
        self._bus = bus
        self._metrics = metrics
        self._last_sweep_error = 0.0
        self.book = OrderBook()
        self._book_loaded_at = 0.0
        self._expiry_checked_on: date | None = None

    # ---- placement -------------------------------------------------------------------------

    async def place(self, who: Principal, req: OrderRequest) -> Placed:
        asset = find_asset(req.symbol)
        if asset is None:
            raise unprocessable(f"unknown symbol '{req.symbol}'")
        if not asset.fractionable and req.qty != req.qty.to_integral_value():
            raise unprocessable(f"{asset.symbol} is not fractionable: qty must be whole")
        state = self._market.get(asset.symbol)
        if state is None:  # pragma: no cover - the universe and the market agree
            raise unprocessable(f"no market for '{req.symbol}'")
        client_id = req.client_order_id or str(uuid.uuid4())
        fingerprint = req.fingerprint()

        now = datetime.now(UTC)
        order = Order(
            id=str(uuid.uuid4()),
            user_id=who.user_id,
            client_order_id=client_id,
            request_hash=fingerprint,
            symbol=asset.symbol,
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force,
            qty=req.qty,
            limit_price=req.limit_price,
            filled_qty=Decimal(0),
            filled_avg_price=None,
            status=OrderStatus.NEW.value,
            created_at=now,
            updated_at=now,
            submitted_at=now,
        )
        fill_price = self._marketable_price(order, state.bid, state.ask)
        events: list[str] = ["new"]
        try:
            async with self._writes() as session, session.begin():
                # The account row lock serialises this user's placements, so a twin that
                # committed first is visible here: a replay is answered before any business
                # check, whatever the account looks like now (the unique constraint below stays
                # the backstop for a twin that has not committed yet).
                account = await self._account(session, who.user_id)
                if req.client_order_id is not None:
                    existing = await session.scalar(
                        select(Order).where(
                            Order.user_id == who.user_id, Order.client_order_id == client_id
                        )
                    )
                    if existing is not None:
                        return self._replay(existing, fingerprint)  # nothing was written
                halted = self._market.trading_halted()
                if halted is not None:  # scale-out: cut off from the cluster's quotes
                    raise trading_paused(halted)
                await self._check_funds(session, account, order, fill_price or req.limit_price)
                session.add(order)
                await session.flush()
                if fill_price is not None:
                    await self._fill(session, order, account, fill_price, now)
                    events.append("fill")
                elif req.time_in_force == "ioc":
                    order.status = transition(OrderStatus.NEW, OrderStatus.CANCELED).value
                    order.canceled_at = now
                    events.append("canceled")
                elif order.side == "buy":
                    account.reserved_cash += _reservation(order)
        except IntegrityError:  # a concurrent twin with this client_order_id committed first
            existing = await self._by_client_id(who.user_id, client_id)
            if existing is None:  # pragma: no cover - the unique row must exist now
                raise
            return self._replay(existing, fingerprint)
        if order.status == OrderStatus.NEW.value:
            self.book.add(_resting(order))
        body = order_json(order)
        for event in events:
            self._metrics.orders.labels(event).inc()
            self._bus.publish(
                UserEvent(who.user_id, "OrderUpdate", {"event": event, "order": body})
            )
        if fill_price is not None:
            await self._publish_portfolio(who.user_id)
        return Placed(body, created=True)

    def _replay(self, existing: Order, fingerprint: str) -> Placed:
        if existing.request_hash != fingerprint:
            raise unprocessable(
                "client_order_id must be unique (a different order already uses it)"
            )
        return Placed(order_json(existing), created=False)

    @staticmethod
    def _marketable_price(order: Order, bid: Decimal, ask: Decimal) -> Decimal | None:
        touch = ask if order.side == "buy" else bid
        if order.type == "market":
            return touch
        assert order.limit_price is not None
        crosses = touch <= order.limit_price if order.side == "buy" else touch >= order.limit_price
        return touch if crosses else None

    async def _check_funds(
        self, session: AsyncSession, account: Account, order: Order, price: Decimal | None
    ) -> None:
        if order.side == "buy":
            assert price is not None
            cost = order.qty * price
            if cost > account.cash - account.reserved_cash:
                raise TradingError(403, "insufficient buying power", code=40310000)
        else:
            position = await session.get(Position, (order.user_id, order.symbol))
            held = position.qty if position else Decimal(0)
            reserved_qty = await self._reserved_qty(session, order.user_id, order.symbol)
            if order.qty > held - reserved_qty:
                raise TradingError(403, "insufficient qty available for order", code=40310001)

    async def _reserved_qty(self, session: AsyncSession, user_id: str, symbol: str) -> Decimal:
        rows = await session.execute(
            select(Order.qty, Order.filled_qty).where(
                Order.user_id == user_id,
                Order.symbol == symbol,
                Order.side == "sell",
                Order.status.in_(OPEN_VALUES),
            )
        )
        return sum(((q - f) for q, f in rows), Decimal(0))

    # ---- fills ------------------------------------------------------------------------------

    async def _fill(
        self, session: AsyncSession, order: Order, account: Account, price: Decimal, now: datetime
    ) -> None:
        qty = order.qty - order.filled_qty
        order.status = transition(OrderStatus(order.status), OrderStatus.FILLED).value
        order.filled_qty = order.qty
        order.filled_avg_price = price
        order.filled_at = now
        order.updated_at = now
        session.add(
            Fill(
                id=str(uuid.uuid4()),
                order_id=order.id,
                user_id=order.user_id,
                symbol=order.symbol,
                side=order.side,
                qty=qty,
                price=price,
                at=now,
            )
        )
        position = await session.get(Position, (order.user_id, order.symbol), with_for_update=True)
        if order.side == "buy":
            account.cash -= qty * price
            if position is None:
                session.add(
                    Position(
                        user_id=order.user_id,
                        symbol=order.symbol,
                        qty=qty,
                        cost_basis=qty * price,
                        updated_at=now,
                    )
                )
            else:
                position.qty += qty
                position.cost_basis += qty * price
                position.updated_at = now
        else:
            assert position is not None
            assert position.qty >= qty
            account.cash += qty * price
            basis_sold = position.cost_basis * qty / position.qty
            position.qty -= qty
            position.cost_basis -= basis_sold
            position.updated_at = now
            if position.qty == 0:
                await session.delete(position)

    async def load_book(self) -> None:
        """(Re)build the resting-order book from the database."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    Order.id,
                    Order.symbol,
                    Order.side,
                    Order.limit_price,
                    Order.time_in_force,
                    Order.created_at,
                ).where(Order.type == "limit", Order.status.in_(OPEN_VALUES))
            )
            resting = [
                RestingOrder(i, sym, side, price, tif, created.date())
                for i, sym, side, price, tif, created in rows
                if price is not None
            ]
        self.book.replace_all(resting)
        self._book_loaded_at = time.monotonic()

    async def on_ticks(self, ticks: list[Tick]) -> None:
        """Fill resting limit orders whose price the market has crossed; expire day orders."""
        try:
            if time.monotonic() - self._book_loaded_at > BOOK_RELOAD_S:
                await self.load_book()
            now = datetime.now(UTC)
            if self._expiry_checked_on != now.date():
                for order in self.book.expired(now.date()):
                    self.book.remove(order.id)
                    await self._finish(order.id, OrderStatus.EXPIRED, now)
                self._expiry_checked_on = now.date()
            for tick in ticks:
                for order, price in self.book.crossing(
                    tick.symbol, Decimal(tick.bid), Decimal(tick.ask)
                ):
                    self.book.remove(order.id)
                    await self._fill_resting(order.id, price, now)
        except Exception as exc:  # database outage: log at most once a minute
            if time.monotonic() - self._last_sweep_error > 60:
                self._last_sweep_error = time.monotonic()
                log.warning("order sweep failed: %s", type(exc).__name__)
            self._book_loaded_at = 0.0  # reload once the database is back

    async def _fill_resting(self, order_id: str, price: Decimal, now: datetime) -> None:
        async with self._writes() as session, session.begin():
            claimed = await session.execute(
                update(Order)
                .where(Order.id == order_id, Order.status.in_(_FILLABLE))
                .values(status=OrderStatus.FILLED.value, updated_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return  # someone else (a cancel, another process) got there first
            order = await session.get(Order, order_id, populate_existing=True)
            assert order is not None
            account = await self._account(session, order.user_id)
            if order.side == "buy":
                account.reserved_cash -= _reservation(order)
            order.status = OrderStatus.NEW.value  # claimed above; _fill records the transition
            await self._fill(session, order, account, price, now)
        self._metrics.orders.labels("fill").inc()
        self._bus.publish(
            UserEvent(order.user_id, "OrderUpdate", {"event": "fill", "order": order_json(order)})
        )
        await self._publish_portfolio(order.user_id)

    async def _finish(self, order_id: str, status: OrderStatus, now: datetime) -> Order | None:
        stamp = {"canceled_at": now} if status == OrderStatus.CANCELED else {"expired_at": now}
        async with self._writes() as session, session.begin():
            result = await session.execute(
                update(Order)
                .where(Order.id == order_id, Order.status.in_([s.value for s in sources(status)]))
                .values(status=status.value, updated_at=now, **stamp)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            order = await session.get(Order, order_id, populate_existing=True)
            assert order is not None
            if order.side == "buy" and order.type == "limit":
                account = await self._account(session, order.user_id)
                account.reserved_cash -= _reservation(order)
        self.book.remove(order_id)
        event = EVENT_FOR[status]
        self._metrics.orders.labels(event).inc()
        self._bus.publish(
            UserEvent(order.user_id, "OrderUpdate", {"event": event, "order": order_json(order)})
        )
        await self._publish_portfolio(order.user_id)
        return order

    # ---- queries and cancel -------------------------------------------------------------------

    async def cancel(self, who: Principal, order_id: str) -> None:
        order = await self._owned(who, order_id)
        if OrderStatus(order.status) in TERMINAL:
            raise unprocessable(f"order is already {order.status} and cannot be canceled")
        if await self._finish(order.id, OrderStatus.CANCELED, datetime.now(UTC)) is None:
            raise unprocessable("order reached a final state and cannot be canceled")

    async def get(self, who: Principal, order_id: str) -> JSONObject:
        return order_json(await self._owned(who, order_id))

    async def get_by_client_id(self, who: Principal, client_order_id: str) -> JSONObject:
        order = await self._by_client_id(who.user_id, client_order_id)
        if order is None:
            raise not_found("order")
        return order_json(order)

    async def list_orders(self, who: Principal, status: str, limit: int) -> list[JSONObject]:
        query = select(Order).where(Order.user_id == who.user_id)
        if status == "open":
            query = query.where(Order.status.in_(OPEN_VALUES))
        elif status == "closed":
            query = query.where(Order.status.not_in(OPEN_VALUES))
        query = query.order_by(Order.created_at.desc(), Order.id).limit(limit)
        async with self._sessions() as session:
            return [order_json(o) for o in await session.scalars(query)]

    async def account(self, user_id: str) -> JSONObject:
        account, positions = await self._holdings(user_id)
        return account_json(account, positions, account.reserved_cash, self._market)

    async def portfolio(self, user_id: str) -> JSONObject:
        """Account and positions from one read: the PortfolioUpdate shape."""
        account, positions = await self._holdings(user_id)
        return {
            "account": account_json(account, positions, account.reserved_cash, self._market),
            "positions": [position_json(p, self._market) for p in positions],
        }

    async def _holdings(self, user_id: str) -> tuple[Account, list[Position]]:
        async with self._sessions() as session:
            account = await self._account(session, user_id, lock=False)
            return account, await self._positions(session, user_id)

    async def positions(self, user_id: str) -> list[JSONObject]:
        async with self._sessions() as session:
            rows = await self._positions(session, user_id)
        return [position_json(p, self._market) for p in rows]

    async def position(self, user_id: str, symbol: str) -> JSONObject:
        asset = find_asset(symbol)
        async with self._sessions() as session:
            row = await session.get(Position, (user_id, asset.symbol)) if asset else None
        if row is None:
            raise not_found("position")
        return position_json(row, self._market)

    async def _publish_portfolio(self, user_id: str) -> None:
        try:
            payload = await self.portfolio(user_id)
        except Exception:
            log.warning("portfolio update for a user could not be built")
            return
        self._bus.publish(UserEvent(user_id, "PortfolioUpdate", payload))

    async def _owned(self, who: Principal, order_id: str) -> Order:
        async with self._sessions() as session:
            order = await session.get(Order, order_id)
        if order is None or order.user_id != who.user_id:
            raise not_found("order")  # another user's order does not exist for this caller
        return order

    async def _by_client_id(self, user_id: str, client_order_id: str) -> Order | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(Order).where(
                    Order.user_id == user_id, Order.client_order_id == client_order_id
                )
            )

    @staticmethod
    async def _account(session: AsyncSession, user_id: str, lock: bool = True) -> Account:
        """The user's account row; ``lock`` (FOR UPDATE on PostgreSQL) in writing transactions."""
        query = select(Account).where(Account.user_id == user_id)
        account = await session.scalar(query.with_for_update() if lock else query)
        if account is None:
            raise not_found("account")
        return account

    @staticmethod
    async def _positions(session: AsyncSession, user_id: str) -> list[Position]:
        rows = await session.scalars(
            select(Position).where(Position.user_id == user_id).order_by(Position.symbol)
        )
        return list(rows)


def _reservation(order: Order) -> Decimal:
    """Cash a resting buy order holds: what is left to fill at its limit price."""
    return (order.qty - order.filled_qty) * (order.limit_price or Decimal(0))


def _resting(order: Order) -> RestingOrder:
    assert order.limit_price is not None
    return RestingOrder(
        order.id,
        order.symbol,
        order.side,
        order.limit_price,
        order.time_in_force,
        order.created_at.date(),
    )
