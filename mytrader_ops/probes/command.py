"""`kind: command`: a program of the operator's, for what the probes do not cover.

Never a shell: argv as given. A hard timeout on its whole process group (`mytrader_ops.process`),
an environment built from an allowlist, output capped and redacted. Exit 0 passes; a program
that could not start is missing evidence (INCONCLUSIVE), a non-zero exit or a timeout fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re

from mytrader_ops.config import CommandCheck
from mytrader_ops.observation import Observation, StepLog
from mytrader_ops.probes.context import ProbeContext, run_probe
from mytrader_ops.process import run_process

ALWAYS = ("PATH", "HOME", "LANG")
_SECRET_NAME = re.compile(r"(?i)(secret|token|pass|key|credential)")
GRACE_S = 2.0
SHOWN = 300  # characters of output kept in the evidence


def _value(output: str) -> float | None:
    """`{"value": x}` on the last non-empty line of the output, if it is there."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    if not lines:
        return None
    try:
        doc = json.loads(lines[-1])
    except ValueError:
        return None
    value = doc.get("value") if isinstance(doc, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


async def probe_command(ctx: ProbeContext, check: CommandCheck) -> Observation:
    async def body(log: StepLog) -> str | None:
        env = {k: os.environ[k] for k in (*ALWAYS, *check.env) if k in os.environ}
        for name, text in env.items():
            if _SECRET_NAME.search(name):
                ctx.redactor.add(text)
        result = await asyncio.to_thread(
            run_process, check.command, timeout_s=check.timeout_s, grace_s=GRACE_S, env=env
        )
        output = ctx.redactor.redact(result.output)
        tail = output.strip()[-SHOWN:]
        if result.exit_code is None and not result.timed_out:
            log.unknown("run", f"could not start {check.command[0]!r}: {result.error}")
            return None
        if result.timed_out:
            log.fail("run", f"did not finish within {check.timeout_s:g} s: {tail}")
            return None
        if result.exit_code != 0:
            log.fail("run", f"exit code {result.exit_code}: {tail}")
            return None
        log.ok("run", f"exit code 0: {tail}" if tail else "exit code 0")
        if check.max is not None or check.min is not None:
            value = _value(result.output)
            if value is None:
                log.unknown("value", 'no {"value": ...} JSON on the last line of the output')
            else:
                log.values["value"] = value
        return None

    deadline = check.timeout_s + GRACE_S + 1
    return await run_probe(check.id, check.kind, deadline, body, redactor=ctx.redactor)
