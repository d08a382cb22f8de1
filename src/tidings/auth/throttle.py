"""Failed-login throttling: per (username, address) pair, per address, and a global
slowdown per username.

An attempt takes its place *before* the password hash runs (:meth:`LoginThrottle.reserve`)
and is settled afterwards (:class:`LoginAttempt`), so a concurrent burst gets at most
``max_failures_per_pair`` password checks for one username from one address per
window, and at most ``max_failures_per_address`` from one address; the rest answer
429 with ``Retry-After`` before any hash. A success clears its pair and gives its
address place back, so an office behind one address is not refused for logging in.

The username alone is never refused: an attacker's failures from elsewhere must not
lock the real user out. Past ``max_failures_per_username`` failures in the window
(from any address) each further failure of that username is answered a little later
(``slowdown_seconds`` more each time, capped), which slows guessing without refusing
the owner.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

from tidings.core.errors import TooManyRequests
from tidings.settings import LoginThrottleSettings


class WindowCounts(Protocol):
    """Fixed-window counts that can also be given back (a settled reservation)."""

    def locked(self) -> AbstractContextManager[None]: ...

    def add(self, key: str, delta: int) -> tuple[float, int]: ...

    def give_back(self, key: str, started: float) -> None: ...

    def seconds_left(self, started: float) -> int: ...

    def forget(self, key: str) -> None: ...


@dataclass(slots=True)
class _Window:
    started: float
    count: int


class MemoryCounts:
    """:class:`WindowCounts` in this process's memory."""

    def __init__(self, window_seconds: int, monotonic: Callable[[], float]) -> None:
        self._window = window_seconds
        self._monotonic = monotonic
        self._windows: dict[str, _Window] = {}
        self._last_sweep = monotonic()

    def locked(self) -> AbstractContextManager[None]:
        # One event loop: nothing else runs between a check and its count.
        return nullcontext()

    def _current(self, key: str) -> _Window:
        now = self._monotonic()
        if now - self._last_sweep > self._window:
            # Forget ended windows so memory stays bounded by the active keys.
            self._windows = {
                k: w for k, w in self._windows.items() if now - w.started < self._window
            }
            self._last_sweep = now
        window = self._windows.get(key)
        if window is None or now - window.started >= self._window:
            window = self._windows[key] = _Window(now, 0)
        return window

    def add(self, key: str, delta: int) -> tuple[float, int]:
        window = self._current(key)
        window.count += delta
        return window.started, window.count

    def give_back(self, key: str, started: float) -> None:
        # Only within the window it was taken from: a new window owes nothing.
        window = self._windows.get(key)
        if window is not None and window.started == started and window.count > 0:
            window.count -= 1

    def seconds_left(self, started: float) -> int:
        return max(1, math.ceil(self._window - (self._monotonic() - started)))

    def forget(self, key: str) -> None:
        self._windows.pop(key, None)


class LoginAttempt:
    """One reserved password check; settle it with :meth:`succeeded` or :meth:`failed`."""

    def __init__(
        self, throttle: LoginThrottle, username: str, address: str, address_window: float
    ) -> None:
        self._throttle = throttle
        self._username = username
        self._address = address
        self._address_window = address_window

    def succeeded(self) -> None:
        self._throttle._succeeded(self._username, self._address, self._address_window)

    def failed(self) -> float:
        """Count the failure; the seconds to wait before answering it."""
        return self._throttle._failed(self._username, self._address)


class LoginThrottle:
    def __init__(
        self,
        settings: LoginThrottleSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        counts: WindowCounts | None = None,
    ) -> None:
        self._settings = settings
        self._counts = counts or MemoryCounts(settings.window_seconds, monotonic)

    @staticmethod
    def _pair_key(username: str, address: str) -> str:
        return f"pair:{username.casefold()}\x00{address}"

    @staticmethod
    def _address_key(address: str) -> str:
        return f"addr:{address}"

    @staticmethod
    def _user_key(username: str) -> str:
        return f"user:{username.casefold()}"

    def reserve(self, username: str, address: str) -> LoginAttempt:
        """Take a place for one password check, or raise 429 when none is left.

        The check and the count are made at once (synchronously, and under the shared
        counts' lock), so concurrent requests cannot all pass an unchanged count.
        """
        counts, pair_key, place_key = (
            self._counts,
            self._pair_key(username, address),
            self._address_key(address),
        )
        with counts.locked():
            for key, limit in (
                (pair_key, self._settings.max_failures_per_pair),
                (place_key, self._settings.max_failures_per_address),
            ):
                started, count = counts.add(key, 0)
                if count >= limit:
                    wait = counts.seconds_left(started)
                    raise TooManyRequests(
                        f"Too many failed logins from this address; try again in {wait} s.",
                        retry_after=wait,
                    )
            counts.add(pair_key, 1)
            place_window, _ = counts.add(place_key, 1)
        return LoginAttempt(self, username, address, place_window)

    def _succeeded(self, username: str, address: str, address_window: float) -> None:
        self._counts.forget(self._pair_key(username, address))
        self._counts.forget(self._user_key(username))
        self._counts.give_back(self._address_key(address), address_window)

    def _failed(self, username: str, address: str) -> float:
        _, user = self._counts.add(self._user_key(username), 1)
        _, pair = self._counts.add(self._pair_key(username, address), 0)
        over = max(pair - 1, user - self._settings.max_failures_per_username, 0)
        return float(min(self._settings.max_delay_seconds, self._settings.slowdown_seconds * over))
