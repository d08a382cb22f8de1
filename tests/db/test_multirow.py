"""The multi-row statements store UTC timestamps as SQLAlchemy itself does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from tidings.db.base import UtcDateTime
from tidings.db.multirow import _utc_text

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
