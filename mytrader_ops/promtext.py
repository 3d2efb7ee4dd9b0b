"""Pure, strict parsing of the Prometheus text exposition format (enough to gate on it).

Malformed lines are reported with their line number rather than skipped (checklist C15).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(
    rf"^(?P<name>{_NAME})(?:\{{(?P<labels>(?:[^\"}}]|\"(?:[^\"\\]|\\.)*\")*)\}})?"
    rf"\s+(?P<value>\S+)(?:\s+(?P<ts>-?[0-9]+))?$"
)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_TYPES = {
    "counter",
    "gauge",
    "histogram",
    "summary",
    "untyped",
    "info",
    "stateset",
    "gaugehistogram",
    "unknown",
}


@dataclass(frozen=True, slots=True)
class Exposition:
    families: frozenset[str]
    samples: int
    problems: tuple[str, ...]


def _family(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum", "_total", "_created", "_info"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _labels_ok(raw: str) -> bool:
    pos = 0
    raw = raw.strip()
    while pos < len(raw):
        m = _LABEL.match(raw, pos)
        if m is None:
            return False
        pos = m.end()
    return True


def parse(text: str, max_problems: int = 20) -> Exposition:
    families: set[str] = set()
    problems: list[str] = []
    samples = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if len(problems) >= max_problems:
            break
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            parts = stripped.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("TYPE", "HELP"):
                if not re.fullmatch(_NAME, parts[2]):
                    problems.append(f"line {number}: bad metric name in {parts[1]}")
                elif parts[1] == "TYPE" and (len(parts) < 4 or parts[3].strip() not in _TYPES):
                    problems.append(f"line {number}: unknown TYPE")
                else:
                    families.add(parts[2])
            continue
        m = _SAMPLE.match(stripped)
        if m is None:
            problems.append(f"line {number}: not a sample: {stripped[:60]!r}")
            continue
        if m.group("labels") is not None and not _labels_ok(m.group("labels")):
            problems.append(f"line {number}: malformed labels")
            continue
        value = m.group("value")
        try:
            float(value)
        except ValueError:
            if value not in ("NaN", "+Inf", "-Inf"):
                problems.append(f"line {number}: value {value[:20]!r} is not a number")
                continue
        samples += 1
        families.add(m.group("name"))
        families.add(_family(m.group("name")))
    return Exposition(frozenset(families), samples, tuple(problems))
