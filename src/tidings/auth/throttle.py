"""Failed-login throttling, per username and per client address.

Each failure past the first is answered a little later (a growing delay, capped);
once a key reaches its maximum within the window, the token endpoint answers
429 with ``Retry-After`` until the window ends. A success clears the username's
count, not the address's.
"""

from __future__ import annotations

from tidings.core.errors import TooManyRequests
from tidings.core.windows import FixedWindowCounter
from tidings.settings import LoginThrottleSettings

MAX_DELAY_SECONDS = 2.0


class LoginThrottle:
    def __init__(self, settings: LoginThrottleSettings) -> None:
        self._settings = settings
        self._counter = FixedWindowCounter(settings.window_seconds)

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"user:{username.casefold()}", f"addr:{address}"

    def check(self, username: str, address: str) -> None:
        user_key, addr_key = self._keys(username, address)
        for key, limit in (
            (user_key, self._settings.max_failures_per_username),
            (addr_key, self._settings.max_failures_per_address),
        ):
            reading = self._counter.peek(key, limit)
            if reading.exceeded:
                raise TooManyRequests(
                    "Too many failed logins; wait before trying again.",
                    retry_after=reading.reset_seconds,
                )

    def record_failure(self, username: str, address: str) -> float:
        """Count a failure; the delay to wait before answering it."""
        user_key, addr_key = self._keys(username, address)
        self._counter.hit(user_key, self._settings.max_failures_per_username)
        self._counter.hit(addr_key, self._settings.max_failures_per_address)
        failures = max(self._counter.count(user_key), self._counter.count(addr_key))
        return min(MAX_DELAY_SECONDS, self._settings.slowdown_seconds * (failures - 1))

    def record_success(self, username: str) -> None:
        self._counter.reset(self._keys(username, "")[0])
