"""The answer of a send built directly (:func:`message_body`) is the model's dump,
``message_out(...).model_dump(mode="json", by_alias=True)``, for every message: the
same keys in the same order and the same values, or the same error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.core.ids import new_id
from tidings.messages.models import Message, MessageEvent
from tidings.messages.schemas import EventView, message_body, message_out
from tidings.messages.status import Status

texts = st.one_of(st.none(), st.text(max_size=20))
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), ZoneInfo("Europe/Rome"), None])
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=zones
)


def _message(**changes: Any) -> Message:
    values: dict[str, Any] = {
        "id": new_id("msg"),
        "account_id": "acc_x",
        "environment": "sandbox",
        "channel": "sms",
        "direction": "outbound",
        "status": Status.QUEUED,
        "to_address": "+393331234567",
        "from_address": None,
        "body": "Your code is 123456",
        "content": {},
        "segments": 1,
        "encoding": "GSM-7",
        "credits": Decimal(0),
        "attempts": 1,
        "created_at": datetime(2026, 12, 6, 14, 0, 0, 123456, tzinfo=UTC),
        "updated_at": datetime(2026, 12, 6, 14, 0, 0, 123456, tzinfo=UTC),
    }
    values.update(changes)
    return Message(**values)


def _model(message: Message, events: list[EventView] | None) -> dict[str, Any]:
    shown = (
        None
        if events is None
        else [MessageEvent(status=s, at=at, applied=a, kind=k) for s, at, a, k in events]
    )
    return message_out(message, shown).model_dump(mode="json", by_alias=True)


def _same(message: Message, events: list[EventView] | None) -> None:
    try:
        expected = _model(message, events)
    except Exception as error:  # the model refuses: so does the direct path
        with pytest.raises(type(error)):
            message_body(message, events)
        return
    got = message_body(message, events)
    # repr: the keys' order and the values' types too (1.0, not 1; nan, which is
    # not equal to itself)
    assert repr(got) == repr(expected)


@settings(max_examples=300, deadline=None)
@given(
    body=texts,
    sender=texts,
    subject=texts,
    error=st.one_of(st.none(), st.just(""), st.sampled_from(["provider_rejected"])),
    error_message=texts,
    scheduled=st.one_of(st.none(), moments),
    created=moments,
    credits=st.one_of(
        st.none(), st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False)
    ),
    status=st.sampled_from(list(Status)),
    channel=st.sampled_from(["sms", "email", "whatsapp"]),
    direction=st.sampled_from(["outbound", "inbound"]),
    environment=st.sampled_from(["sandbox", "production"]),
    segments=st.one_of(st.none(), st.integers(0, 20)),
    events=st.one_of(
        st.none(),
        st.lists(
            st.tuples(st.sampled_from(list(Status)), moments, st.booleans(), texts), max_size=4
        ),
    ),
)
def test_the_direct_body_is_the_models_dump(
    body: str | None,
    sender: str | None,
    subject: str | None,
    error: str | None,
    error_message: str | None,
    scheduled: datetime | None,
    created: datetime,
    credits: Decimal | None,
    status: Status,
    channel: str,
    direction: str,
    environment: str,
    segments: int | None,
    events: list[EventView] | None,
) -> None:
    message = _message(
        body=body,
        from_address=sender,
        content={"subject": subject} if subject is not None else {},
        error_code=error,
        error_message=error_message,
        scheduled_at=scheduled,
        created_at=created,
        updated_at=created + timedelta(microseconds=250),
        credits=credits,
        status=status.value if segments == 3 else status,
        channel=channel,
        direction=direction,
        environment=environment,
        segments=segments,
    )
    _same(message, events)


@pytest.mark.parametrize(
    "changes",
    [
        {"body": "lone \ud800 surrogate"},
        {"from_address": "\udfff"},
        {"content": {"subject": "\ud83d"}},
        {"content": {"subject": 5}},
        {"content": ["not", "a", "dict"]},
        {"content": None},
        {"channel": "fax"},
        {"direction": "sideways"},
        {"environment": "staging"},
        {"status": "lost"},
        {"segments": True},
        {"segments": "2"},
        {"attempts": None},
        {"credits": Decimal("NaN")},
        {"credits": Decimal("Infinity")},
        {"credits": 2},
        {"error_code": "x\ud800", "error_message": "refused"},
        {"error_code": 5},
        {"created_at": "2026-12-06T14:00:00Z"},
        {"scheduled_at": datetime(2026, 12, 6)},
        {"to_address": None},
        {"provider_message_id": "\udc00"},
    ],
)
def test_what_the_model_would_coerce_or_refuse_takes_the_model(changes: dict[str, Any]) -> None:
    _same(_message(**changes), [(Status.QUEUED, datetime(2026, 12, 6, tzinfo=UTC), True, None)])


@pytest.mark.parametrize(
    "event",
    [
        ("lost", datetime(2026, 12, 6, tzinfo=UTC), True, None),
        (Status.SENT, "2026-12-06", True, None),
        (Status.SENT, datetime(2026, 12, 6, tzinfo=UTC), 1, None),
        (Status.SENT, datetime(2026, 12, 6, tzinfo=UTC), True, "retry\ud800"),
    ],
)
def test_an_event_the_model_would_coerce_or_refuse_takes_the_model(event: Any) -> None:
    _same(_message(), [event])


def test_one_moment_shown_in_two_zones_is_shown_as_each() -> None:
    at = datetime(2026, 12, 6, 14, 0, 0, 5, tzinfo=UTC)
    elsewhere = at.astimezone(ZoneInfo("Europe/Rome"))  # equal to it, shown otherwise
    message = _message(created_at=at, updated_at=elsewhere)
    _same(message, [(Status.QUEUED, at, True, None), (Status.SENT, elsewhere, True, None)])
    stored = _message(created_at=at, updated_at=at)
    _same(stored, [(stored.status, at, True, None)])
