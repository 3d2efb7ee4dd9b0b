"""Paging rules: which page events a watch (or a validate run) sends, and when. Pure.

The rules, for every paging sink (alertmanager, pagerduty, opsgenie, slack):

- A trigger reaches `firing` and has not been paged in this watch: one `trigger` page, keyed
  `mytrader-ops/<watch>/<trigger>`.
- The same trigger keeps firing, window after window: no new page. Alertmanager alone gets a
  `refresh`, which is not a page (its client contract is to re-send active alerts).
- A paged trigger clears (its next judged window is `ok`; with `on_fire: keep-watching`):
  `resolve`, "the trigger cleared".
- The automatic rollback is verified: `resolve` of every open page.
- The automatic rollback failed or found the lock held: `update` (the page stays open; Slack,
  Opsgenie's notes, Alertmanager's annotations and the webhook/command sinks say so).
- A trigger that fires again after its page was resolved: no second page in the same watch
  (one page per trigger per watch: a flapping signal does not page twice).
- A `pending` window (no evidence): nothing. Missing data neither pages nor resolves.

For `validate --notify`, one page per environment (`mytrader-ops/validate/<env>`): NO-GO and
INCONCLUSIVE `trigger` it, GO (with or without known issues) `resolve`s it, so the next good
run closes the page the bad one opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from mytrader_ops.monitor.triggers import TriggerStatus

Action = Literal["trigger", "refresh", "update", "resolve"]
Origin = Literal["monitor", "validate"]


@dataclass(frozen=True, slots=True)
class EvidenceLine:
    """One measured value against its threshold (the latest windows of a trigger)."""

    text: str
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One event for the paging sinks; the sinks render it in their own payload shape."""

    key: str  # dedup key / alias / alertname grouping: one per watch and trigger
    action: Action
    origin: Origin
    watch_id: str
    env: str
    target: str
    trigger: str
    summary: str
    started_at_s: float
    at_s: float
    evidence: tuple[EvidenceLine, ...] = ()
    runbook: str = ""
    rollback: str = "not configured"  # the rollback's state, as a sentence
    decision: str = "FIRING"  # FIRING, RESOLVED, or validate's decision
    reason: str = ""  # why it resolved or was updated


def page_key(origin: Origin, scope: str, trigger: str) -> str:
    return f"mytrader-ops/{scope}/{trigger}" if origin == "monitor" else f"mytrader-ops/{scope}"


def evidence_lines(status: TriggerStatus, limit: int = 3) -> tuple[EvidenceLine, ...]:
    """The trigger's latest judged windows, newest last: value vs threshold."""
    judged = [e for e in status.evidence if e.verdict != "no-data"][-limit:]
    return tuple(
        EvidenceLine(
            f"{e.note} (n={e.samples})" if e.samples is not None else e.note,
            e.value,
            e.threshold,
        )
        for e in judged
    )


def runbook_link(base: str | None, trigger: str) -> str:
    name = f"rollback-{trigger}.md"
    return f"{base.rstrip('/')}/{name}" if base else f"runbooks/{name}"


@dataclass(frozen=True, slots=True)
class OpenPage:
    page: Page
    last_sent_s: float


@dataclass(frozen=True, slots=True)
class PageBook:
    """What has been paged in one watch: open pages, and every trigger ever paged."""

    watch_id: str
    env: str
    target: str
    runbook_url: str | None = None
    rollback: str = "not configured"
    open: dict[str, OpenPage] = field(default_factory=dict)
    paged: frozenset[str] = frozenset()

    def observe(self, states: Sequence[TriggerStatus], now_s: float) -> tuple[PageBook, list[Page]]:
        """Fold one window's trigger states: new pages, refreshes, and resolutions."""
        out: list[Page] = []
        open_ = dict(self.open)
        paged = set(self.paged)
        for st in states:
            if st.state == "firing" and st.trigger_id not in paged:
                page = Page(
                    key=page_key("monitor", self.watch_id, st.trigger_id),
                    action="trigger",
                    origin="monitor",
                    watch_id=self.watch_id,
                    env=self.env,
                    target=self.target,
                    trigger=st.trigger_id,
                    summary=st.summary,
                    started_at_s=now_s,
                    at_s=now_s,
                    evidence=evidence_lines(st),
                    runbook=runbook_link(self.runbook_url, st.trigger_id),
                    rollback=self.rollback,
                )
                open_[st.trigger_id] = OpenPage(page, now_s)
                paged.add(st.trigger_id)
                out.append(page)
            elif st.trigger_id in open_ and st.state == "ok":
                page = open_.pop(st.trigger_id).page
                out.append(
                    replace(
                        page,
                        action="resolve",
                        at_s=now_s,
                        summary=st.summary,
                        decision="RESOLVED",
                        reason="the trigger cleared",
                        evidence=evidence_lines(st),
                    )
                )
            elif st.trigger_id in open_:
                held = open_[st.trigger_id]
                page = replace(held.page, action="refresh", at_s=now_s, summary=st.summary)
                open_[st.trigger_id] = OpenPage(page, now_s)
                out.append(page)
        return replace(self, open=open_, paged=frozenset(paged)), out

    def with_rollback(self, state: str) -> PageBook:
        """Open pages (and later ones) carry the rollback's state from now on."""
        open_ = {
            k: OpenPage(replace(o.page, rollback=state), o.last_sent_s)
            for k, o in self.open.items()
        }
        return replace(self, rollback=state, open=open_)

    def rollback_ended(
        self, verified: bool, message: str, now_s: float
    ) -> tuple[PageBook, list[Page]]:
        """Resolve every open page once the rollback is verified; otherwise say it failed."""
        state = "rolled back and verified" if verified else f"rollback FAILED: {message}"
        book = self.with_rollback(state)
        if verified:
            pages = [
                replace(o.page, action="resolve", at_s=now_s, decision="RESOLVED", reason=state)
                for o in book.open.values()
            ]
            return replace(book, open={}), pages
        pages = [
            replace(o.page, action="update", at_s=now_s, reason=state) for o in book.open.values()
        ]
        return book, pages


def validate_page(
    *,
    env: str,
    target: str,
    decision: str,
    exit_code: int,
    summary: str,
    failing: Sequence[EvidenceLine],
    run_id: str,
    now_s: float,
    runbook: str = "",
) -> Page:
    """One page for a validate result: `trigger` on NO-GO or INCONCLUSIVE, `resolve` on GO."""
    good = exit_code == 0
    return Page(
        key=page_key("validate", f"validate/{env}", "gate"),
        action="resolve" if good else "trigger",
        origin="validate",
        watch_id=run_id,
        env=env,
        target=target,
        trigger="release-gate",
        summary=summary,
        started_at_s=now_s,
        at_s=now_s,
        evidence=tuple(failing),
        runbook=runbook,
        rollback="",
        decision=decision,
        reason="validate decided " + decision if good else "",
    )
