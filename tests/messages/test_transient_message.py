"""A send's message made without the ORM's per-attribute sets holds what
``Message(**values)`` holds, column by column, and changes as it does."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tidings.messages.models import Message
from tidings.messages.service import transient_message
from tidings.messages.status import Status

VALUES: dict[str, Any] = {
    "id": "msg_01JDQ3W6V2X4N8ZB7YH5K9T0RM",
    "account_id": "acc_x",
    "environment": "sandbox",
    "channel": "sms",
    "direction": "outbound",
    "to_address": "+393331234567",
    "from_address": None,
    "body": "Your code is 123456",
    "content": {},
    "segments": 1,
    "encoding": "GSM-7",
    "credits": Decimal(0),
    "attempts": 0,
    "scheduled_at": None,
}


def _columns(message: Message) -> dict[str, Any]:
    return {column.key: getattr(message, column.key) for column in Message.__table__.columns}


def test_it_holds_what_the_orm_constructor_holds() -> None:
    ours, theirs = transient_message(**VALUES), Message(**VALUES)
    assert _columns(ours) == _columns(theirs)
    now = datetime(2026, 12, 6, tzinfo=UTC)
    for message in (ours, theirs):
        message.status = Status.QUEUED
        message.next_attempt_at = message.created_at = message.updated_at = now
        message.attempts = 1
    assert _columns(ours) == _columns(theirs)


def test_an_unknown_attribute_is_refused_as_by_the_orm() -> None:
    with pytest.raises(TypeError):
        Message(**VALUES, colour="red")
    with pytest.raises(TypeError):
        transient_message(**VALUES, colour="red")
