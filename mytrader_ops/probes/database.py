"""Database evidence: the readiness report's database component and a paper-order round trip.

The round trip (place a far-from-market limit order in the synthetic account, cancel it, read
it back) proves writes and reads through the API; it needs credentials, else INCONCLUSIVE.
"""

from __future__ import annotations

import json
import uuid

from mytrader_ops import healthformat
from mytrader_ops.config import DatabaseCheck
from mytrader_ops.observation import Observation, StepLog
from mytrader_ops.probes.context import ProbeContext, run_probe


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


async def probe_database(ctx: ProbeContext, check: DatabaseCheck) -> Observation:
    async def body(log: StepLog) -> str | None:
        got = await ctx.fetch("GET", ctx.url(check.health_path), max_bytes=1024 * 1024)
        report = healthformat.classify(got.status, got.headers.get("content-type", ""), got.body)
        comps = [c for c in report.components if c.name.startswith(check.component_prefix)]
        if not comps:
            log.unknown(
                "readiness",
                f"HTTP {got.status}; no '{check.component_prefix}*' component in the health report",
            )
        # Every database component is recorded; the worst one decides (any failure fails).
        for comp in sorted(comps, key=lambda c: -healthformat.rank(c.status)):
            text = f"{comp.status}" + (f", {comp.observed}" if comp.observed else "")
            record = {"pass": log.ok, "warn": log.warn}.get(comp.status, log.fail)
            record(f"readiness {comp.name}", text)
        if not check.round_trip:
            return None
        credentials = await ctx.authenticate(log)
        if credentials is None:
            return None
        headers = {**credentials, "Accept": "application/json"}
        client_id = f"mytrader-ops-{uuid.uuid4().hex[:16]}"
        order = {
            "symbol": check.order.symbol,
            "qty": check.order.qty,
            "side": "buy",
            "type": "limit",
            "time_in_force": "gtc",
            "limit_price": check.order.limit_price,
            "client_order_id": client_id,
        }
        placed = await ctx.fetch(
            "POST", ctx.url("/api/orders"), headers=headers, json_body=order, max_bytes=65536
        )
        log.values["order_place_ms"] = placed.elapsed_ms
        doc = _json(placed.body)
        order_id = doc.get("id") if isinstance(doc, dict) else None
        if placed.status not in (200, 201) or not isinstance(order_id, str):
            log.fail("place paper order", f"HTTP {placed.status}", placed.elapsed_ms)
            return None
        status = doc.get("status") if isinstance(doc, dict) else None
        log.ok("place paper order", f"HTTP {placed.status}, status {status}", placed.elapsed_ms)
        cancel = await ctx.fetch(
            "DELETE", ctx.url(f"/api/orders/{order_id}"), headers=headers, max_bytes=65536
        )
        if cancel.status in (200, 204):
            log.ok("cancel paper order", f"HTTP {cancel.status}", cancel.elapsed_ms)
        elif cancel.status == 422 and status == "filled":
            log.ok("cancel paper order", "order filled before cancel (HTTP 422)")
        else:
            log.fail("cancel paper order", f"HTTP {cancel.status}", cancel.elapsed_ms)
            return None
        read = await ctx.fetch(
            "GET", ctx.url(f"/api/orders/{order_id}"), headers=headers, max_bytes=65536
        )
        back = _json(read.body)
        if read.status == 200 and isinstance(back, dict):
            final = back.get("status")
            good = final in ("canceled", "pending_cancel", "filled")
            (log.ok if good else log.fail)("read back", f"status {final}", read.elapsed_ms)
        else:
            log.fail("read back", f"HTTP {read.status}", read.elapsed_ms)
        return None

    return await run_probe(check.id, check.kind, check.timeout_s, body, redactor=ctx.redactor)
