"""Frontend probes: page load (HTML plus same-origin assets) and the /api and /hubs proxy.

"Reaches the same backend" is shown by comparing a deterministic API body fetched through
the frontend with the same body fetched directly, and by a hub handshake through the proxy.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from urllib.parse import urljoin, urlsplit

from mytrader_ops.config import FrontendCheck, ProxyCheck
from mytrader_ops.observation import Observation, StepLog
from mytrader_ops.probes.context import ProbeContext, run_probe
from mytrader_ops.probes.hubsession import HubAuth, HubError, HubSession

_ASSET = re.compile(r"""<(?:script[^>]+src|link[^>]+href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def same_origin_assets(page_url: str, html: str, limit: int) -> list[str]:
    origin = urlsplit(page_url).netloc
    out: list[str] = []
    for ref in _ASSET.findall(html):
        url = urljoin(page_url, ref)
        if urlsplit(url).netloc == origin and url not in out:
            out.append(url)
    return out[:limit]


async def probe_frontend(ctx: ProbeContext, check: FrontendCheck) -> Observation:
    async def body(log: StepLog) -> str | None:
        if ctx.frontend is None:
            return "no frontend URL given"
        url = ctx.url(check.path, ctx.frontend)
        t0 = time.perf_counter()
        page = await ctx.fetch(
            "GET", url, headers={"Accept": "text/html"}, max_bytes=4 * 1024 * 1024
        )
        html = page.body.decode("utf-8", "replace")
        ctype = page.headers.get("content-type", "")
        if page.status != 200:
            log.fail("page", f"HTTP {page.status}", page.elapsed_ms)
            return None
        sane = "html" in ctype and re.search(r"<(!doctype html|html)", html, re.IGNORECASE)
        (log.ok if sane else log.fail)(
            "page", f"HTTP 200, {ctype}, {len(page.body)} bytes", page.elapsed_ms
        )
        assets = same_origin_assets(url, html, check.max_assets)
        results = await asyncio.gather(
            *(ctx.fetch("GET", a, max_bytes=16 * 1024 * 1024) for a in assets)
        )
        bad = [
            f"{a} HTTP {r.status}" for a, r in zip(assets, results, strict=True) if r.status != 200
        ]
        if bad:
            log.fail("assets", f"{len(bad)} of {len(assets)} failed: {bad[0]}")
        else:
            log.ok("assets", f"{len(assets)} same-origin assets loaded")
        log.values["load_ms"] = _ms(t0)
        return None

    return await run_probe(check.id, check.kind, check.timeout_s, body, redactor=ctx.redactor)


def _canonical(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return body


async def _same_backend(ctx: ProbeContext, check: ProxyCheck, log: StepLog) -> None:
    """Identity, not just equal content: the same token must see the same account both ways."""
    cred, reason, failed = await ctx.credential()
    if cred is None:
        record = log.fail if failed else log.unknown
        record("same backend", f"identity needs credentials ({reason})")
        return
    headers = {**cred.headers, "Accept": "application/json"}
    assert ctx.frontend is not None
    via, direct = await asyncio.gather(
        ctx.fetch("GET", ctx.url(check.identity_path, ctx.frontend), headers=headers),
        ctx.fetch("GET", ctx.url(check.identity_path), headers=headers),
    )
    ids = []
    for got in (via, direct):
        body = _canonical(got.body)
        ids.append(body.get("id") if isinstance(body, dict) and got.status == 200 else None)
    if ids[0] is not None and ids[0] == ids[1]:
        log.ok(
            "same backend", f"{check.identity_path} id identical through the frontend and direct"
        )
    else:
        log.fail(
            "same backend",
            f"{check.identity_path}: HTTP {via.status} via frontend vs HTTP {direct.status} "
            "direct, or different ids: the frontend reaches another backend",
        )


async def probe_proxy(ctx: ProbeContext, check: ProxyCheck) -> Observation:
    async def body(log: StepLog) -> str | None:
        if ctx.frontend is None:
            return "no frontend URL given"
        accept = {"Accept": "application/json"}
        via, direct = await asyncio.gather(
            ctx.fetch("GET", ctx.url(check.api_path, ctx.frontend), headers=accept),
            ctx.fetch("GET", ctx.url(check.api_path), headers=accept),
        )
        if via.status != 200:
            log.fail("api via frontend", f"HTTP {via.status}", via.elapsed_ms)
        elif "json" not in via.headers.get("content-type", ""):
            log.fail("api via frontend", "answered non-JSON (the SPA fallback page?)")
        else:
            same = direct.status == 200 and _canonical(via.body) == _canonical(direct.body)
            (log.ok if same else log.fail)(
                "api via frontend",
                f"HTTP 200 {check.api_path}, "
                + (
                    "same body as direct" if same else f"body differs (direct HTTP {direct.status})"
                ),
                via.elapsed_ms,
            )
        await _same_backend(ctx, check, log)
        try:
            session = await HubSession.open(ctx, check.hub_path, HubAuth(), base=ctx.frontend)
        except HubError as exc:
            log.fail("hub via frontend", f"{exc.step}: {exc.detail}")
            return None
        await session.close()
        log.ok("hub via frontend", f"negotiate + WebSocket + handshake on {check.hub_path}")
        return None

    return await run_probe(check.id, check.kind, check.timeout_s, body, redactor=ctx.redactor)
