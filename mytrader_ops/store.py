"""Run history in SQLite: every validate run is stored as its (redacted) report.json document."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from mytrader_ops.errors import StoreError
from mytrader_ops.report.model import RunReport, dumps, from_json
from mytrader_ops.sqlitefile import open_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    env_name TEXT NOT NULL,
    backend TEXT NOT NULL,
    decision TEXT NOT NULL,
    document TEXT NOT NULL
)
"""


def default_store() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mytrader-ops" / "runs.db"


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class RunStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        return open_sqlite(self.path, [_SCHEMA], "run store")

    def save(self, report: RunReport) -> None:
        with closing(self._connect()) as conn, conn:
            conn.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                (
                    report.run_id,
                    report.started_at,
                    report.env_name,
                    report.backend,
                    report.decision.value,
                    dumps(report),
                ),
            )

    def load(self, run_id: str) -> RunReport:
        """A run by id, unique id prefix, or `latest`."""
        with closing(self._connect()) as conn:
            if run_id == "latest":
                rows = conn.execute(
                    "SELECT document FROM runs ORDER BY started_at DESC LIMIT 1"
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT document FROM runs WHERE run_id = ? OR run_id LIKE ? ESCAPE '\\' "
                    "LIMIT 2",
                    (run_id, _like_prefix(run_id)),
                ).fetchall()
        if not rows:
            raise StoreError(f"no stored run {run_id!r} in {self.path}")
        if len(rows) > 1:
            raise StoreError(f"run id prefix {run_id!r} is ambiguous")
        try:
            return from_json(json.loads(rows[0][0]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"stored run {run_id!r} is unreadable: {exc}") from None

    def latest_go(self, env_name: str, backend: str, before: str | None = None) -> RunReport:
        """The newest run of this environment and backend that was GO (known issues or not);
        with `before` (a run id), the newest GO that started before that run."""
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT document FROM runs WHERE env_name = ? AND backend = ? "
                "AND decision IN ('GO', 'GO WITH KNOWN ISSUES') AND run_id != ? "
                "AND started_at <= COALESCE((SELECT started_at FROM runs WHERE run_id = ?), "
                "'9999') ORDER BY started_at DESC LIMIT 1",
                (env_name, backend, before or "", before or ""),
            ).fetchall()
        if not rows:
            raise StoreError(
                f"no GO run of {env_name!r} ({backend}) in {self.path} to use as the baseline"
            )
        try:
            return from_json(json.loads(rows[0][0]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"the latest GO run is unreadable: {exc}") from None

    def list(self, limit: int = 20) -> list[tuple[str, str, str, str]]:
        with closing(self._connect()) as conn:
            return [
                (r[0], r[1], r[2], r[3])
                for r in conn.execute(
                    "SELECT run_id, started_at, env_name, decision FROM runs "
                    "ORDER BY started_at DESC LIMIT ?",
                    (limit,),
                )
            ]
