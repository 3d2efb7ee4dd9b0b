"""SignalR hub probes: one full session, a simulated mobile client, and connection success."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from mytrader_ops.config import ConnectionSuccessCheck, HubCheck, MobileCheck
from mytrader_ops.observation import Observation, StepLog
from mytrader_ops.probes.context import ProbeContext, run_probe
from mytrader_ops.probes.hubsession import (
    HubAuth,
    HubError,
    HubSession,
    hub_auth,
    negotiate_status,
)

MOBILE_LABEL = "simulated mobile client"
PING_WAIT_S = 20.0


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


async def _auth_for(
    ctx: ProbeContext, check: HubCheck, log: StepLog, in_query: bool = False
) -> HubAuth | str:
    if check.require_auth:
        status, _body, took = await negotiate_status(ctx, ctx.backend, check.path, HubAuth())
        ok = status == 401
        (log.ok if ok else log.fail)(
            "anonymous negotiate refused", f"HTTP {status}" + ("" if ok else ", expected 401"), took
        )
    if not check.auth:
        return HubAuth()
    auth, reason, failed = await hub_auth(ctx, in_query)
    if auth is None:
        (log.fail if failed else log.unknown)("authenticate", reason)
        return reason
    return auth


async def _exercise(session: HubSession, check: HubCheck, log: StepLog, tag: str = "") -> None:
    t0 = time.perf_counter()
    if check.invoke is not None:
        reply = await session.invoke(check.invoke.target, list(check.invoke.arguments))
        if reply.get("error"):
            log.fail(f"invoke{tag}", f"{check.invoke.target}: {reply['error']}", _ms(t0))
            return
        log.ok(f"invoke{tag}", f"{check.invoke.target} completed", _ms(t0))
    if check.expect_message is not None:
        limit_s = check.first_message_within_ms / 1000
        try:
            await asyncio.wait_for(session.next_push(check.expect_message), timeout=limit_s)
        except TimeoutError:
            log.fail(
                f"first message{tag}",
                f"no {check.expect_message} within {check.first_message_within_ms:g} ms",
            )
            return
        took = _ms(t0)
        log.values[f"first_message_ms{tag.replace(' ', '_')}"] = took
        log.ok(f"first message{tag}", f"{check.expect_message} received", took)


async def probe_hub(ctx: ProbeContext, check: HubCheck) -> Observation:
    async def body(log: StepLog) -> str | None:
        auth = await _auth_for(ctx, check, log)
        if isinstance(auth, str):
            return auth
        try:
            session = await HubSession.open(
                ctx, check.path, auth, log=log, max_message_bytes=check.max_message_bytes
            )
        except HubError as exc:
            log.fail(exc.step, exc.detail)
            return None
        try:
            await _exercise(session, check, log)
            if check.wait_ping:
                t0 = time.perf_counter()
                try:
                    await asyncio.wait_for(session.ping_event.wait(), timeout=PING_WAIT_S)
                    log.ok("keep-alive ping", "server ping (type 6) received", _ms(t0))
                except TimeoutError:
                    log.fail("keep-alive ping", f"no ping within {PING_WAIT_S:g} s")
            else:
                await session.ping()
            if session.failure:
                log.fail("receive", session.failure)
            if session.close_message is not None:
                log.fail("server close", f"server sent Close: {session.close_message}")
        except HubError as exc:
            log.fail(exc.step, exc.detail)
        finally:
            t0 = time.perf_counter()
            code = await session.close()
            (log.ok if code in (1000, None) else log.fail)(
                "close", f"Close sent, WebSocket close code {code}", _ms(t0)
            )
        return None

    return await run_probe(check.id, check.kind, check.timeout_s, body, redactor=ctx.redactor)


async def probe_mobile(ctx: ProbeContext, check: MobileCheck) -> Observation:
    """Hub auth by `access_token` query, then reconnect after a dropped network."""

    async def body(log: StepLog) -> str | None:
        auth = await _auth_for(ctx, check, log, in_query=True)
        if isinstance(auth, str):
            return auth
        try:
            session = await HubSession.open(ctx, check.path, auth, log=log)
        except HubError as exc:
            log.fail(exc.step, f"{exc.detail} (access_token query auth)")
            return None
        try:
            await _exercise(session, check, log)
        finally:
            await session.abort()
        log.ok("network drop", "connection aborted without a close handshake")
        t0 = time.perf_counter()
        try:
            again = await HubSession.open(ctx, check.path, auth)
        except HubError as exc:
            log.fail("reconnect", f"{exc.step}: {exc.detail}")
            return None
        took = _ms(t0)
        log.values["reconnect_ms"] = took
        log.ok("reconnect", "negotiate + connect + handshake", took)
        try:
            await _exercise(again, check, log, " after reconnect")
        finally:
            await again.close()
        return None

    return await run_probe(
        check.id, check.kind, check.timeout_s, body, label=MOBILE_LABEL, redactor=ctx.redactor
    )


@dataclass(frozen=True, slots=True)
class ConnectionTally:
    attempts: int
    successes: int
    failures: dict[str, int]
    connect_ms_p50: float | None
    unavailable: str | None = None
    missing: bool = True  # unavailable for want of credentials (not the deployment's failure)


async def measure_connection_success(
    ctx: ProbeContext, check: ConnectionSuccessCheck, window_s: float
) -> ConnectionTally:
    """Open `attempts` sessions spread evenly over `window_s`; count successes.

    The whole measurement ends by `window_s + timeout_s`: attempts still hanging then, or
    never started, count as failures (a hanging hub cannot stretch the run).
    """
    auth = HubAuth()
    if check.auth:
        got, reason, auth_failed = await hub_auth(ctx)
        if got is None:
            return ConnectionTally(0, 0, {}, None, reason, missing=not auth_failed)
        auth = got
    failures: dict[str, int] = {}
    times: list[float] = []
    sem = asyncio.Semaphore(check.concurrency)
    interval = window_s / check.attempts
    start = time.perf_counter()
    successes = 0

    def failed(key: str) -> None:
        failures[key] = failures.get(key, 0) + 1

    async def attempt(i: int) -> None:
        nonlocal successes
        await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
        async with sem:
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(check.timeout_s):
                    session = await HubSession.open(ctx, check.path, auth)
                    await session.close()
                times.append(_ms(t0))
                successes += 1
                return
            except HubError as exc:
                key = f"{exc.step}: {exc.detail}"[:80]
            except TimeoutError:
                key = f"timeout after {check.timeout_s:g} s"
            except Exception as exc:
                key = f"{type(exc).__name__}"
            failed(key)

    tasks = [asyncio.create_task(attempt(i)) for i in range(check.attempts)]
    _done, pending = await asyncio.wait(tasks, timeout=window_s + check.timeout_s + 1)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        failures[f"not completed within {window_s + check.timeout_s:g} s"] = len(pending)
    times.sort()
    p50 = times[len(times) // 2] if times else None
    return ConnectionTally(check.attempts, successes, failures, p50)
