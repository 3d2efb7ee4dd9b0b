"""SIGTERM during an asyncio run unwinds every task by cancellation, then raises
KeyboardInterrupt: no task is cut off mid-callback and asyncio logs nothing."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time

import pytest

from mytrader_ops.interrupts import sigterm_as_interrupt
from tests.support.live import scaled


def test_sigterm_mid_callback_cancels_tasks_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    async def worker() -> None:
        try:
            # Python code running inside a task step when the signal lands: the case where a
            # KeyboardInterrupt raised by the handler used to cut the task off mid-step.
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                pass
            await asyncio.sleep(30)
        except BaseException as exc:
            seen.append(type(exc).__name__)
            raise

    async def main() -> None:
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
        await asyncio.create_task(worker())

    previous = signal.getsignal(signal.SIGTERM)
    # asyncio.run takes its Ctrl-C path only over Python's default SIGINT handler; a test run
    # started as a background job inherits SIGINT ignored (POSIX), so set the default here
    sigint_before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with (
            caplog.at_level(logging.DEBUG, logger="asyncio"),
            sigterm_as_interrupt(),
            pytest.raises(KeyboardInterrupt),
        ):
            asyncio.run(main())
    finally:
        signal.signal(signal.SIGINT, sigint_before)
    assert seen == ["CancelledError"]  # unwound by cancellation, at an await
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert signal.getsignal(signal.SIGTERM) is previous  # restored


def test_sigterm_outside_a_loop_is_a_keyboard_interrupt() -> None:
    def stop_soon() -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Timer(0.1, stop_soon).start()
    started = time.monotonic()
    with sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt):
        time.sleep(5)
    assert time.monotonic() - started < min(4.9, scaled(4))  # interrupted, not slept out
