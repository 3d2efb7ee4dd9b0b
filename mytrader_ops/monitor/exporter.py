"""Optional Prometheus endpoint (`--metrics-port`) for the monitor's own figures: the latest
window's error rate and p95, every trigger's state and evidence coverage, windows measured,
the monitor's own CPU.

It uses its own registry (never the process-global one) and binds to 127.0.0.1 by default.
"""

from __future__ import annotations

from collections.abc import Sequence

from mytrader_ops.monitor.aggregate import Totals
from mytrader_ops.monitor.coverage import EvidenceFinding
from mytrader_ops.monitor.triggers import TriggerStatus
from mytrader_ops.monitor.windows import WindowSummary

STATE_VALUE = {"ok": 0, "pending": 1, "firing": 2}


class Exporter:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.windows = Counter(
            "mytrader_monitor_windows", "Windows evaluated (missing ones too).", registry=r
        )
        self.error_rate = Gauge(
            "mytrader_monitor_error_rate", "Error share in the latest window.", registry=r
        )
        self.p95 = Gauge(
            "mytrader_monitor_latency_p95_seconds", "API p95 in the latest window.", registry=r
        )
        self.trigger = Gauge(
            "mytrader_monitor_trigger_state",
            "Trigger state: 0 ok, 1 pending (incl. no evidence), 2 firing.",
            ["trigger"],
            registry=r,
        )
        self.coverage = Gauge(
            "mytrader_monitor_trigger_evidence_coverage",
            "Share of the windows watched so far with evidence for the trigger (0..1).",
            ["trigger"],
            registry=r,
        )
        self.cpu = Gauge(
            "mytrader_monitor_cpu_seconds", "CPU the monitor spent on the watch.", registry=r
        )
        self.server, self.thread = start_http_server(port, addr=host, registry=r)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def window(
        self,
        w: WindowSummary,
        states: Sequence[TriggerStatus],
        totals: Totals,
        evidence: Sequence[EvidenceFinding],
    ) -> None:
        self.windows.inc()
        if w.error_rate is not None:
            self.error_rate.set(w.error_rate)
        if w.p95_ms is not None:
            self.p95.set(w.p95_ms / 1000)
        for s in states:
            self.trigger.labels(s.trigger_id).set(STATE_VALUE[s.state])
        for f in evidence:
            if f.coverage.share is not None:
                self.coverage.labels(f.trigger_id).set(f.coverage.share)
        self.cpu.set(totals.monitor_cpu_s)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
