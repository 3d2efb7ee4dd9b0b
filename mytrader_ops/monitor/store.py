"""The watch store (SQLite): one row per watch, one summary row per window, checkpointed.

Each window is committed in one transaction with the watch's cumulative histograms
(WAL, synchronous=FULL), so a monitor killed with SIGKILL loses at most the window it was
measuring. `--resume` reopens the latest unfinished watch of the same target: same id,
same start time and deadline, every window measured so far. Growth is bounded: a window
is a summary of about a kilobyte and a fixed-size histogram, never raw samples.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mytrader_ops.errors import StoreError
from mytrader_ops.monitor.windows import WindowSummary, from_dict, to_dict
from mytrader_ops.sqlitefile import open_sqlite

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS watches (
        watch_id TEXT PRIMARY KEY,
        target TEXT NOT NULL,
        env_name TEXT NOT NULL,
        phase TEXT NOT NULL,
        interval_s REAL NOT NULL,
        start_s REAL NOT NULL,
        deadline_s REAL NOT NULL,
        settings TEXT NOT NULL,
        status TEXT NOT NULL,
        exit_code INTEGER,
        hist_all TEXT NOT NULL DEFAULT '',
        hist_critical TEXT NOT NULL DEFAULT '',
        updated_s REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS windows (
        watch_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        start_s REAL NOT NULL,
        end_s REAL NOT NULL,
        summary TEXT NOT NULL,
        PRIMARY KEY (watch_id, idx)
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        watch_id TEXT NOT NULL,
        at_s REAL NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
)


def default_monitor_store() -> Path:
    from mytrader_ops.rollback.service import default_state_dir

    return default_state_dir() / "monitor.db"


@dataclass(frozen=True, slots=True)
class WatchRecord:
    watch_id: str
    target: str
    env_name: str
    phase: str
    interval_s: float
    start_s: float
    deadline_s: float
    settings: dict[str, Any]
    status: str
    exit_code: int | None
    hist_all: str
    hist_critical: str


class WatchStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        return open_sqlite(self.path, _SCHEMA, "monitor store", durable=True)

    def create(self, rec: WatchRecord) -> None:
        with closing(self._connect()) as conn, conn:
            conn.execute(
                "INSERT INTO watches VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rec.watch_id,
                    rec.target,
                    rec.env_name,
                    rec.phase,
                    rec.interval_s,
                    rec.start_s,
                    rec.deadline_s,
                    json.dumps(rec.settings),
                    rec.status,
                    rec.exit_code,
                    rec.hist_all,
                    rec.hist_critical,
                    time.time(),
                ),
            )

    def checkpoint(
        self, watch_id: str, window: WindowSummary, hist_all: str, hist_critical: str
    ) -> None:
        """The window and the cumulative histograms, atomically."""
        try:
            with closing(self._connect()) as conn, conn:
                conn.execute(
                    "INSERT OR REPLACE INTO windows VALUES (?,?,?,?,?)",
                    (
                        watch_id,
                        window.index,
                        window.start_s,
                        window.end_s,
                        json.dumps(to_dict(window), separators=(",", ":")),
                    ),
                )
                conn.execute(
                    "UPDATE watches SET hist_all=?, hist_critical=?, updated_s=? WHERE watch_id=?",
                    (hist_all, hist_critical, time.time(), watch_id),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot checkpoint window {window.index}: {exc}") from None

    def event(self, watch_id: str, kind: str, detail: dict[str, Any]) -> None:
        with closing(self._connect()) as conn, conn:
            conn.execute(
                "INSERT INTO events VALUES (?,?,?,?)",
                (watch_id, time.time(), kind, json.dumps(detail)),
            )

    def finish(self, watch_id: str, status: str, exit_code: int) -> None:
        with closing(self._connect()) as conn, conn:
            conn.execute(
                "UPDATE watches SET status=?, exit_code=?, updated_s=? WHERE watch_id=?",
                (status, exit_code, time.time(), watch_id),
            )

    def _record(self, row: tuple[Any, ...]) -> WatchRecord:
        return WatchRecord(
            row[0],
            row[1],
            row[2],
            row[3],
            float(row[4]),
            float(row[5]),
            float(row[6]),
            json.loads(row[7]),
            row[8],
            row[9],
            row[10],
            row[11],
        )

    def latest_running(self, target: str, env_name: str) -> WatchRecord | None:
        with closing(self._connect()) as conn:
            row = conn.execute(
                "SELECT * FROM watches WHERE status='running' AND target=? AND env_name=? "
                "ORDER BY start_s DESC LIMIT 1",
                (target, env_name),
            ).fetchone()
        return self._record(row) if row else None

    def load(self, watch_id: str) -> tuple[WatchRecord, list[WindowSummary]]:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT * FROM watches WHERE watch_id=?", (watch_id,)).fetchone()
            if row is None:
                raise StoreError(f"no watch {watch_id!r} in {self.path}")
            rows = conn.execute(
                "SELECT summary FROM windows WHERE watch_id=? ORDER BY idx", (watch_id,)
            ).fetchall()
        return self._record(row), [from_dict(json.loads(r[0])) for r in rows]

    def windows_since(self, target: str, since_s: float) -> list[WindowSummary]:
        """Every stored window of every watch of `target` that ended after `since_s`."""
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT w.summary FROM windows w JOIN watches x ON x.watch_id = w.watch_id "
                "WHERE x.target = ? AND w.end_s > ? ORDER BY w.end_s",
                (target, since_s),
            ).fetchall()
        return [from_dict(json.loads(r[0])) for r in rows]

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += os.path.getsize(p)
        return total
