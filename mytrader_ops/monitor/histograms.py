"""Cumulative latency over a whole watch: validate's fixed-size HDR histogram, merged window by
window and checkpointed in its compact encoding (a few hundred bytes, whatever the count).

`LatencyHistogram` has no public merge/encode yet; this adapter is the one place that reaches
into it (asked of its owner: `LatencyHistogram.merge()` / `.encode()` / `.decode()`).
"""

from __future__ import annotations

from mytrader_ops.stats import LatencyHistogram


def merge_into(target: LatencyHistogram, source: LatencyHistogram) -> None:
    if source.count:
        target._h.add(source._h)


def encode(hist: LatencyHistogram) -> str:
    return hist._h.encode().decode("ascii") if hist.count else ""


def decode(text: str) -> LatencyHistogram:
    hist = LatencyHistogram()
    if text:
        hist._h.decode_and_add(text.encode("ascii"))
    return hist
