"""A circuit breaker per provider, in each process.

Closed: messages go to the provider. ``failure_threshold`` retryable failures
(connection down, timeouts, 5xx) within ``window_seconds`` open it: the provider is
skipped while another of the channel is usable, for ``open_seconds``. Then it is
half-open: one message probes it; a success closes it, a failure opens it again
(a probe that never reports back is given up after ``open_seconds``).
A permanent refusal is the network working (the message was bad), so it counts
as a success. Each process keeps its own breakers (they see their own traffic);
the provider's ``health`` in the database is what every process and the API share.
"""

from __future__ import annotations

import time
from collections import deque
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        window_seconds: float = 30.0,
        open_seconds: float = 30.0,
    ) -> None:
        self._threshold = failure_threshold
        self._window = window_seconds
        self._open_for = open_seconds
        self._failures: deque[float] = deque()
        self._opened_at: float | None = None
        self._probing = False
        self._probe_at = 0.0
        self.opened = 0

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._now() - self._opened_at >= self._open_for:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._open_for - (self._now() - self._opened_at))

    def allows(self) -> bool:
        """Whether a message may go now (taking the probe when half-open)."""
        state = self.state
        if state == CircuitState.CLOSED:
            return True
        if state == CircuitState.HALF_OPEN and not self._probe_out():
            self._probing = True
            self._probe_at = self._now()
            return True
        return False

    def _probe_out(self) -> bool:
        # A probe whose outcome never came (its caller failed or was cancelled before
        # sending) is given up after open_seconds, so the circuit cannot stay half-open
        # with its one probe out for good.
        return self._probing and self._now() - self._probe_at < self._open_for

    def unused(self) -> None:
        """The probe taken by :meth:`allows` was not sent (the provider could not be
        built): the next message may probe."""
        self._probing = False

    def success(self) -> None:
        self._failures.clear()
        self._opened_at = None
        self._probing = False

    def trip(self) -> None:
        """Open at once (the provider refused its credentials)."""
        if self._opened_at is None:
            self.opened += 1
        self._opened_at = self._now()
        self._probing = False
        self._failures.clear()

    def failure(self) -> None:
        now = self._now()
        if self._opened_at is not None:
            # The probe failed (or a send begun before opening): open again.
            self._opened_at = now
            self._probing = False
            return
        self._failures.append(now)
        while self._failures and now - self._failures[0] > self._window:
            self._failures.popleft()
        if len(self._failures) >= self._threshold:
            self._opened_at = now
            self._failures.clear()
            self.opened += 1
