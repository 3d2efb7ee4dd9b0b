"""Negotiated connection ids: issued by ``POST /hubs/{hub}/negotiate``, claimed by one WebSocket.

Under negotiate v1 a secret ``connectionToken`` is the id; under v0 (pysignalr, signalrcore) the
``connectionId`` is. Either is accepted. An id not claimed within ``PENDING_TTL_S`` expires; a
claimed id refuses a second socket (409) and disappears when its socket closes (404 after).

With scale-out the negotiation is also stored in Redis (``SharedNegotiations``), so that the
WebSocket may reach another process than the negotiate request did.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from mytrader_server.auth.tokens import Principal
from mytrader_server.events import EventBus, JSONValue
from mytrader_server.hubs.scaleout import shared_negotiations

log = logging.getLogger(__name__)

PENDING_TTL_S: Final = 60.0
CLAIM_TTL_S: Final = 2 * PENDING_TTL_S  # outlives the negotiation it guards
MAX_PENDING: Final = 10_000


def new_id() -> str:
    return secrets.token_urlsafe(16)


@dataclass(slots=True)
class Pending:
    """A negotiated connection id, waiting for (or claimed by) its WebSocket."""

    hub: str
    connection_id: str
    token: str | None
    principal: Principal | None
    created: float
    active: bool = False

    @property
    def ids(self) -> list[str]:
        return [self.connection_id] + ([self.token] if self.token else [])


class Negotiations:
    """This process's negotiated ids, backed by Redis when the bus is a RedisBus."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self.pending: OrderedDict[str, Pending] = OrderedDict()

    async def create(self, hub: str, principal: Principal | None, version: int) -> Pending:
        pending = Pending(
            hub, new_id(), new_id() if version >= 1 else None, principal, time.monotonic()
        )
        self._remember(pending)
        await self._share(pending)
        return pending

    async def find(self, id_: str) -> Pending | None:
        return self.pending.get(id_) or await self._fetch_shared(id_)

    async def claim(self, pending: Pending) -> bool:
        """Take the id for one socket; False when a socket (here or elsewhere) already has it."""
        if pending.active:
            return False
        pending.active = True
        store = shared_negotiations(self._bus)
        if store is None:
            return True
        try:
            if await store.claim(pending.connection_id, int(CLAIM_TTL_S * 1000)):
                return True
        except Exception:
            return True  # Redis down: the local claim is all there is
        self._forget(pending)  # another process owns it now; ask Redis next time
        return False

    async def release(self, pending: Pending) -> None:
        """The socket closed: the id is gone, here and in Redis."""
        self._forget(pending)
        store = shared_negotiations(self._bus)
        if store is not None:
            try:
                await store.release(pending.connection_id, pending.ids)
            except Exception as exc:
                log.warning("could not release a negotiation: %s", type(exc).__name__)

    def expire(self, now: float) -> None:
        """Forget ids that no socket claimed in time."""
        expired = [
            key
            for key, p in self.pending.items()
            if not p.active and now - p.created >= PENDING_TTL_S
        ]
        for key in expired:
            del self.pending[key]

    def _remember(self, pending: Pending) -> None:
        while len(self.pending) >= MAX_PENDING * 2:
            self.pending.popitem(last=False)
        for id_ in pending.ids:
            self.pending[id_] = pending

    def _forget(self, pending: Pending) -> None:
        for id_ in pending.ids:
            if self.pending.get(id_) is pending:
                del self.pending[id_]

    async def _share(self, pending: Pending) -> None:
        store = shared_negotiations(self._bus)
        if store is None:
            return
        p = pending.principal
        record: dict[str, JSONValue] = {
            "hub": pending.hub,
            "connectionId": pending.connection_id,
            "token": pending.token,
            "user": None if p is None else [p.user_id, p.username, p.is_admin],
            # a key of its own: a process of the previous version reads "user" and ignores it
            "exp": None if p is None else p.expires_at,
        }
        try:
            await store.put(pending.ids, record, int(PENDING_TTL_S * 1000))
        except Exception as exc:  # this process can still take the connection itself
            log.warning("could not share a negotiation: %s", type(exc).__name__)

    async def _fetch_shared(self, id_: str) -> Pending | None:
        store = shared_negotiations(self._bus)
        if store is None:
            return None
        try:
            record = await store.get(id_)
        except Exception as exc:
            log.warning("could not look a negotiation up: %s", type(exc).__name__)
            return None
        if record is None or id_ in self.pending:
            return self.pending.get(id_)
        user, token = record.get("user"), record.get("token")
        principal = None
        if isinstance(user, list) and len(user) == 3:
            exp = record.get("exp")
            principal = Principal(
                str(user[0]),
                str(user[1]),
                user[2] is True,
                float(exp) if isinstance(exp, int | float) else None,
            )
        pending = Pending(
            str(record.get("hub")),
            str(record.get("connectionId")),
            token if isinstance(token, str) else None,
            principal,
            time.monotonic(),
        )
        self._remember(pending)
        return pending
