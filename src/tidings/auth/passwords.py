"""Password hashing with argon2id, at the costs the deployment sets.

The defaults are argon2-cffi's (RFC 9106 "low memory": 3 passes over 64 MiB, 4 lanes),
about 100 ms of CPU, so hashing runs in a worker thread and only at login and user
creation, never per request. ``TIDINGS_PASSWORD_HASH__*`` changes the costs of new
hashes; a stored hash keeps the costs it was made with and verifies whatever they are.

Nothing is hashed at import time: the dummy hash used for unknown usernames is made
on first use, with the same costs as real hashes.
"""

from __future__ import annotations

import functools

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tidings.settings import PasswordHashSettings, Settings


class Passwords:
    """Hashes and verifies passwords with one set of argon2id costs."""

    def __init__(self, costs: PasswordHashSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=costs.time_cost,
            memory_cost=costs.memory_cost_kib,
            parallelism=costs.parallelism,
        )
        self._dummy_hash: str | None = None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True only for a stored hash that matches; None (an unknown user) is False."""
        try:
            return self._hasher.verify(password_hash or self._dummy(), password) and bool(
                password_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        # Verifying against this when the username is unknown keeps both paths equally
        # slow, so response time does not tell which usernames exist.
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash("tidings-unknown-user")
        return self._dummy_hash

    async def hash_async(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self.hash, password)

    async def verify_async(self, password_hash: str | None, password: str) -> bool:
        return await anyio.to_thread.run_sync(self.verify, password_hash, password)


@functools.cache
def process_passwords() -> Passwords:
    """The hasher of this process, with the costs ``TIDINGS_PASSWORD_HASH__*`` set."""
    return Passwords(Settings().password_hash)


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await process_passwords().verify_async(password_hash, password)


async def hash_password_async(password: str) -> str:
    return await process_passwords().hash_async(password)
