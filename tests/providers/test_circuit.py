"""The circuit breaker never stays half-open for good: a probe whose outcome never
comes back (its caller failed between taking it and sending) is given up after
``open_seconds``, and the next message probes."""

from __future__ import annotations

from tidings.providers.circuit import CircuitBreaker, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_probe_that_never_reports_back_is_given_up() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, window_seconds=10, open_seconds=5)
    breaker._now = clock  # type: ignore[method-assign]
    breaker.failure()
    clock.now += 5
    assert breaker.state == CircuitState.HALF_OPEN
    assert breaker.allows()  # the probe, whose outcome is lost
    clock.now += 4
    assert not breaker.allows()  # still out
    clock.now += 1
    assert breaker.allows()  # given up: another message probes
    assert not breaker.allows()
    breaker.success()
    assert breaker.state == CircuitState.CLOSED and breaker.allows()


def test_an_unused_probe_is_handed_back_at_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, window_seconds=10, open_seconds=5)
    breaker._now = clock  # type: ignore[method-assign]
    breaker.failure()
    clock.now += 5
    assert breaker.allows()
    breaker.unused()
    assert breaker.allows()
