"""FastAPI dependencies: the server context, the caller, the engine; one place each."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mytrader_server.auth.tokens import Principal, bearer_token, forbidden
from mytrader_server.context import ServerContext
from mytrader_server.errors import TradingError
from mytrader_server.trading.engine import OrderEngine


def get_ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


def get_engine(request: Request) -> OrderEngine:
    engine: OrderEngine = request.app.state.engine
    return engine


def require_database(ctx: Annotated[ServerContext, Depends(get_ctx)]) -> None:
    """Routes that touch the database answer 503 while the (injected) outage lasts."""
    if ctx.faults.database_down:
        raise TradingError(503, "database unavailable", code=50300001)


def current_user(request: Request, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> Principal:
    token = bearer_token(request.headers.get("authorization"))
    return ctx.tokens.verify(token)


def admin_user(who: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not who.is_admin:
        raise forbidden("admin only")
    return who


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


Ctx = Annotated[ServerContext, Depends(get_ctx)]
Engine = Annotated[OrderEngine, Depends(get_engine)]
User = Annotated[Principal, Depends(current_user)]
Admin = Annotated[Principal, Depends(admin_user)]
DB = Depends(require_database)
