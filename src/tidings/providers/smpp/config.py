"""The ``smpp`` kind's config: one SMPP account at an SMS operator or aggregator.

Defaults are spec section 13's. ``binds`` is per process: N processes that
dispatch (the embedded ``serve`` and each ``tidings worker``) open ``binds`` x N
sessions, which must stay within what the SMSC allows for the ``systemId``.
``receiptIdBase``, ``responseTimeoutSeconds``, ``throttleWaitSeconds`` and
``receiptTimeoutSeconds`` are ours beyond the spec's table.

``receiptIdBase``: some SMSCs print in their receipt text, in decimal, the id
their ``submit_sm_resp`` gave in hex (an SMPP 3.3 legacy), or the other way
round; it says how to read the text's id (``same``: as given; ``decimal``: the
text shows in decimal what was hex; ``hex``: the text shows in hex what was
decimal). The ``receipted_message_id`` TLV is always read as given.

``receiptTimeoutSeconds`` (48 h, the validity operators commonly give an SMS): a
message asked for a receipt that is still ``sent`` that long after the SMSC took
it gets a ``receipt_timeout`` event and error, and stays ``sent``
(:mod:`tidings.receipt_timeouts`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from tidings.providers.registry import KindConfig

RECEIPT_TIMEOUT_SECONDS = 48 * 3600.0


class SmppConfig(KindConfig):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: str = Field(min_length=1, max_length=15)
    password: SecretStr = Field(max_length=8)
    system_type: str = Field(default="", max_length=12)
    tls: bool = False
    binds: int = Field(default=1, ge=1, le=32)
    window: int = Field(default=10, ge=1, le=1000)
    throughput_per_second: float = Field(default=0, ge=0)
    enquire_link_seconds: float = Field(default=30, gt=0, le=3600)
    default_sender: str | None = Field(default=None, max_length=20)
    registered_delivery: bool = True
    long_messages: Literal["udh", "sar", "payload"] = "udh"
    default_alphabet: Literal["gsm7", "latin1"] = "gsm7"
    receipt_id_base: Literal["same", "decimal", "hex"] = "same"
    # How long an answer (bind, submit_sm, enquire_link) may take before the request
    # counts as unanswered.
    response_timeout_seconds: float = Field(default=10, gt=0, le=300)
    # How long a submission waits for its bind's 0x58 pause before it is handed back
    # to the dispatcher ("throttled": attempt given back, pace halved); keep it below
    # TIDINGS_DELIVERY__SEND_TIMEOUT_SECONDS. 0: hand back at once.
    throttle_wait_seconds: float = Field(default=5, ge=0, le=120)
    # How long after ``sent`` a message with no receipt says so (registeredDelivery
    # on); a late receipt still delivers it.
    receipt_timeout_seconds: float = Field(default=RECEIPT_TIMEOUT_SECONDS, gt=0, le=30 * 86400)
