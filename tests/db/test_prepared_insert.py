"""Rows bound before their transaction are stored exactly as the same rows inserted
through ``insert_rows`` (SQLite, where they are bound; PostgreSQL, where they are not)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_settings
from tidings.accounts.models import Account
from tidings.db import migrate
from tidings.db.engine import build_engine, build_sessionmaker
from tidings.db.prepared_insert import prepare_insert
from tidings.messages import status_writer
from tidings.messages.models import Message, MessageEvent
from tidings.messages.service import transient_message
from tidings.messages.status import Status

ACCOUNT = "acc_01PREPAREDINSERT0000000000"
AT = datetime(2026, 12, 6, 17, 5, 4, 123456, tzinfo=UTC)


def _message(message_id: str) -> Message:
    return transient_message(
        id=message_id,
        account_id=ACCOUNT,
        environment="sandbox",
        channel="sms",
        direction="outbound",
        to_address="+393331234567",
        from_address="Tidings",
        body="Caffè at 9 — ok?",
        content={"media": [{"url": "https://example.test/a.png"}], "n": 1.5},
        segments=2,
        encoding="UCS-2",
        credits=Decimal("0.0450"),
        attempts=1,
        lease_owner="owner-1",
        next_attempt_at=AT + timedelta(seconds=30),
        scheduled_at=None,
    )


async def _stored(engine: AsyncEngine, message_id: str) -> tuple[dict[str, Any], list[Any]]:
    async with build_sessionmaker(engine)() as session:
        row = (await session.execute(select(Message.__table__).filter_by(id=message_id))).one()
        events = (
            await session.execute(
                select(MessageEvent.status, MessageEvent.at, MessageEvent.applied).filter_by(
                    message_id=message_id
                )
            )
        ).all()
    values = dict(row._mapping)
    del values["id"]
    return values, [tuple(event) for event in events]


async def test_a_prepared_start_stores_what_start_stores(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    engine = build_engine(make_settings(data_dir, database_url))
    await migrate.upgrade(engine)
    try:
        sessions = build_sessionmaker(engine)
        async with sessions() as session:
            session.add(Account(id=ACCOUNT, name="prepared", created_at=AT))
            await session.commit()
        first = status_writer.prepare_start(
            _message("msg_01PREPARED00000000000000A"), Status.QUEUED, AT, engine.dialect
        )
        # Bound where it is SQLite's dialect, left as given elsewhere.
        assert (first.row.bound is not None) == (engine.dialect.name == "sqlite")
        async with sessions() as session:
            await status_writer.write_start(session, first)
            await status_writer.start(
                session, _message("msg_01PREPARED00000000000000B"), Status.QUEUED, AT
            )
            await session.commit()
        prepared = await _stored(engine, "msg_01PREPARED00000000000000A")
        inserted = await _stored(engine, "msg_01PREPARED00000000000000B")
        assert prepared == inserted
        assert prepared[0]["status"] == "queued"
        assert prepared[0]["content"] == _message("msg_x").content
        assert prepared[1] == [("queued", AT, True)]
    finally:
        await engine.dispose()


def test_rows_for_another_database_are_left_as_given() -> None:
    table = Message.__table__
    prepared = prepare_insert(table, ("id",), [("msg_x",)], None)  # type: ignore[arg-type]
    assert prepared.bound is None and list(prepared.rows) == [("msg_x",)]
