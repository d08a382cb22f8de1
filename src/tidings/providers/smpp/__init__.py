"""The ``smpp`` kind: SMS through an SMPP 3.4 account at an operator or aggregator.

Its folder holds the config (:mod:`.config`), our PDU codec (:mod:`.pdus`), one
bind and what keeps it up (:mod:`.session`), a bind's window and throttle pause
(:mod:`.window`), how a message becomes its ``submit_sm`` PDUs
(:mod:`.submission`), the provider (:mod:`.provider`), receipts and contacts'
messages as stored and read back (:mod:`.receipts`), and the ``command_status``
table (:mod:`.status_codes`).
"""

from __future__ import annotations

from typing import Any

from tidings.providers.registry import KindSpec
from tidings.providers.smpp.config import RECEIPT_TIMEOUT_SECONDS, SmppConfig
from tidings.providers.smpp.provider import SmppProvider
from tidings.providers.smpp.receipts import parse_report


def _rate(config: SmppConfig) -> float | None:
    return config.throughput_per_second or None


def _concurrency(config: SmppConfig) -> int:
    return config.window * config.binds


def _receipt_timeout(stored: dict[str, Any]) -> float | None:
    """Seconds a message waits for its receipt, when the provider asks for them.
    A provider stored before the setting existed has the default."""
    if not stored.get("registeredDelivery", True):
        return None
    return float(stored.get("receiptTimeoutSeconds", RECEIPT_TIMEOUT_SECONDS))


SMPP = KindSpec(
    kind="smpp",
    channels=frozenset({"sms"}),
    config=SmppConfig,
    build=SmppProvider,
    parse_report=parse_report,
    summary="An SMPP 3.4 account at an SMS operator or aggregator (transceiver binds).",
    rate=_rate,
    concurrency=_concurrency,
    persistent=True,
    receipt_timeout=_receipt_timeout,
)

__all__ = ["SMPP", "SmppConfig", "SmppProvider"]
