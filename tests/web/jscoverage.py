"""The web app's JavaScript coverage, measured by the browser that runs the tests.

Chromium's own V8 block coverage through the DevTools protocol (``Profiler.startPreciseCoverage``
when a browser opens, ``Profiler.takePreciseCoverage`` before it closes): no instrumentation,
no bundler, no npm package, the shipped files exactly as served. Every browser session's
coverage is merged per file; a script whose document was navigated away from before the
session ended may be missing from V8's report, so the figures are a lower bound.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

STATIC = Path(__file__).resolve().parents[2] / "mytrader_server" / "web" / "static"

_covered: dict[str, bytearray] = {}  # file under static/js -> 1 per character run at least once


def start(driver: Any) -> None:
    driver.execute_cdp_cmd("Profiler.enable", {})
    driver.execute_cdp_cmd("Profiler.startPreciseCoverage", {"callCount": True, "detailed": True})


def collect(driver: Any) -> None:
    """Merge what the session ran into the totals; never fails the test that owns the driver."""
    try:
        scripts = driver.execute_cdp_cmd("Profiler.takePreciseCoverage", {})["result"]
    except Exception:  # a crashed or closed browser has nothing to give
        return
    for script in scripts:
        path = urlsplit(script.get("url", "")).path
        if not path.startswith("/js/") or not path.endswith(".js"):
            continue
        source = STATIC / path.lstrip("/")
        if not source.is_file():
            continue
        merge(path.removeprefix("/js/"), source.read_text("utf-8"), script["functions"])


def merge(name: str, text: str, functions: list[dict[str, Any]]) -> None:
    """Fold V8 ranges into per-character flags: enclosing ranges first, nested ones override."""
    counts = [0] * len(text)
    ranges = [r for f in functions for r in f["ranges"]]
    for r in sorted(ranges, key=lambda r: (r["startOffset"], -r["endOffset"])):
        start, end = r["startOffset"], min(r["endOffset"], len(text))
        counts[start:end] = [r["count"]] * max(0, end - start)
    flags = _covered.setdefault(name, bytearray(len(text)))
    for i, count in enumerate(counts):
        if count:
            flags[i] = 1


def summary() -> dict[str, float]:
    """Share of each file's non-blank characters that ran, and the total under ``"*"``."""
    out: dict[str, float] = {}
    total_run = total = 0
    for js in sorted((STATIC / "js").glob("*.js")):
        text = js.read_text("utf-8")
        flags = _covered.get(js.name, bytearray(len(text)))
        code = [i for i, ch in enumerate(text) if not ch.isspace()]
        ran = sum(1 for i in code if i < len(flags) and flags[i])
        out[js.name] = ran / len(code) if code else 1.0
        total_run, total = total_run + ran, total + len(code)
    out["*"] = total_run / total if total else 0.0
    return out


def measured() -> bool:
    return bool(_covered)


def write(path: Path) -> dict[str, float]:
    figures = summary()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: round(v, 4) for k, v in figures.items()}, indent=2) + "\n")
    return figures
