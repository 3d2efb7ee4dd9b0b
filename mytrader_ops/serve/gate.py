"""One gate request, from names to an answer. No HTTP here (app.py), so it is testable alone.

| situation | POST /gate (Flagger) | GET /gate (Argo Rollouts) |
|---|---|---|
| GO, GO WITH KNOWN ISSUES | 200 | 200 |
| NO-GO | 412 | 200 (`decision` says NO-GO) |
| INCONCLUSIVE, or the deadline passed (no verdict) | 503 | 200 (`decision` INCONCLUSIVE) |
| unknown environment or suite, bad payload | 400 | 400 |
| `max_concurrent` running and `max_queued` waiting | 429 + Retry-After | 429 + Retry-After |

Every answer with a decision has the same body: `decision`, `exit_code` (validate's), `env`,
`suite`, `target` (from the config), `run_id`, `summary`, `elapsed_s`, and `checks` (every
check in scope: id, status, what was observed against its threshold): the key figures.
Answers are built from the redacted report, then redacted again as a whole value.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mytrader_ops.errors import OpsError
from mytrader_ops.redaction import Redactor
from mytrader_ops.serve.settings import GateSettings

Caller = Literal["flagger", "argo"]
JsonDoc = dict[str, object]


@dataclass(frozen=True, slots=True)
class GateAnswer:
    status: int
    body: JsonDoc
    retry_after_s: int | None = None


def _problem(status: int, message: str, redactor: Redactor) -> GateAnswer:
    return GateAnswer(status, {"error": redactor.redact(message)})


def decision_status(decision: str, caller: Caller) -> int:
    if caller == "argo":
        return 200
    return {"GO": 200, "GO WITH KNOWN ISSUES": 200, "NO-GO": 412}.get(decision, 503)


class Gate:
    """Holds the bounded concurrency; `answer` never raises for a caller's request."""

    def __init__(self, settings: GateSettings, redactor: Redactor) -> None:
        self.settings = settings
        self.redactor = redactor
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._waiting = 0
        self._store_lock = threading.Lock()

    def pick(self, env: str | None, suite: str | None) -> tuple[str, str] | str:
        """(env, suite) from the config, or the reason a name is refused."""
        s = self.settings
        suite = suite or s.default_suite
        if suite not in s.suites:
            return f"unknown suite {suite!r}; this gate serves: {', '.join(sorted(s.suites))}"
        config = s.configs[suite]
        env = env or config.default_env
        if env is None:
            return f"no environment given and suite {suite!r} has no default_env"
        if env not in config.environments:
            known = ", ".join(sorted(config.environments))
            return f"unknown environment {env!r} for suite {suite!r}; known: {known}"
        return env, suite

    async def answer(self, env: str | None, suite: str | None, caller: Caller) -> GateAnswer:
        picked = self.pick(env, suite)
        if isinstance(picked, str):
            return _problem(400, picked, self.redactor)
        env_name, suite_name = picked
        busy = self._slots.locked() and self._waiting >= self.settings.max_queued
        if busy:
            return GateAnswer(
                429,
                {"error": f"busy: {self.settings.max_concurrent} validation(s) running and "
                 f"{self._waiting} waiting; retry later"},
                retry_after_s=10,
            )  # fmt: skip
        t0 = time.monotonic()
        deadline = self.settings.deadline_s
        self._waiting += 1
        try:
            async with asyncio.timeout(deadline):
                await self._slots.acquire()
        except TimeoutError:
            return self._no_verdict(env_name, suite_name, t0, "waiting for a slot", caller)
        finally:
            self._waiting -= 1
        try:
            left = deadline - (time.monotonic() - t0)
            body = await asyncio.to_thread(self._run, env_name, suite_name, left)
        finally:
            self._slots.release()
        if body is None:
            return self._no_verdict(env_name, suite_name, t0, "validating", caller)
        return GateAnswer(decision_status(str(body["decision"]), caller), body)

    def _no_verdict(
        self, env: str, suite: str, t0: float, during: str, caller: Caller
    ) -> GateAnswer:
        body: JsonDoc = {
            "decision": "INCONCLUSIVE",
            "exit_code": 3,
            "env": env,
            "suite": suite,
            "run_id": None,
            "summary": f"no verdict: the gate's deadline of {self.settings.deadline_s:g} s "
            f"passed while {during}",
            "elapsed_s": round(time.monotonic() - t0, 3),
            "checks": [],
        }
        return GateAnswer(decision_status("INCONCLUSIVE", caller), body)

    def _run(self, env: str, suite: str, budget_s: float) -> JsonDoc | None:
        """In a worker thread, with its own event loop: a validate run within `budget_s`."""
        from mytrader_ops.report.model import status_counts
        from mytrader_ops.validate.plan import build_plan
        from mytrader_ops.validate.runner import execute

        redactor = Redactor()
        try:
            plan = build_plan(
                config_file=self.settings.suites[suite],
                env_name=env,
                target=None,
                frontend=None,
                duration_s=None,
                rate=None,
            )
        except OpsError as exc:  # e.g. a credential variable unset since start-up
            return {
                "decision": "INCONCLUSIVE", "exit_code": 3, "env": env, "suite": suite,
                "run_id": None, "summary": redactor.redact(f"cannot run: {exc}"),
                "elapsed_s": 0.0, "checks": [],
            }  # fmt: skip

        async def bounded() -> object:
            async with asyncio.timeout(max(0.1, budget_s)):
                return await execute(plan, redactor)

        try:
            report = asyncio.run(bounded())
        except TimeoutError:
            return None
        from mytrader_ops.report.model import RunReport

        assert isinstance(report, RunReport)
        self._keep(report, redactor)
        checks = [
            {"id": v.check_id, "status": v.status.value, "critical": v.critical,
             "observed": v.observed}
            for v in report.in_scope()
        ]  # fmt: skip
        body: JsonDoc = {
            "decision": report.decision.value,
            "exit_code": report.exit_code,
            "env": env,
            "suite": suite,
            "target": report.backend,
            "run_id": report.run_id,
            "summary": status_counts(report),
            "elapsed_s": report.elapsed_s,
            "checks": checks,
        }
        self.redactor.add_secret(plan.environment.credentials.password)
        return body

    def _keep(self, report: object, redactor: Redactor) -> None:
        from mytrader_ops.report.files import write_reports
        from mytrader_ops.report.model import RunReport
        from mytrader_ops.store import RunStore, default_store

        assert isinstance(report, RunReport)
        with self._store_lock:
            RunStore(self.settings.store or default_store()).save(report)
            if self.settings.report_root is not None:
                write_reports(report, Path(self.settings.report_root) / report.run_id, redactor)
