"""SIGTERM handled as Ctrl-C, so that a stop request ends an asyncio run cleanly.

Raising ``KeyboardInterrupt`` straight from a SIGTERM handler lands in whatever frame runs at
that instant, possibly an event-loop callback; ``asyncio.run`` then shuts down with half-run
tasks and logs their exceptions with tracebacks. Handing the signal to the current SIGINT
handler instead uses asyncio's own path while a loop runs (``asyncio.Runner`` cancels the main
task, lets it unwind, then raises ``KeyboardInterrupt``) and Python's default outside one.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

_requested = False


def stop_requested() -> bool:
    """Whether SIGTERM arrived inside ``sigterm_as_interrupt``: long sequences (rollback steps)
    check it between units of work, in case a handler or ``asyncio.wait_for`` swallowed it."""
    return _requested


def _as_sigint(_signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = True
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIG_IGN or SIG_DFL set by someone else: still stop
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM behaves as Ctrl-C (``KeyboardInterrupt`` after a clean unwind)."""
    global _requested
    _requested = False
    previous = signal.signal(signal.SIGTERM, _as_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _requested = False
