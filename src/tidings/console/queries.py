"""The console's own read-only SQL: summaries no API endpoint answers.

Everything else a page shows comes from the repositories and services the API uses;
these are the few questions only the console asks (counts for the overview, a
message's webhook deliveries and sandbox emails). Every query is bounded by the
:class:`~tidings.core.tenancy.TenantScope` it is given, and reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.tenancy import TenantScope
from tidings.messages.models import Message
from tidings.messages.status import Status
from tidings.providers.simulator.mailbox import SandboxEmail
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint

FAILED = (Status.FAILED.value, Status.UNDELIVERED.value)
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def id_floor(prefix: str, at: datetime) -> str:
    """The smallest id :func:`tidings.core.ids.new_id` could have made at ``at``: ids
    start with their creation time, so "since ``at``" is a range of the id index."""
    value = int(at.timestamp() * 1000) << 80
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


@dataclass(frozen=True, slots=True)
class ChannelCounts:
    """One channel's messages since a time, by status."""

    channel: str
    by_status: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


async def counts_since(
    session: AsyncSession, tenant: TenantScope, since: datetime
) -> list[ChannelCounts]:
    rows = await session.execute(
        select(Message.channel, Message.status, func.count())
        .where(
            Message.account_id == tenant.account_id,
            Message.environment == tenant.environment.value,
            Message.id >= id_floor("msg", since),
            Message.created_at >= since,
        )
        .group_by(Message.channel, Message.status)
    )
    found: dict[str, dict[str, int]] = {}
    for channel, status, count in rows:
        found.setdefault(channel, {})[status] = int(count)
    return [ChannelCounts(channel, found[channel]) for channel in sorted(found)]


async def recent_failures(
    session: AsyncSession, tenant: TenantScope, *, limit: int = 10
) -> list[Message]:
    rows = await session.scalars(
        select(Message)
        .where(
            Message.account_id == tenant.account_id,
            Message.environment == tenant.environment.value,
            Message.status.in_(FAILED),
        )
        .order_by(Message.id.desc())
        .limit(limit)
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class MessageDelivery:
    """A webhook delivery a message's events caused, and where it went."""

    delivery: WebhookDelivery
    endpoint_url: str


async def deliveries_of_message(
    session: AsyncSession, tenant: TenantScope, message_id: str
) -> list[MessageDelivery]:
    rows = await session.execute(
        select(WebhookDelivery, WebhookEndpoint.url)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookEndpoint.account_id == tenant.account_id,
            WebhookEndpoint.environment == tenant.environment.value,
            WebhookDelivery.subject_id == message_id,
        )
        .order_by(WebhookDelivery.event_at, WebhookDelivery.id)
    )
    return [MessageDelivery(delivery, url) for delivery, url in rows]


async def sandbox_emails_of_message(
    session: AsyncSession, tenant: TenantScope, message_id: str
) -> list[str]:
    """The ids of the emails the sandbox "sent" for a message, oldest first."""
    rows = await session.scalars(
        select(SandboxEmail.id)
        .where(
            SandboxEmail.account_id == tenant.account_id,
            SandboxEmail.environment == tenant.environment.value,
            SandboxEmail.message_id == message_id,
        )
        .order_by(SandboxEmail.created_at, SandboxEmail.id)
    )
    return list(rows)
