"""The shared process runner, as the rollback steps know it (see `mytrader_ops.process`)."""

from __future__ import annotations

from mytrader_ops.process import (
    READ_LIMIT,
    ProcessResult,
    group_alive,
    pid_alive,
    run_process,
    terminate_group,
)

__all__ = [
    "READ_LIMIT",
    "ProcessResult",
    "group_alive",
    "pid_alive",
    "run_process",
    "terminate_group",
]
