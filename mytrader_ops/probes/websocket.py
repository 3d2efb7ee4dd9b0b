"""Plain WebSocket probe: bounded open, optional send, bounded size-capped first message, and
the close code judged (only a normal 1000 or 1001 close passes)."""

from __future__ import annotations

import asyncio
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, PayloadTooBig, WebSocketException

from mytrader_ops.config import WebSocketCheck
from mytrader_ops.observation import Observation, StepLog
from mytrader_ops.probes.context import ProbeContext, run_probe


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def ws_target(ctx: ProbeContext, check: WebSocketCheck) -> str:
    if check.url is not None:
        return check.url
    base = ctx.backend.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return f"{base}{check.path or '/'}"


async def probe_websocket(ctx: ProbeContext, check: WebSocketCheck) -> Observation:
    async def body(log: StepLog) -> str | None:
        url = ws_target(ctx, check)
        t0 = time.perf_counter()
        try:
            ws = await connect(
                url,
                open_timeout=check.timeout_s,
                max_size=check.max_message_bytes,
                compression=None,
                proxy=None,
                ping_interval=None,
                close_timeout=2,
                ssl=ctx.ssl_context if url.startswith("wss") else None,
            )
        except InvalidStatus as exc:
            log.fail("open", f"HTTP {exc.response.status_code}", _ms(t0))
            return None
        except (WebSocketException, OSError, TimeoutError) as exc:
            log.fail("open", f"{type(exc).__name__}: {exc}", _ms(t0))
            return None
        log.values["open_ms"] = _ms(t0)
        log.ok("open", "handshake complete", _ms(t0))
        try:
            if check.send is not None:
                await ws.send(check.send)
            if check.expect_message:
                t1 = time.perf_counter()
                try:
                    msg = await asyncio.wait_for(ws.recv(), timeout=check.timeout_s)
                    log.values["first_message_ms"] = _ms(t1)
                    log.ok("first message", f"{len(msg)} bytes", _ms(t1))
                except TimeoutError:
                    log.fail("first message", "nothing received before the deadline")
                except PayloadTooBig:
                    log.fail(
                        "first message", f"message larger than {check.max_message_bytes} bytes"
                    )
                except ConnectionClosed as exc:
                    log.fail("first message", f"closed: {exc}")
        finally:
            t2 = time.perf_counter()
            await ws.close()
            # A clean closing handshake ends in 1000 (normal) or 1001 (going away). Anything
            # else is the target's doing: 1011 internal error, 1008 policy, 1006 no close frame.
            code = ws.close_code
            reason = f": {ws.close_reason}" if ws.close_reason else ""
            if code in (1000, 1001):
                log.ok("close", f"close code {code}", _ms(t2))
            else:
                log.fail("close", f"close code {code}{reason}", _ms(t2))
        return None

    return await run_probe(check.id, check.kind, check.timeout_s + 1, body, redactor=ctx.redactor)
