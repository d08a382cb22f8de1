"""The multi-row statements store UTC timestamps as SQLAlchemy itself does."""

from __future__ import annotations

from copy import copy
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from tidings.db.base import UtcDateTime
from tidings.db.multirow import StoredTimes, _utc_text, utc_datetime

SQLALCHEMY = UtcDateTime()._cached_bind_processor(sqlite.dialect())
assert SQLALCHEMY is not None

zones = st.one_of(
    st.none(),
    st.just(UTC),
    st.integers(min_value=-14 * 60, max_value=14 * 60).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    ),
)


@given(
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30), timezones=zones)
)
def test_the_text_is_sqlalchemys(moment: datetime) -> None:
    convert = _utc_text()
    assert convert(moment) == SQLALCHEMY(moment)
    # Again: the kept text.
    assert convert(moment) == SQLALCHEMY(moment)


def test_none_and_other_types() -> None:
    convert = _utc_text()
    assert convert(None) is None
    with pytest.raises(TypeError):
        convert("2026-01-01")


READ = UtcDateTime()._cached_result_processor(sqlite.dialect(), None)
assert READ is not None


@given(
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30), timezones=zones)
)
def test_a_stored_time_reads_back_as_sqlalchemy_reads_it(moment: datetime) -> None:
    stored = SQLALCHEMY(moment)
    read = utc_datetime(stored)
    assert read == READ(stored)
    assert read is not None and read.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01 10:11:12.123456",
        "2026-01-01 10:11:12",
        "2026-01-01T10:11",
        "2026-01-01 10",
        "2026-01-01",
        "2026-01-01 10:11:12Z",
        "2026-01-01 10:11:12.123+00:00",
        "2026-01-01T10:11:12+02:00",
        "2026-01-01 10:11:12-05:30",
    ],
)
def test_stored_texts_of_other_shapes_read_as_before(text: str) -> None:
    # What the general parse gives (a naive text is UTC; an offset is kept as the
    # same instant in UTC), for texts other writers (or hands) may have stored.
    parsed = datetime.fromisoformat(text)
    expected = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    read = utc_datetime(text)
    assert read == expected and read is not None and read.tzinfo is UTC
    assert read.isoformat() == expected.isoformat()
    with pytest.raises(ValueError):
        utc_datetime(text + "x")


@given(
    st.lists(
        st.datetimes(
            min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30), timezones=zones
        ),
        max_size=6,
    )
)
def test_times_shared_by_a_write_are_sqlalchemys_text(moments: list[datetime]) -> None:
    times = StoredTimes()
    # Each value twice (two statements of one write), and equal values apart.
    for moment in [*moments, *moments, *(copy(moment) for moment in moments)]:
        assert times(moment) == SQLALCHEMY(moment)
    assert times(None) is None
