"""Orders, account and positions. A user only ever sees their own (another user's is a 404)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from mytrader_server.api.deps import DB, Engine, User
from mytrader_server.errors import rate_limited
from mytrader_server.events import JSONObject
from mytrader_server.trading.schemas import NoNul, OrderRequest

router = APIRouter(tags=["trading"], dependencies=[DB])
OrderId = Annotated[str, Path(max_length=64), NoNul]


@router.post("/api/orders", status_code=201)
async def place_order(
    body: OrderRequest, who: User, engine: Engine, request: Request
) -> JSONResponse:
    wait = await request.app.state.order_limiter.acquire(f"user:{who.user_id}")
    if wait:
        raise rate_limited(int(wait))
    placed = await engine.place(who, body)
    return JSONResponse(placed.order, status_code=201 if placed.created else 200)


@router.get("/api/orders")
async def list_orders(
    who: User,
    engine: Engine,
    status: Annotated[Literal["open", "closed", "all"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[JSONObject]:
    return await engine.list_orders(who, status, limit)


@router.get("/api/orders/by-client-id/{client_order_id}")
async def order_by_client_id(
    client_order_id: Annotated[str, Path(max_length=48), NoNul], who: User, engine: Engine
) -> JSONObject:
    return await engine.get_by_client_id(who, client_order_id)


@router.get("/api/orders/{order_id}")
async def get_order(order_id: OrderId, who: User, engine: Engine) -> JSONObject:
    return await engine.get(who, order_id)


@router.delete("/api/orders/{order_id}", status_code=204)
async def cancel_order(order_id: OrderId, who: User, engine: Engine) -> Response:
    await engine.cancel(who, order_id)
    return Response(status_code=204)


@router.get("/api/account")
async def account(who: User, engine: Engine) -> JSONObject:
    return await engine.account(who.user_id)


@router.get("/api/positions")
async def positions(who: User, engine: Engine) -> list[JSONObject]:
    return await engine.positions(who.user_id)


@router.get("/api/positions/{symbol}")
async def position(
    symbol: Annotated[str, Path(max_length=16), NoNul], who: User, engine: Engine
) -> JSONObject:
    return await engine.position(who.user_id, symbol)
