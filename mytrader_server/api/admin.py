"""Run-time fault injection for release testing (admin only; disabled unless configured)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from mytrader_server.api.deps import Admin, Ctx
from mytrader_server.errors import TradingError
from mytrader_server.faults import FaultProfile

router = APIRouter(prefix="/api/admin", tags=["admin"])


def _require_enabled(ctx: Ctx) -> None:
    if not ctx.faults.enabled:
        raise TradingError(403, "fault injection is disabled on this server")


def _apply(ctx: Ctx, profile: FaultProfile) -> None:
    ctx.faults.set(profile)
    ctx.market.stalled = profile.feed_stalled


@router.get("/faults")
async def get_faults(ctx: Ctx, _admin: Admin) -> dict[str, object]:
    return {"enabled": ctx.faults.enabled, "profile": ctx.faults.profile.model_dump()}


@router.put("/faults")
async def put_faults(profile: FaultProfile, ctx: Ctx, _admin: Admin) -> dict[str, object]:
    _require_enabled(ctx)
    _apply(ctx, profile)
    return {"enabled": True, "profile": profile.model_dump()}


@router.delete("/faults", status_code=204)
async def clear_faults(ctx: Ctx, _admin: Admin) -> Response:
    _require_enabled(ctx)
    _apply(ctx, FaultProfile())
    return Response(status_code=204)
