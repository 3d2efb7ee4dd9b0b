"""Symbols, quotes, bars, volume leaders (Alpaca's most-actives shape) and movers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from mytrader_server.api.deps import Ctx
from mytrader_server.errors import not_found
from mytrader_server.market.feed import SymbolState
from mytrader_server.market.rankings import most_actives, movers
from mytrader_server.market.universe import UNIVERSE, Asset, find_asset

router = APIRouter(tags=["market data"])
# Hot read routes return their JSON directly: FastAPI's validation of a plain dict return value
# cost more than the route itself (GET quotes ran at half the throughput of /health/live).


def _asset_json(asset: Asset) -> dict[str, object]:
    return {
        "symbol": asset.symbol,
        "name": asset.name,
        "exchange": asset.exchange,
        "assetClass": asset.asset_class,
        "status": "active",
        "tradable": True,
        "fractionable": asset.fractionable,
    }


def _state(ctx: Ctx, symbol: str) -> SymbolState:
    state = ctx.market.get(symbol)
    if state is None:
        raise not_found(f"symbol '{symbol[:16]}'")
    return state


def _stamp(ctx: Ctx) -> str:
    at = ctx.market.last_tick_at or datetime.now(UTC)
    return at.isoformat().replace("+00:00", "Z")


@router.get("/api/symbols")
async def symbols(
    asset_class: Annotated[Literal["us_equity", "crypto"] | None, Query()] = None,
) -> list[dict[str, object]]:
    return [_asset_json(a) for a in UNIVERSE if asset_class in (None, a.asset_class)]


@router.get("/api/symbols/{symbol}")
async def symbol(symbol: str) -> dict[str, object]:
    asset = find_asset(symbol)
    if asset is None:
        raise not_found(f"symbol '{symbol[:16]}'")
    return _asset_json(asset)


@router.get("/api/market-data/quotes")
async def quotes(
    ctx: Ctx, symbols: Annotated[str | None, Query(max_length=1000)] = None
) -> JSONResponse:
    if symbols is None:
        return JSONResponse([s.quote_json() for s in ctx.market.states.values()])
    wanted = [s for s in symbols.split(",") if s.strip()]
    return JSONResponse([_state(ctx, s).quote_json() for s in wanted[:100]])


@router.get("/api/market-data/quotes/{symbol}")
async def quote(symbol: str, ctx: Ctx) -> JSONResponse:
    return JSONResponse(_state(ctx, symbol).quote_json())


@router.get("/api/market-data/bars/{symbol}")
async def bars(
    symbol: str, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, object]:
    state = _state(ctx, symbol)
    rows = list(state.bars)[-limit:]
    return {"symbol": state.asset.symbol, "timeframe": "1Min", "bars": [b.to_json() for b in rows]}


@router.get("/api/market-data/volume-leaders")
async def volume_leaders(
    ctx: Ctx,
    by: Annotated[Literal["volume", "trades"], Query()] = "volume",
    top: Annotated[int, Query(ge=1, le=100)] = 10,
) -> JSONResponse:
    return JSONResponse(
        {
            "most_actives": most_actives(ctx.market.states.values(), by, top),
            "last_updated": _stamp(ctx),
        }
    )


@router.get("/api/market-data/movers")
async def market_movers(
    ctx: Ctx, top: Annotated[int, Query(ge=1, le=50)] = 10
) -> dict[str, object]:
    result: dict[str, object] = dict(movers(ctx.market.states.values(), top))
    result["market_type"] = "mixed"
    result["last_updated"] = _stamp(ctx)
    return result
