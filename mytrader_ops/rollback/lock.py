"""One rollback per environment at a time: a non-blocking `flock` on a per-environment file.

The kernel releases an flock when its holder exits, however it exits (SIGKILL included),
so a crashed rollback never leaves a stale lock behind. The holder writes who it is
(pid, user, host, start time, rollback id) into the file so a second rollback can say
who holds it (checklist C7) before exiting with code 5.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import time
from pathlib import Path
from types import TracebackType

from mytrader_ops.rollback.errors import LockedError, RollbackError
from mytrader_ops.rollback.process import pid_alive

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def lock_path(state_dir: Path, env: str) -> Path:
    return state_dir / "locks" / f"{_SAFE.sub('_', env)}.lock"


def processes_holding(path: Path) -> list[str]:
    """`pid (command)` of local processes with the file open (Linux /proc; else empty)."""
    target = str(path.resolve())
    found: list[str] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                    found.append(f"{entry.name} ({cmd.decode('utf-8', 'replace')[:120]})")
                    break
            except OSError:
                continue
    return found


def describe_holder(raw: str, path: Path | None = None) -> str:
    try:
        info = json.loads(raw)
    except ValueError:
        return "another process (no holder details)"
    if not isinstance(info, dict):
        return "another process (no holder details)"
    text = (
        f"pid {info.get('pid')} by {info.get('user')}@{info.get('host')} since "
        f"{info.get('started_at')} (rollback {info.get('rollback_id')}, "
        f"plan {info.get('plan')})"
    )
    if info.get("host") == socket.gethostname() and not pid_alive(info.get("pid")):
        holders = processes_holding(path) if path is not None else []
        text += (
            "; that process is gone, but a step it started is still running and holds the "
            "lock" + (f" (pid {', '.join(holders)})" if holders else "") + ": wait for it "
            "to finish (or end it), then re-run to resume"
        )
    return text


HOLDER_WAIT_S = 1.0


def _holder_details(fd: int) -> str:
    """The holder's details. A holder writes them just after taking the lock, so a second
    rollback racing it may find the file still empty: wait briefly for them to appear."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        raw = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        try:
            json.loads(raw)
            return raw
        except ValueError:
            if time.monotonic() >= deadline:
                return raw
        time.sleep(0.02)


class EnvironmentLock:
    """Context manager: hold the environment's lock or raise LockedError at once."""

    def __init__(self, state_dir: Path, env: str, holder: dict[str, object]) -> None:
        self.path = lock_path(state_dir, env)
        self.env = env
        self.holder = holder
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as exc:
            raise RollbackError(f"cannot open lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raw = _holder_details(fd)
            os.close(fd)
            raise LockedError(
                f"another rollback of {self.env!r} is running: {describe_holder(raw, self.path)}; "
                f"lock file {self.path}"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise RollbackError(f"cannot lock {self.path}: {exc.strerror}") from None
        data = json.dumps(self.holder, default=str).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        self._fd = fd

    @property
    def inheritable_fds(self) -> tuple[int, ...]:
        """The lock's descriptor, for step processes to inherit (see `process`)."""
        return (self._fd,) if self._fd is not None else ()

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # no stale holder details once released
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing releases the flock
        self._fd = None

    def __enter__(self) -> EnvironmentLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
