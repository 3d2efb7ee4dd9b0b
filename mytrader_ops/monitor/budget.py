"""The monitor's stored windows as an SLO's events, for validate's error-budget gate.

Every window of every watch of the target that ended inside the SLO window counts once
(windows the monitor missed carry no figure and count nothing: the gate then sees fewer
events, never invented good ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mytrader_ops.config import Slo
from mytrader_ops.errorbudget import Events
from mytrader_ops.monitor.rules import to_window
from mytrader_ops.monitor.store import WatchStore


class StoredWindows:
    """`validate.budget.BudgetSource` over a monitor store (read-only)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return f"the monitor's windows in {self.path}"

    def events(self, target: str, slo: Slo, since_s: float) -> Sequence[Events]:
        if not self.path.exists():
            return []
        out = []
        for summary in WatchStore(self.path).windows_since(target, since_s):
            ev = to_window(summary).events(slo.signal, slo.threshold_ms)
            if ev is not None:
                out.append(ev)
        return out
