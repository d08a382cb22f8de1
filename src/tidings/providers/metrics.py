"""Prometheus metrics per provider: submissions by outcome, their latency, and the
state of each provider's circuit in this process (served at ``/metrics``; the
submissions of the processes of one ``serve`` summed, see
:mod:`tidings.http.shared_metrics`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class RouteLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def channel(self) -> str: ...


class ProviderMetrics:
    def __init__(self) -> None:
        # Counted (summed over one serve's processes), and computed at the scrape.
        self.registry = CollectorRegistry(auto_describe=True)
        self.live = CollectorRegistry(auto_describe=True)
        self.submissions = Counter(
            "tidings_provider_submissions",
            "Messages handed to a provider, by provider and outcome (accepted or an error code).",
            ["provider", "kind", "channel", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tidings_provider_send_duration_seconds",
            "Time a provider took to accept or refuse a message.",
            ["provider", "kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )

        # Each labelled child once: ``labels`` checks and locks at every call, which
        # cost more than the observation, once a submission.
        self._children: dict[tuple[str, str, str, str], tuple[Counter, Histogram]] = {}

    def observe(self, route: RouteLike, outcome: str, seconds: float) -> None:
        key = (route.id, route.kind, route.channel, outcome)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.submissions.labels(*key),
                self.latency.labels(route.id, route.kind),
            )
        children[0].inc()
        children[1].observe(seconds)

    def count(self, provider_id: str, outcome: str) -> float:
        """Submissions to one provider with one outcome, in this process."""
        total = 0.0
        for metric in self.registry.collect():
            for sample in metric.samples:
                if (
                    sample.name == "tidings_provider_submissions_total"
                    and sample.labels.get("provider") == provider_id
                    and sample.labels.get("outcome") == outcome
                ):
                    total += sample.value
        return total

    def watch_circuits(self, states: Callable[[], Iterable[tuple[str, str]]]) -> None:
        """Export each provider's circuit (0 closed, 1 half-open, 2 open)."""
        self.live.register(_CircuitCollector(states))


_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class _CircuitCollector(Collector):
    def __init__(self, states: Callable[[], Iterable[tuple[str, str]]]) -> None:
        self._states = states

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "tidings_provider_circuit_state",
            "Each provider's circuit in this process: 0 closed, 1 half-open, 2 open.",
            labels=["provider"],
        )
        for provider_id, state in self._states():
            gauge.add_metric([provider_id], _STATE_VALUES.get(state, 0))
        yield gauge
