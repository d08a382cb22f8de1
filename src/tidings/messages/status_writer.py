"""Writes status changes: the only code that assigns ``Message.status``.

Each call records an event (applied or not, per :mod:`tidings.messages.status`)
and, when the status changed, the ``message.<status>`` outbox event for the
webhooks, all in the caller's transaction, so nothing is told about a change
that was rolled back.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.ids import new_id
from tidings.credits.repository import CreditRepository
from tidings.messages.models import Message, MessageEvent, OutboxEvent
from tidings.messages.schemas import message_payload
from tidings.messages.status import FINAL, Status, applies

# Credits come back when the provider never took the message.
REFUNDED = frozenset({Status.FAILED, Status.CANCELED})


def outbox_event(
    message: Message, event_type: str, at: datetime, data: dict[str, Any] | None = None
) -> OutboxEvent:
    return OutboxEvent(
        id=new_id("evt"),
        account_id=message.account_id,
        environment=message.environment,
        type=event_type,
        subject_id=message.id,
        payload=data if data is not None else message_payload(message),
        created_at=at,
    )


def start(session: AsyncSession, message: Message, status: Status, at: datetime) -> None:
    """Record the first status of a new message (queued, scheduled or received)."""
    message.status = status
    message.created_at = message.updated_at = at
    session.add(message)
    session.add(MessageEvent(message_id=message.id, status=status, at=at, applied=True))
    event_type = "message.received" if status == Status.RECEIVED else "message.queued"
    if status != Status.SCHEDULED:
        session.add(outbox_event(message, event_type, at))


async def change(
    session: AsyncSession,
    message: Message,
    new: Status,
    at: datetime,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
    detail: dict[str, Any] | None = None,
    seen: set[str] | None = None,
) -> bool:
    """Apply a reported status; True when the message's status changed.

    ``seen`` holds statuses already recorded for this message: a duplicate report
    of one of them is dropped, not recorded again.
    """
    if seen is not None:
        if new in seen:
            return False
        seen.add(new)
    changed = applies(Status(message.status), new)
    session.add(
        MessageEvent(message_id=message.id, status=new, at=at, applied=changed, detail=detail)
    )
    if not changed:
        return False
    message.status = new
    message.updated_at = at
    if error_code is not None:
        message.error_code = error_code
        message.error_message = error_message
    elif new in (Status.SENT, Status.DELIVERED, Status.READ):
        # An error left by an earlier, retried attempt no longer describes it.
        message.error_code = message.error_message = None
    if new in FINAL or new == Status.SENT:
        # Out of the queue: only receipts can move it from here.
        message.next_attempt_at = None
        message.lease_owner = None
    if new in REFUNDED and message.credits:
        await CreditRepository(session).add(
            message.account_id,
            Decimal(message.credits),
            reason="refund",
            at=at,
            message_id=message.id,
        )
    session.add(outbox_event(message, f"message.{new.value}", at))
    return True
