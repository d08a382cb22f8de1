"""Fixed-window counters kept in process memory.

Used for the per-account rate limit and the failed-login throttle. Each process
counts on its own: with several API processes behind a balancer the effective
limit is the configured one times the number of processes (documented in
docs/operations.md). The processes of one ``serve --workers N`` share their rate
limit's counts instead (:mod:`tidings.core.shared_windows`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class WindowState:
    window_start: float
    count: int


@dataclass(frozen=True, slots=True)
class WindowReading:
    limit: int
    remaining: int
    reset_seconds: int
    exceeded: bool


def window_reading(
    window_seconds: int, elapsed: float, count: int, limit: int, *, exceeded: bool
) -> WindowReading:
    """Where a window ``elapsed`` seconds old that counted ``count`` stands."""
    return WindowReading(
        limit=limit,
        remaining=max(0, limit - count),
        reset_seconds=max(1, math.ceil(window_seconds - elapsed)),
        exceeded=exceeded,
    )


class WindowCounter(Protocol):
    def hit(self, key: str, limit: int) -> WindowReading: ...

    def peek(self, key: str, limit: int) -> WindowReading: ...

    def count(self, key: str) -> int: ...

    def reset(self, key: str) -> None: ...


class FixedWindowCounter:
    def __init__(
        self, window_seconds: int, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window_seconds
        self._monotonic = monotonic
        self._states: dict[str, WindowState] = {}
        self._last_sweep = monotonic()

    def _state(self, key: str) -> WindowState:
        now = self._monotonic()
        if now - self._last_sweep > self._window:
            self._sweep(now)
        state = self._states.get(key)
        if state is None or now - state.window_start >= self._window:
            state = WindowState(now, 0)
            self._states[key] = state
        return state

    def _sweep(self, now: float) -> None:
        # Forget expired windows so memory stays bounded by the active keys.
        self._states = {
            key: state
            for key, state in self._states.items()
            if now - state.window_start < self._window
        }
        self._last_sweep = now

    def hit(self, key: str, limit: int) -> WindowReading:
        """Count one event for ``key`` and say where the window stands."""
        state = self._state(key)
        state.count += 1
        elapsed = self._monotonic() - state.window_start
        return window_reading(
            self._window, elapsed, state.count, limit, exceeded=state.count > limit
        )

    def peek(self, key: str, limit: int) -> WindowReading:
        state = self._state(key)
        elapsed = self._monotonic() - state.window_start
        return window_reading(
            self._window, elapsed, state.count, limit, exceeded=state.count >= limit
        )

    def count(self, key: str) -> int:
        return self._state(key).count

    def reset(self, key: str) -> None:
        self._states.pop(key, None)
