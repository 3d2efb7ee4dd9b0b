"""The package's exception tree; each error knows the CLI exit code it maps to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_GO = 0
EXIT_NO_GO = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3


class OpsError(Exception):
    """Root of mytrader-ops errors: operator mistakes, never target health."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One configuration problem, located by file, line and key path."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class ConfigError(OpsError):
    """The configuration cannot be used; carries every problem found."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreError(OpsError):
    """The run store cannot be read or written, or a run id is unknown."""
