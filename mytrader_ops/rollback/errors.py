"""Errors of the rollback package, under one root.

    OpsError (mytrader_ops.errors, exit 2)
     └── RollbackError                exit 4: the rollback could not be completed
          ├── LockedError             exit 5: another rollback holds this environment's lock
          └── ResumeConflict          exit 4: the audit log forbids continuing safely
    ConfigError (mytrader_ops.errors) exit 2: the plan file is invalid (file, line, key path)
    RollbackUsageError                exit 2: an option the plan cannot run with

A failed *step* is not an exception: it is an outcome recorded in the audit log.
"""

from __future__ import annotations

from mytrader_ops.errors import EXIT_USAGE, OpsError

EXIT_ROLLED_BACK = 0
EXIT_ROLLBACK_FAILED = 4
EXIT_LOCKED = 5


class RollbackError(OpsError):
    """The rollback could not be carried out (exit code 4)."""

    exit_code = EXIT_ROLLBACK_FAILED


class LockedError(RollbackError):
    """Another rollback of the same environment is running (exit code 5)."""

    exit_code = EXIT_LOCKED


class ResumeConflict(RollbackError):
    """The audit log shows a state that cannot be continued automatically."""


class RollbackUsageError(OpsError):
    """A missing or bad option, e.g. `--to` for a plan that needs a version (exit code 2)."""

    exit_code = EXIT_USAGE
