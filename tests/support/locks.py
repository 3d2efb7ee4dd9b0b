"""Whether a rollback lock is held, seen from outside the process that holds it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def env_locked(state_dir: Path, env_name: str) -> bool:
    """True while some process holds ``<state>/locks/<env>.lock`` (flock, as rollback takes it)."""
    path = state_dir / "locks" / f"{env_name}.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
