"""The ``simulator`` kind: the sandbox's providers, and a production account's on purpose.

Its folder holds the scenarios of the magic recipients, the provider, how its
stored receipts are read back, and the mailbox of emails it "sent".
"""

from __future__ import annotations

from tidings.providers.registry import CHANNELS, KindSpec
from tidings.providers.simulator.provider import SimulatorConfig, SimulatorProvider
from tidings.providers.simulator.reports import parse_report
from tidings.providers.simulator.scenarios import MAGIC_NUMBERS, phone_scenario


def _test_numbers(channel: str) -> frozenset[str]:
    return MAGIC_NUMBERS if channel != "email" else frozenset()


def _wrote_in_recently(channel: str, contact: str) -> bool:
    return channel == "whatsapp" and phone_scenario(channel, contact).window_open


def _rate(config: SimulatorConfig) -> float | None:
    return config.messages_per_second or None


SIMULATOR = KindSpec(
    kind="simulator",
    channels=frozenset(CHANNELS),
    config=SimulatorConfig,
    build=SimulatorProvider,
    parse_report=parse_report,
    summary="The simulated network of the sandbox: sends nothing, reports every status.",
    test_numbers=_test_numbers,
    simulated_inbound=_wrote_in_recently,
    rate=_rate,
)

__all__ = ["SIMULATOR", "SimulatorConfig", "SimulatorProvider"]
