"""The provider seam: what every channel provider implements, and what it reports.

    DeliveryError                      a provider refused or could not take a message
    ├── RetryableDeliveryError         try again later: timeouts, throttling, 5xx,
    │                                  SMPP 0x58/0x14, SMTP 4xx (``retry_after`` if known)
    └── PermanentDeliveryError         never retry: invalid number, WhatsApp 131026,
                                       SMTP 5.1.1; the message ends ``failed``

A provider's ``send`` returns a :class:`DeliveryResult` once the provider has
accepted the message (``sent``); what happens afterwards arrives later as
:class:`StatusReport` objects through the :class:`StatusSink` the provider was
built with, the same path for real providers (webhooks, SMPP receipts, bounces)
and for the sandbox. Contacts writing in arrive as :class:`InboundMessage`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tidings.core.environments import Environment
from tidings.messages.status import Status


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What a provider needs to submit one message (any channel)."""

    id: str
    account_id: str
    environment: Environment
    channel: str
    to: str
    sender: str | None
    body: str | None
    content: dict[str, Any]
    attempt: int
    segments: int | None = None
    encoding: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    provider_message_id: str


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A provider's word on a message it accepted (receipt, webhook, bounce)."""

    provider: str
    provider_message_id: str
    status: Status
    at: datetime
    error_code: str | None = None
    error_message: str | None = None
    # Events that are not status changes (email opened, complained...).
    event: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A contact writing in."""

    account_id: str
    environment: Environment
    channel: str
    sender: str
    recipient: str | None
    body: str | None
    at: datetime
    provider: str
    provider_message_id: str
    content: dict[str, Any] = field(default_factory=dict)


class DeliveryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RetryableDeliveryError(DeliveryError):
    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class ThrottledError(RetryableDeliveryError):
    """The provider asked to slow down (WhatsApp 130429, SMPP 0x58): the message is
    retried without using up an attempt, and the pace slows."""


class PermanentDeliveryError(DeliveryError):
    pass


class StatusSink(Protocol):
    """Where providers report what happened to accepted messages."""

    async def report(self, reports: list[StatusReport]) -> list[StatusReport]:
        """Apply the reports; those naming a message not (yet) known come back."""
        ...


class Provider(Protocol):
    """One configured provider of one channel, for one account and environment."""

    name: str
    channel: str
    # Numbers accepted beyond the numbering plan (the sandbox's magic numbers).
    test_numbers: frozenset[str]

    async def send(self, message: OutboundMessage) -> DeliveryResult: ...

    async def last_inbound_at(self, contact: str) -> datetime | None:
        """When the contact last wrote in, as far as the provider alone knows (the
        sandbox simulates contacts that wrote in recently; real providers tell us
        through inbound webhooks, so they answer None)."""
        ...

    async def close(self) -> None: ...
