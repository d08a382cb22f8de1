"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106 low-memory).

Hashing costs about 100 ms of CPU, so it runs in a worker thread and only at
login and user creation, never per request.
"""

from __future__ import annotations

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
# Verifying against this when the username is unknown keeps both paths equally slow,
# so response time does not tell which usernames exist.
_DUMMY_HASH = _hasher.hash("tidings-unknown-user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await anyio.to_thread.run_sync(_verify, password_hash, password)


async def hash_password_async(password: str) -> str:
    return await anyio.to_thread.run_sync(hash_password, password)
