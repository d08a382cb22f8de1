"""The row paths agree with the object paths: a message's webhook payload and its
API answer built from its row are the ones built from the ORM object, and ids
made in bulk are the ids made one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.core.ids import _encode, encode_run, new_id, new_ids
from tidings.messages.models import Message, MessageEvent
from tidings.messages.rows import COLUMNS, _time, answer, payload
from tidings.messages.schemas import message_out, message_payload
from tidings.messages.status import Status

texts = st.one_of(st.none(), st.text(max_size=20))
moments = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    body=texts,
    sender=texts,
    error=st.one_of(st.none(), st.sampled_from(["provider_rejected", "batch_canceled"])),
    scheduled=moments,
    created=moments.filter(lambda moment: moment is not None),
    credits=st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False),
    subject=texts,
    batch=st.one_of(st.none(), st.just("bat_01JDQ3W6V2X4N8ZB7YH5K9T0RM")),
)
def test_the_payload_of_a_row_is_the_payload_of_the_message(
    body: str | None,
    sender: str | None,
    error: str | None,
    scheduled: datetime | None,
    created: datetime,
    credits: Decimal,
    subject: str | None,
    batch: str | None,
) -> None:
    message = Message(
        id=new_id("msg"),
        account_id="acc_x",
        environment="sandbox",
        channel="email" if subject is not None else "sms",
        direction="outbound",
        status="failed" if error else "sent",
        to_address="+393331234567",
        from_address=sender,
        body=body,
        content={"subject": subject} if subject is not None else {},
        segments=1,
        encoding="GSM-7",
        credits=credits,
        batch_id=batch,
        provider="sandbox",
        provider_message_id="sbx.1",
        error_code=error,
        error_message="refused" if error else None,
        scheduled_at=scheduled,
        attempts=2,
        created_at=created,
        updated_at=created + timedelta(seconds=1, microseconds=250),
    )
    row = {column.key: getattr(message, column.key) for column in COLUMNS}
    assert payload(row) == message_payload(message)


@settings(max_examples=100, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from([status.value for status in Status]),
            moments.filter(lambda moment: moment is not None),
            st.booleans(),
            st.one_of(st.none(), st.sampled_from(["retry", "opened", "clicked"])),
        ),
        max_size=4,
    ),
    error=st.one_of(st.none(), st.just("provider_rejected")),
)
def test_the_answer_of_a_row_is_the_answer_of_the_message(
    events: list[tuple[str, datetime, bool, str | None]], error: str | None
) -> None:
    created = datetime(2026, 11, 24, 8, 0, 0, 123456, tzinfo=UTC)
    message = Message(
        id=new_id("msg"),
        account_id="acc_x",
        environment="sandbox",
        channel="sms",
        direction="outbound",
        status="failed" if error else "sent",
        to_address="+393331234567",
        from_address="Tidings",
        body="Hi",
        content={},
        segments=1,
        encoding="GSM-7",
        credits=Decimal("0.05"),
        provider_message_id="sbx.1",
        error_code=error,
        error_message="refused" if error else None,
        attempts=1,
        created_at=created,
        updated_at=created,
    )
    row = {column.key: getattr(message, column.key) for column in COLUMNS}
    objects = [
        MessageEvent(message_id=message.id, status=status, at=at, applied=applied, kind=kind)
        for status, at, applied, kind in events
    ]
    expected = message_out(message, objects).model_dump(mode="json", by_alias=True)
    assert answer(row, events) == expected


def test_bulk_ids_are_encoded_as_one_by_one_across_boundaries() -> None:
    base = (0x0193A5B7C9D1 << 80) | ((1 << 20) - 2500)
    values = range(base, base + 5_000)
    assert encode_run("msg", values) == ["msg_" + _encode(value) for value in values]


def test_bulk_ids_increase_and_follow_on() -> None:
    ids = new_ids("msg", 5_000)
    assert ids == sorted(ids) and len(set(ids)) == 5_000
    assert new_id("msg") > ids[-1]


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 2),
        max_value=datetime(9998, 12, 30),
        timezones=st.one_of(
            st.none(),
            st.just(UTC),
            st.integers(min_value=-14 * 60, max_value=14 * 60).map(
                lambda minutes: timezone(timedelta(minutes=minutes))
            ),
        ),
    )
)
def test_a_time_is_the_api_text_of_its_instant_in_utc(moment: datetime) -> None:
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    text = aware.astimezone(UTC).isoformat()
    assert _time(moment) == text[:-6] + "Z"
    # Again (a UTC value's text is kept), and for an equal value of another zone.
    assert _time(moment) == text[:-6] + "Z"
    assert _time(aware.astimezone(UTC)) == text[:-6] + "Z"
