"""Pure: the numeric values the monitor needs out of a Prometheus text exposition.

`promtext` (validate) judges the format; this module only sums the samples of a few names.
A name that is absent is `None` (not measured), never zero.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")

RSS = "process_resident_memory_bytes"
CPU = "process_cpu_seconds_total"
DB_SUM = "mytrader_db_query_duration_seconds_sum"
DB_COUNT = "mytrader_db_query_duration_seconds_count"
FEED_LAG = "mytrader_feed_lag_seconds"
HUB_CONNECTIONS = "mytrader_hub_connections"
WANTED = frozenset({RSS, CPU, DB_SUM, DB_COUNT, FEED_LAG, HUB_CONNECTIONS})


def sum_samples(text: str, names: frozenset[str] = WANTED) -> dict[str, float]:
    """Sum of every sample of each wanted name (over all label sets); absent names omitted."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None or m.group(1) not in names:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        if math.isfinite(value):
            out[m.group(1)] = out.get(m.group(1), 0.0) + value
    return out


@dataclass(frozen=True, slots=True)
class Scrape:
    """One /metrics scrape, reduced to what the windows keep."""

    rss_bytes: float | None
    cpu_seconds: float | None
    db_sum_s: float | None
    db_count: float | None
    feed_lag_s: float | None
    hub_connections: float | None


def reduce_scrape(text: str) -> Scrape:
    v = sum_samples(text)
    return Scrape(
        v.get(RSS),
        v.get(CPU),
        v.get(DB_SUM),
        v.get(DB_COUNT),
        v.get(FEED_LAG),
        v.get(HUB_CONNECTIONS),
    )


def db_mean_ms(prev: Scrape | None, cur: Scrape) -> float | None:
    """Mean database round trip between two scrapes (histogram sum/count deltas), in ms."""
    if prev is None or None in (prev.db_sum_s, prev.db_count, cur.db_sum_s, cur.db_count):
        return None
    assert prev.db_sum_s is not None
    assert prev.db_count is not None
    assert cur.db_sum_s is not None
    assert cur.db_count is not None
    dn = cur.db_count - prev.db_count
    if dn <= 0:
        return None
    return (cur.db_sum_s - prev.db_sum_s) / dn * 1000
