"""Opening the tool's own SQLite files (run store, monitor store) the same way everywhere."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from mytrader_ops.errors import StoreError


def open_sqlite(
    path: Path, schema: Iterable[str], what: str, durable: bool = False
) -> sqlite3.Connection:
    """Create the folder and the schema if needed; ``durable`` adds WAL with fsynced commits.

    Any failure is a StoreError naming ``what`` and the path, never a raw sqlite3 error.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10)
        if durable:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        for ddl in schema:
            conn.execute(ddl)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open {what} {path}: {exc}") from None
    return conn
