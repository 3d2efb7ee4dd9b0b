"""Registration, login (rate limited, constant-time on unknown users) and ``me``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mytrader_server.api.deps import DB, Ctx, User, client_address
from mytrader_server.auth.tokens import Principal
from mytrader_server.errors import TradingError, rate_limited, unauthorized
from mytrader_server.trading.schemas import Credentials, LoginRequest
from mytrader_server.trading.users import create_user, find_user

router = APIRouter(prefix="/api/auth", tags=["auth"], dependencies=[DB])


@router.post("/register", status_code=201)
async def register(body: Credentials, ctx: Ctx, request: Request) -> JSONResponse:
    if not ctx.settings.registration_enabled:
        raise TradingError(403, "registration is disabled on this server")
    wait = await request.app.state.login_limiter.acquire(f"ip:{client_address(request)}")
    if wait:
        raise rate_limited(int(wait))
    ctx.passwords.check_length(body.password)
    password_hash = await ctx.passwords.hash(body.password)
    user = await create_user(
        ctx.writer_sessions, body.username, password_hash, ctx.settings.starting_cash
    )
    return JSONResponse({"id": user.id, "username": user.username}, status_code=201)


@router.post("/login")
async def login(body: LoginRequest, ctx: Ctx, request: Request) -> dict[str, object]:
    limiter = request.app.state.login_limiter
    for key in (f"ip:{client_address(request)}", f"user:{body.username.lower()}"):
        wait = await limiter.acquire(key)
        if wait:
            raise rate_limited(int(wait))
    ctx.passwords.check_length(body.password)
    user = await find_user(ctx.sessions, body.username)
    ok = await ctx.passwords.verify(user.password_hash if user else None, body.password)
    if user is None or not ok:
        raise unauthorized("invalid username or password")
    token = ctx.tokens.issue(Principal(user.id, user.username, user.is_admin))
    return {"accessToken": token, "tokenType": "Bearer", "expiresIn": ctx.tokens.ttl_s}


@router.get("/me")
async def me(who: User) -> dict[str, object]:
    return {"id": who.user_id, "username": who.username, "isAdmin": who.is_admin}
