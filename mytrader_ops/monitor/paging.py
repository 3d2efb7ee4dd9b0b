"""The monitor's pager: folds each window into the page book (pages.py) and hands the pages
to the background dispatcher (delivery.py); records every delivery in the audit log; turns
the deliveries into the report's `monitor-alert-sinks` check (non-critical: a pager that
failed does not make the deployment worse, but the report says so)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from mytrader_ops.monitor.aggregate import Totals
from mytrader_ops.monitor.coverage import EvidenceFinding
from mytrader_ops.monitor.delivery import AnySink, Delivery, Dispatcher, missing_secret
from mytrader_ops.monitor.pages import PageBook
from mytrader_ops.monitor.settings import MonitorUsageError
from mytrader_ops.monitor.triggers import TriggerStatus
from mytrader_ops.monitor.windows import WindowSummary
from mytrader_ops.redaction import Redactor
from mytrader_ops.report.model import RunReport
from mytrader_ops.verdict import Status, Verdict

CHECK_ID = "monitor-alert-sinks"


class Paging:
    """An Observer of the watch (one call per window) that pages through the sinks."""

    def __init__(
        self,
        book: PageBook,
        dispatcher: Dispatcher | None,
        sink_count: int,
    ) -> None:
        self.book = book
        self.dispatcher = dispatcher
        self.sink_count = sink_count

    @staticmethod
    def check(sinks: Sequence[AnySink], redactor: Redactor) -> None:
        """Refuse (exit 2) a sink whose `${VAR}` is unset; register every secret value."""
        from mytrader_ops.monitor.delivery import secret_value

        for i, sink in enumerate(sinks):
            missing = missing_secret(sink)
            if missing is not None:
                raise MonitorUsageError(f"sinks[{i}] ({sink.kind}): {missing} is unset or empty")
            redactor.add(secret_value(sink))

    @classmethod
    def start(
        cls,
        sinks: Sequence[AnySink],
        redactor: Redactor,
        *,
        watch_id: str,
        env: str,
        target: str,
        runbook_url: str | None,
        rollback: str,
        audit_file: Path,
        rollback_id: str | None,
    ) -> Paging:
        book = PageBook(watch_id, env, target, runbook_url, rollback)
        if not sinks:
            return cls(book, None, 0)
        from mytrader_ops.rollback.audit import AuditLog

        audit = AuditLog(audit_file, redactor)

        def record(d: Delivery) -> None:
            audit.append(
                "page",
                rollback_id=rollback_id,
                attempt=0,
                env=env,
                watch_id=watch_id,
                **d.to_dict(),
            )

        return cls(book, Dispatcher(sinks, redactor, record), len(sinks))

    def window(
        self,
        w: WindowSummary,
        states: Sequence[TriggerStatus],
        totals: Totals,
        evidence: Sequence[EvidenceFinding],
    ) -> None:
        if self.dispatcher is None:
            return
        self.book, pages = self.book.observe(states, time.time())
        self.dispatcher.submit(pages)

    def rollback_ended(self, verified: bool, message: str) -> None:
        self.book, pages = self.book.rollback_ended(verified, message, time.time())
        if self.dispatcher is not None:
            self.dispatcher.submit(pages)

    def close(self, deadline_s: float) -> list[Delivery]:
        if self.dispatcher is None:
            return []
        return self.dispatcher.close(deadline_s)

    def verdict(self, deliveries: Sequence[Delivery]) -> Verdict:
        failed = [d for d in deliveries if not d.ok]
        sent = [d for d in deliveries if d.ok]
        lines = tuple(
            f"{d.sink} {d.action} {d.trigger}: {'ok' if d.ok else 'FAILED'} after "
            f"{d.attempts} attempt(s): {d.detail}"
            for d in deliveries
        )
        if failed:
            status, summary = (
                Status.FAIL,
                f"{len(failed)} of {len(deliveries)} page deliveries failed "
                f"({', '.join(sorted({d.sink for d in failed}))}); see the audit log",
            )
        elif sent:
            status, summary = Status.PASS, f"{len(sent)} page deliveries, all accepted"
        else:
            status, summary = Status.PASS, f"no page was due ({self.sink_count} sink(s) ready)"
        return Verdict(
            CHECK_ID,
            "Alert sinks delivered every page",
            status,
            summary,
            critical=False,
            component="backend",
            criterion="On-call is paged when a trigger fires, and the page resolves",
            evidence=lines[-20:],
        )


def notify_validate(
    sinks: Sequence[AnySink],
    report: RunReport,
    redactor: Redactor,
    runbook_url: str | None,
    deadline_s: float = 30.0,
) -> list[Delivery]:
    """`validate --notify`: one page per environment, triggered by NO-GO or INCONCLUSIVE and
    resolved by GO (pages.py); waits for the deliveries at most `deadline_s`."""
    from mytrader_ops.monitor.pages import EvidenceLine, validate_page
    from mytrader_ops.report.model import status_counts

    failing = [
        EvidenceLine(f"{v.check_id} {v.status.value}: {v.observed}")
        for v in report.in_scope()
        if v.critical and v.status in (Status.FAIL, Status.INCONCLUSIVE)
    ]
    page = validate_page(
        env=report.env_name,
        target=report.backend,
        decision=report.decision.value,
        exit_code=report.exit_code,
        summary=f"{report.decision.value}: {status_counts(report)} (run {report.run_id})",
        failing=failing[:10],
        run_id=report.run_id,
        now_s=time.time(),
        runbook=f"{runbook_url.rstrip('/')}/README.md" if runbook_url else "",
    )
    dispatcher = Dispatcher(sinks, redactor)
    dispatcher.submit([page])
    return dispatcher.close(deadline_s)
