"""User accounts: registration, look-up, and the paper account each user gets."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mytrader_server.db.models import Account, User
from mytrader_server.errors import TradingError


async def create_user(
    sessions: async_sessionmaker[AsyncSession],
    username: str,
    password_hash: str,
    starting_cash: Decimal,
    is_admin: bool = False,
) -> User:
    """Create a user with a funded paper account; 409 if the name is taken."""
    now = datetime.now(UTC)
    user = User(
        id=str(uuid.uuid4()),
        username=username,
        password_hash=password_hash,
        is_admin=is_admin,
        created_at=now,
    )
    account = Account(
        id=str(uuid.uuid4()),
        user_id=user.id,
        account_number="PA" + "".join(secrets.choice("0123456789") for _ in range(10)),
        cash=starting_cash,
        reserved_cash=Decimal(0),
        created_at=now,
    )
    try:
        async with sessions() as session, session.begin():
            existing = await session.scalar(select(User.id).where(User.username == username))
            if existing is not None:
                raise TradingError(409, "username already exists")
            session.add(user)
            await session.flush()
            session.add(account)
    except IntegrityError:
        raise TradingError(409, "username already exists") from None
    return user


async def find_user(sessions: async_sessionmaker[AsyncSession], username: str) -> User | None:
    async with sessions() as session:
        return await session.scalar(select(User).where(User.username == username))
