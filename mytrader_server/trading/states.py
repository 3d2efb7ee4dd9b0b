"""The order state machine (Alpaca's statuses) as data: every transition the engine makes."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    ACCEPTED = "accepted"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.ACCEPTED: frozenset({S.NEW, S.REJECTED, S.FILLED, S.CANCELED}),
    S.NEW: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED}),
    S.PENDING_CANCEL: frozenset({S.CANCELED, S.FILLED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
}
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
OPEN = frozenset(TRANSITIONS) - TERMINAL

# The hub event named for each state an order enters.
EVENT_FOR = {
    S.NEW: "new",
    S.PARTIALLY_FILLED: "partial_fill",
    S.FILLED: "fill",
    S.CANCELED: "canceled",
    S.EXPIRED: "expired",
    S.REJECTED: "rejected",
    S.PENDING_CANCEL: "pending_cancel",
    S.ACCEPTED: "accepted",
}


class IllegalTransition(Exception):
    pass


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


def sources(target: OrderStatus) -> frozenset[OrderStatus]:
    """Every state from which ``target`` may be entered: the WHERE of a conditional UPDATE."""
    return frozenset(s for s, nxt in TRANSITIONS.items() if target in nxt)


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    if not can_transition(current, target):
        raise IllegalTransition(f"{current} -> {target}")
    return target
