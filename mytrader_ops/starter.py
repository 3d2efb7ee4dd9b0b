"""Pure: a commented starter configuration from what `init` found (`probes.discover`).

One check per thing that answered, the shipped go-live suite's thresholds, nothing invented.
Latency criteria start as `critical: false` (a stranger's latency budget is unknown; the shipped
numbers are MyTrader's) and say so; where something answered 401 an `auth:` block with
`${VAR}` placeholders is written, and never a secret.
"""

from __future__ import annotations

import json
import re

from mytrader_ops.probes.discover import Discovery, Found

# the shipped go-live suite's thresholds (checks/go-live.yaml)
HEALTH_P95_MS = 10.0
API_P95_MS = 100.0
HUB_P95_MS = 50.0
MAX_ERROR_RATE = 0.05
MIN_CONNECTION_SUCCESS = 0.95


def _q(text: str) -> str:
    return json.dumps(text)  # a JSON string is a YAML string


def _id(prefix: str, path: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root"
    return f"{prefix}-{slug}"[:63].rstrip("-")


def render_starter(d: Discovery) -> str:
    needs_auth = any(f.needs_auth for f in d.found)
    out = [
        "# Starter configuration written by `mytrader-ops init`: one check per thing that",
        f"# answered at {d.target} (nothing guessed). Thresholds are the shipped go-live suite's;",
        "# tune them to your service. Check it with `mytrader-ops config check FILE`.",
        "version: 1",
        f"title: {_q(f'Validation of {d.target}')}",
        "default_env: discovered",
        "environments:",
        "  discovered:",
        f"    backend: {_q(d.target)}",
    ]
    if d.frontend:
        out.append(f"    frontend: {_q(d.frontend)}")
    if needs_auth:
        out += [
            "    # Some endpoints answered 401. Say how to authenticate: bearer (below), header",
            "    # (an API key), oauth2 (client credentials) or login. Secrets stay ${VAR}s.",
            "    auth:",
            "      type: bearer",
            "      token: ${SERVICE_TOKEN}",
        ]
    out += ["sampler: {duration_s: 20, rate: 50}", "checks:"]
    first_api: Found | None = None
    for f in d.found:
        auth = "\n    auth: true" if f.needs_auth else ""
        if f.kind == "health":
            out += [
                f"  # {f.path}: {f.detail}",
                f"  - id: {_id('health', f.path)}",
                f"    title: {_q(f'Health report at {f.path}')}",
                "    kind: health",
                f"    path: {_q(f.path)}",
            ]
        elif f.kind == "metrics":
            out += [
                f"  # /metrics: Prometheus text, {f.detail}",
                "  - id: metrics",
                "    title: Prometheus metrics are exposed and well formed",
                "    kind: metrics",
                "    path: /metrics",
                f"    require: {json.dumps(list(f.names))}",
            ]
        elif f.kind == "route":
            first_api = first_api or f
            out += [
                f"  # GET {f.path} (from the OpenAPI document): {f.detail}",
                f"  - id: {_id('get', f.path)}",
                f"    title: {_q(f'GET {f.path} answers')}",
                "    kind: http",
                f"    path: {_q(f.path)}{auth}",
            ]
        elif f.kind == "hub":
            out += [
                f"  # SignalR hub {f.path}: {f.detail}",
                f"  - id: {_id('hub', f.path)}",
                f"    title: {_q(f'SignalR hub {f.path} accepts clients')}",
                "    kind: hub",
                f"    path: {_q(f.path)}{auth}",
                f"  - id: {_id('connections', f.path)}",
                f"    title: {_q(f'Connections to {f.path} succeed')}",
                "    kind: connection-success",
                f"    path: {_q(f.path)}{auth}",
                f"    min_rate: {MIN_CONNECTION_SUCCESS}",
            ]
    health = next((f for f in d.found if f.kind == "health" and not f.needs_auth), None)
    sampled = [f for f in (health, first_api) if f is not None]
    for f in sampled:
        limit = HEALTH_P95_MS if f is health else API_P95_MS
        out += [
            f"  # p95 <= {limit:g} ms is the shipped suite's; not blocking until you set",
            "  # critical: true with a threshold measured for your service.",
            f"  - id: {_id('latency', f.path)}",
            f"    title: {_q(f'Latency of {f.path}')}",
            "    kind: latency",
            f"    path: {_q(f.path)}{chr(10) + '    auth: true' if f.needs_auth else ''}",
            "    percentile: 95",
            f"    max_ms: {limit:g}",
            "    critical: false",
        ]
    if sampled:
        out += [
            "  - id: error-rate",
            "    title: Error rate under sampled load",
            "    kind: error-rate",
            f"    max_rate: {MAX_ERROR_RATE}",
        ]
    if not d.found:
        out.append("  []  # nothing answered: no health endpoint, hub, /metrics or OpenAPI")
    return "\n".join(out) + "\n"
