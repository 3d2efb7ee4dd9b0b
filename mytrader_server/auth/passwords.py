"""argon2id hashing with the password length capped and the hashing concurrency bounded.

A login flood must not starve every other request of CPU: at most ``hash_concurrency`` hashes run
at once, in worker threads, and a password longer than the cap is refused before any hashing.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from mytrader_server.errors import unprocessable

# A valid hash of a random password, verified against when the user does not exist so that
# "no such user" and "wrong password" take the same time.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_DUMMY_HASH = _hasher.hash("not-a-real-password-8c1f")


class PasswordService:
    def __init__(self, max_bytes: int, concurrency: int) -> None:
        self.max_bytes = max_bytes
        self._slots = asyncio.Semaphore(concurrency)

    def check_length(self, password: str) -> None:
        size = len(password.encode())
        if size > self.max_bytes:
            raise unprocessable(f"password is longer than {self.max_bytes} bytes")

    async def hash(self, password: str) -> str:
        self.check_length(password)
        async with self._slots:
            return await asyncio.to_thread(_hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        if len(password.encode()) > self.max_bytes:
            return False
        async with self._slots:
            return await asyncio.to_thread(_verify, password_hash or _DUMMY_HASH, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
