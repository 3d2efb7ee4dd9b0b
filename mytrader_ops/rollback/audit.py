"""The rollback audit log: append-only JSON lines, flushed and fsynced record by record.

One file per state directory, shared by every environment. Each record is one line:

    {"v": 1, "event": "rollback-start" | "step-start" | "step-end" | "rollback-end" | "note",
     "at": ISO-8601 UTC, "rollback_id": ..., "attempt": n, "env": ..., ...}

A record is written with a single `write` on an `O_APPEND` descriptor and fsynced before
the step it announces starts and after it ends (checklist C8), so a SIGKILL at any point
leaves every completed step on disk. A torn last line (power loss mid-write) is skipped on
reading and reported, never fatal. Every string passes through the redactor first (C4).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mytrader_ops.redaction import Redactor
from mytrader_ops.rollback.errors import RollbackError

SCHEMA_VERSION = 1
MAX_OUTPUT_CHARS = 4000
Event = Literal["rollback-start", "step-start", "step-end", "rollback-end", "note", "page"]
JsonObj = dict[str, object]


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def who() -> dict[str, object]:
    """The operator: OS user, host and process id."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid:{os.getuid()}"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


def truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the head and the tail of long output (the end usually says what failed)."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - limit} characters omitted] ...\n{text[-half:]}"


def _redact_value(value: object, redactor: Redactor) -> object:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v, redactor) for v in value]
    return value


class AuditLog:
    """Appends redacted records to a JSON-lines file, fsyncing each one."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.path = path
        self.redactor = redactor

    def append(self, event: Event, **fields: object) -> JsonObj:
        record: JsonObj = {"v": SCHEMA_VERSION, "event": event, "at": utc_now()}
        record.update(fields)
        safe = _redact_value(record, self.redactor)
        assert isinstance(safe, dict)
        line = json.dumps(safe, ensure_ascii=False, sort_keys=False, default=str) + "\n"
        self._write(line.encode("utf-8"))
        return safe

    def _write(self, data: bytes) -> None:
        created = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            raise RollbackError(f"cannot open audit log {self.path}: {exc.strerror}") from None
        try:
            if not created and _ends_without_newline(self.path):
                data = b"\n" + data  # a torn line from a crash stays separate
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except OSError as exc:
            raise RollbackError(f"cannot write audit log {self.path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)


def _ends_without_newline(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:
        return False


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class LogRead:
    records: tuple[JsonObj, ...]
    bad_lines: tuple[int, ...]  # 1-based numbers of lines that were not valid JSON records


def read_log(path: Path) -> LogRead:
    """Every well-formed record; unparsable (torn) lines are listed, not fatal."""
    records: list[JsonObj] = []
    bad: list[int] = []
    try:
        fh = path.open("r", encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return LogRead((), ())
    except OSError as exc:
        raise RollbackError(f"cannot read audit log {path}: {exc.strerror}") from None
    with fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                bad.append(number)
                continue
            if isinstance(record, dict) and "event" in record:
                records.append(record)
            else:
                bad.append(number)
    return LogRead(tuple(records), tuple(bad))


@dataclass(frozen=True, slots=True)
class PriorState:
    """What the log says about one rollback id: its attempts and how far they got."""

    rollback_id: str
    attempts: int = 0
    completed_steps: frozenset[int] = frozenset()  # step indexes that ended "ok"
    interrupted_step: int | None = None  # started, never ended (crash mid-step)
    finished: bool = False
    finished_ok: bool = False
    finished_at: str | None = None
    to_version: str | None = None
    step_outcomes: dict[int, str] = field(default_factory=dict)


def prior_state(records: tuple[JsonObj, ...], rollback_id: str) -> PriorState:
    """Fold the records of one rollback id (pure)."""
    attempts = 0
    completed: set[int] = set()
    open_steps: set[int] = set()
    outcomes: dict[int, str] = {}
    finished = finished_ok = False
    finished_at: str | None = None
    to_version: str | None = None
    for rec in _of(records, rollback_id):
        event = rec.get("event")
        index = rec.get("step")
        if event == "rollback-start":
            attempts += 1
            finished = finished_ok = False
            open_steps.clear()
            tv = rec.get("to_version")
            to_version = tv if isinstance(tv, str) else None
        elif event == "step-start" and isinstance(index, int):
            open_steps.add(index)
        elif event == "step-end" and isinstance(index, int):
            open_steps.discard(index)
            outcome = str(rec.get("outcome"))
            outcomes[index] = outcome
            ran_optional = rec.get("optional") is True and outcome in ("failed", "timed_out")
            if outcome == "ok" or ran_optional or (outcome == "skipped" and index in completed):
                completed.add(index)
            elif outcome != "skipped":
                completed.discard(index)
        elif event == "rollback-end":
            finished = True
            finished_ok = rec.get("outcome") == "rolled-back"
            at = rec.get("at")
            finished_at = at if isinstance(at, str) else None
            open_steps.clear()
    return PriorState(
        rollback_id=rollback_id,
        attempts=attempts,
        completed_steps=frozenset(completed),
        interrupted_step=min(open_steps) if open_steps else None,
        finished=finished,
        finished_ok=finished_ok,
        finished_at=finished_at,
        to_version=to_version,
        step_outcomes=outcomes,
    )


def _of(records: tuple[JsonObj, ...], rollback_id: str) -> Iterator[JsonObj]:
    return (r for r in records if r.get("rollback_id") == rollback_id)


def latest_rollback_id(records: tuple[JsonObj, ...], env: str) -> str | None:
    """The id of the most recent rollback started for an environment."""
    for rec in reversed(records):
        if rec.get("event") == "rollback-start" and rec.get("env") == env:
            rid = rec.get("rollback_id")
            return rid if isinstance(rid, str) else None
    return None
