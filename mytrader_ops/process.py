"""Run one program in its own session and make sure nothing of it outlives it (shared by
rollback steps, alert-sink commands and validate's command checks).

`subprocess.run(timeout=...)` kills only the direct child: a grandchild (a shell's
background job, a wrapper's worker) keeps running and may hold the output pipe open
(checklist C6). Here every step starts in a new session, so its whole tree shares one
process group; on timeout the group gets SIGTERM, then SIGKILL after a grace period,
and any process the step left behind after exiting is ended the same way. Output goes
to a temporary file, so a grandchild holding it open cannot stall the runner.

The environment lock's descriptor is passed down (`pass_fds`): if the rollback process
itself is SIGKILLed mid-step, the lock stays held until the orphaned step has finished,
so a re-run cannot race a step that is still running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

READ_LIMIT = 256 * 1024
_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class ProcessResult:
    exit_code: int | None  # None when the program could not be started
    timed_out: bool
    output: str
    leftovers_killed: bool  # the step left processes behind that had to be ended
    error: str | None = None  # why it could not be started


def pid_alive(pid: object) -> bool:
    """True while process ``pid`` exists and is not a zombie (a zombie holds no resources)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        text = stat.read_text()  # pid (comm) state ...; comm may contain ")"
        return text[text.rfind(")") + 2 :].split()[0] not in ("Z", "X")
    return True


def group_alive(pgid: int) -> bool:
    """True while a non-zombie process is in the group (zombies hold no resources)."""
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def terminate_group(proc: subprocess.Popen[bytes], pgid: int, grace_s: float) -> None:
    """SIGTERM the whole group, wait up to `grace_s` for it to go, then SIGKILL it."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc.poll() is not None and not group_alive(pgid):
            break
        time.sleep(_POLL_S)
    else:
        _signal_group(pgid, signal.SIGKILL)
    if proc.poll() is None:
        _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored
        proc.wait(timeout=max(grace_s, 5.0))
    if group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)


def _read_output(fh: tempfile._TemporaryFileWrapper[bytes]) -> str:
    fh.flush()
    size = os.fstat(fh.fileno()).st_size
    if size <= READ_LIMIT:
        fh.seek(0)
        data = fh.read()
    else:  # keep the head and the tail
        fh.seek(0)
        head = fh.read(READ_LIMIT // 2)
        fh.seek(size - READ_LIMIT // 2)
        data = head + f"\n... [{size - READ_LIMIT} bytes omitted] ...\n".encode() + fh.read()
    return data.decode("utf-8", "replace")


def run_process(
    argv: Sequence[str],
    *,
    timeout_s: float,
    grace_s: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    pass_fds: Sequence[int] = (),
) -> ProcessResult:
    """Run argv (no shell) in a new session with a hard timeout on its whole process group."""
    with tempfile.NamedTemporaryFile(prefix="mytrader-ops-step-", suffix=".out") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                close_fds=True,
                pass_fds=tuple(pass_fds),
            )
        except FileNotFoundError:
            return ProcessResult(None, False, "", False, f"program not found: {argv[0]!r}")
        except PermissionError:
            return ProcessResult(None, False, "", False, f"permission denied: {argv[0]!r}")
        except OSError as exc:
            return ProcessResult(None, False, "", False, f"cannot start {argv[0]!r}: {exc}")
        pgid = proc.pid  # leader of its own session and group
        timed_out = False
        leftovers = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            terminate_group(proc, pgid, grace_s)
        except BaseException:  # Ctrl-C or SIGTERM of the rollback itself: leave nothing behind
            terminate_group(proc, pgid, min(grace_s, 2.0))
            raise
        if not timed_out and group_alive(pgid):
            leftovers = True
            terminate_group(proc, pgid, grace_s)
        return ProcessResult(proc.returncode, timed_out, _read_output(out), leftovers)
