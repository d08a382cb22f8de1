"""The provider seam: what a provider is handed, what it answers, what it reports.

A provider's ``send`` returns :class:`Accepted` once the network has taken the
message (``sent``), with one :class:`ProviderRef` per id the network gave it (the
parts of a long SMS, the recipients of one email). What happens afterwards the
provider reports as :class:`Report` items (a :class:`StatusReport`, a contact's
:class:`InboundMessage`, or a :class:`ContactUpdate` of what it learned of a
contact), which reach the status machine only through the durable
inbox (:mod:`tidings.providers.inbox`): stored first, applied after. Failures are
exceptions of :mod:`tidings.providers.errors`.

What a kind can do, independent of any instance (its test numbers, whether it
simulates contacts that wrote in), is static and read from its
:class:`~tidings.providers.registry.KindSpec`, so answering a request never builds a
provider.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.db.group_commit import GroupCommitter
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
class RawReport:
    """What a provider hands the inbox: the payload as received, and the key under
    which a repeat of it is recognised."""

    dedupe_key: str
    payload: dict[str, Any]
    # When to apply it (the simulator schedules its future receipts); None = now.
    due_in_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ProviderRef:
    """One id the network gave (part of) a message; receipts name it."""

    external_id: str
    part: int | None = None
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    refs: tuple[ProviderRef, ...]
    # Reports the provider already knows will follow (the simulator's scenario), stored
    # in the inbox in the transaction that records the verdict: none is lost to a crash,
    # none arrives before the message's ids are known, and no commit is added.
    reports: tuple[RawReport, ...] = ()

    def __post_init__(self) -> None:
        if not self.refs:
            raise ValueError("an accepted message has at least one provider id")

    @classmethod
    def one(cls, external_id: str) -> Accepted:
        return cls((ProviderRef(external_id),))

    @property
    def external_id(self) -> str:
        """The first id, shown as the message's ``providerMessageId``."""
        return self.refs[0].external_id


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A provider's word on a message it accepted (receipt, status webhook, bounce)."""

    external_id: str
    status: Status
    at: datetime
    error_code: str | None = None
    error_message: str | None = None
    # Events that are not status changes (email opened, complained...).
    event: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # Set when the report is about one of several recipients other than the message's
    # own (an email's other To, Cc or Bcc): its event is recorded for that address,
    # and suppresses that address; the message's status follows its own recipient.
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A contact writing in, as the provider saw it (the account comes from the
    provider that received it)."""

    channel: str
    sender: str
    recipient: str | None
    body: str | None
    at: datetime
    external_id: str
    content: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContactUpdate:
    """What a provider tells of a contact without the contact writing in: WhatsApp's
    ``system`` messages (``change`` names it: the contact changed its number or its
    user id) and the phone and user id a status of our own send shows together
    (``change`` None). Never a message: it opens no conversation window."""

    channel: str
    at: datetime
    phone: str | None = None
    user_id: str | None = None
    previous_phone: str | None = None
    previous_user_id: str | None = None
    change: str | None = None
    body: str | None = None
    external_id: str | None = None


Report = StatusReport | InboundMessage | ContactUpdate


class ReportSink(Protocol):
    async def store(self, provider_id: str, reports: Sequence[RawReport]) -> int:
        """Store the reports durably (duplicates ignored); how many were new.
        Returns only after the commit: a provider acknowledges after this."""
        ...


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    latency_ms: int
    detail: str


class Provider(Protocol):
    """One configured provider, live in this process."""

    id: str
    kind: str
    channel: str

    async def send(self, message: OutboundMessage) -> Accepted: ...

    async def check(self) -> str:
        """Connect and authenticate without sending anything; a sentence saying what
        was checked. Raises a :class:`~tidings.providers.errors.DeliveryError`."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ProviderDeps:
    """What the runtime hands every provider it builds."""

    clock: Clock
    writer: GroupCommitter
    inbox: ReportSink
    receipt_delay_seconds: float = 0.02
    throttle_per_second: float = 0.0
    # Kinds that speak HTTP take their transport from here, so tests can point them
    # at a local fake; None means the real network.
    http_transport: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


# How a kind turns one stored payload into reports.
ReportParser = Callable[[dict[str, Any]], list[Report]]
InboundLookup = Callable[[str], Awaitable[datetime | None]]
