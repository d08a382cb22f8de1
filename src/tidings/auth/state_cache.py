"""A short-lived memory of "this token's user is active and the token not revoked".

Checking both in the database costs a round trip per request. A positive answer
is remembered for a couple of seconds; revoking in this process forgets it at
once, and other processes notice within that time (documented in
docs/operations.md). Negative answers are never cached: they are rare, and must
stay exact.
"""

from __future__ import annotations

import time

TTL_SECONDS = 2.0
MAX_ENTRIES = 100_000


class TokenStateCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self._ttl = ttl
        self._valid_until: dict[str, float] = {}

    def is_known_good(self, jti: str) -> bool:
        until = self._valid_until.get(jti)
        if until is None:
            return False
        if until < time.monotonic():
            del self._valid_until[jti]
            return False
        return True

    def remember_good(self, jti: str) -> None:
        if len(self._valid_until) >= MAX_ENTRIES:
            self._valid_until.clear()
        self._valid_until[jti] = time.monotonic() + self._ttl

    def forget(self, jti: str) -> None:
        self._valid_until.pop(jti, None)
