"""Pure classification of health responses in the four common formats.

IETF `application/health+json` (draft-inadarei-api-health-check-06), ASP.NET Core (plain
text `Healthy|Degraded|Unhealthy` and HealthChecks.UI JSON `entries`), Spring Boot Actuator
(`components`, nested) and Kubernetes `/livez` `/readyz` (`ok`, `[+]name ok`, `[-]name failed`).
Rule: the HTTP code first (4xx/5xx fail), then the body's status word.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

HealthStatus = Literal["pass", "warn", "fail", "unknown"]
_WORDS: dict[str, HealthStatus] = {
    "healthy": "pass",
    "up": "pass",
    "pass": "pass",
    "ok": "pass",
    "degraded": "warn",
    "warn": "warn",
    "unhealthy": "fail",
    "down": "fail",
    "out_of_service": "fail",
    "fail": "fail",
    "error": "fail",
    "unknown": "unknown",
}
_RANK: dict[HealthStatus, int] = {"fail": 3, "warn": 2, "unknown": 1, "pass": 0}


@dataclass(frozen=True, slots=True)
class HealthComponent:
    name: str
    status: HealthStatus
    observed: str = ""


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: HealthStatus
    format: str
    components: tuple[HealthComponent, ...]
    note: str = ""


def word_status(word: object) -> HealthStatus:
    if not isinstance(word, str):
        return "unknown"
    return _WORDS.get(word.strip().lower(), "unknown")


def rank(status: HealthStatus) -> int:
    """How bad a status is: fail 3, warn 2, unknown 1, pass 0."""
    return _RANK[status]


def worst(statuses: list[HealthStatus]) -> HealthStatus:
    return max(statuses, key=lambda s: _RANK[s]) if statuses else "unknown"


def _ietf(body: dict[str, object]) -> list[HealthComponent]:
    out = []
    checks = body.get("checks")
    if isinstance(checks, dict):
        for name, entries in checks.items():
            items = entries if isinstance(entries, list) else [entries]
            for item in items:
                if not isinstance(item, dict):
                    out.append(HealthComponent(str(name), "unknown", "malformed entry"))
                    continue
                observed = ""
                if "observedValue" in item:
                    observed = f"{item['observedValue']} {item.get('observedUnit', '')}".strip()
                if item.get("output"):
                    observed = f"{observed} {item['output']}".strip()
                out.append(HealthComponent(str(name), word_status(item.get("status")), observed))
    return out


def _spring(components: dict[str, object], prefix: str = "") -> list[HealthComponent]:
    out = []
    for name, comp in components.items():
        if not isinstance(comp, dict):
            continue
        full = f"{prefix}{name}"
        out.append(HealthComponent(full, word_status(comp.get("status"))))
        nested = comp.get("components")
        if isinstance(nested, dict):
            out.extend(_spring(nested, f"{full}/"))
    return out


def _aspnet_ui(entries: dict[str, object]) -> list[HealthComponent]:
    out = []
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            continue
        observed = str(entry.get("duration", ""))
        if entry.get("description"):
            observed = f"{observed} {entry['description']}".strip()
        out.append(HealthComponent(str(name), word_status(entry.get("status")), observed))
    return out


def _k8s(text: str) -> list[HealthComponent]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[+]"):
            out.append(HealthComponent(line[3:].split(" ")[0], "pass", line[3:]))
        elif line.startswith("[-]"):
            out.append(HealthComponent(line[3:].split(" ")[0], "fail", line[3:]))
    return out


def classify(status_code: int, content_type: str, body: bytes) -> HealthReport:
    """Classify a health response; HTTP 4xx/5xx is a failure whatever the body says."""
    http_fail = status_code >= 400
    text = body.decode("utf-8", "replace").strip()
    parsed: object = None
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict):
        if "entries" in parsed:
            fmt = "aspnet-healthchecks-ui"
            comps = _aspnet_ui(parsed["entries"]) if isinstance(parsed["entries"], dict) else []
        elif "components" in parsed:
            fmt = "spring-actuator"
            comps = _spring(parsed["components"]) if isinstance(parsed["components"], dict) else []
        else:
            fmt = "ietf-health+json" if "health+json" in content_type else "json"
            comps = _ietf(parsed)
        body_status = word_status(parsed.get("status"))
    elif parsed is None and text.startswith("{"):
        return HealthReport(
            "fail" if http_fail else "unknown", "malformed-json", (), "body is not valid JSON"
        )
    else:
        first = text.splitlines()[0] if text else ""
        comps = _k8s(text)
        if comps or first.lower() in ("ok",) or "check passed" in text or "check failed" in text:
            fmt = "kubernetes"
            body_status = (
                "fail" if any(c.status == "fail" for c in comps) or "failed" in text else "pass"
            )
        else:
            fmt = "aspnet-text" if first in ("Healthy", "Degraded", "Unhealthy") else "text"
            body_status = word_status(first)
    if http_fail:
        return HealthReport("fail", fmt, tuple(comps), f"HTTP {status_code}")
    if status_code >= 300 and status_code < 400:
        return HealthReport("unknown", fmt, tuple(comps), f"HTTP {status_code} redirect")
    return HealthReport(body_status, fmt, tuple(comps))
