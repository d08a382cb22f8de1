"""A short-lived memory of "this token's user is active and the token not revoked".

Checking both in the database costs a round trip per request. A positive answer
is remembered for a couple of seconds; revoking in this process forgets it at
once, and other processes notice within that time (documented in
docs/operations.md). Negative answers are never cached: they are rare, and must
stay exact.

When a remembered answer runs out under load, every request of that token in flight
would read the database at once (about seven per expiry at 64 clients, measured):
:meth:`TokenStateCache.read_once` lets them share the one read in progress
(:class:`tidings.core.single_flight.SingleFlight`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tidings.core.single_flight import SingleFlight

T = TypeVar("T")

TTL_SECONDS = 2.0
MAX_ENTRIES = 100_000


class TokenStateCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self._ttl = ttl
        self._valid_until: dict[str, float] = {}
        self._reading: SingleFlight[str, Any] = SingleFlight()

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
        # A read that began before the revocation is not shared with later requests.
        self._reading.forget(jti)

    async def read_once(self, jti: str, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``'s result, shared with the requests that ask about the same token
        while it runs."""
        result: T = await self._reading.run(jti, read)
        return result
