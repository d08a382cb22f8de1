"""On SQLite the delivery side reads and writes through the driver
(:mod:`tidings.db.driver`, :mod:`tidings.db.multirow`), not through Core: what it
reads must be what Core reads (values and their types: aware UTC datetimes,
decoded JSON, decimals, booleans), and what it writes what Core wrote. The status
machine's text lookups agree with the enum's. A status change writes only the
columns it changed, and leaves the others as they were."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import make_settings
from tests.support.messages import queued_sends
from tidings.messages import status_writer
from tidings.messages.models import Message
from tidings.messages.rows import _BY_ID, _EVENTS, COLUMNS, events_of, load_rows
from tidings.messages.status import FINAL, Status, applies, status_of
from tidings.messages.status_writer import WRITTEN, RowChange
from tidings.providers.base import RawReport
from tidings.providers.models import InboxEvent, ProviderRefRow
from tidings.providers.repository import (
    INBOX_COLUMNS,
    InboxRepository,
    RefRepository,
    inbox_rows,
    inbox_values,
)
from tidings.webhooks.models import WebhookEndpoint
from tidings.webhooks.subscriptions import Subscriptions

SMS = "/sandbox/api/v4/sms/send"


@pytest.fixture
async def stored(
    data_dir: Path, sqlite_url: tuple[str, str | None]
) -> AsyncIterator[tuple[FastAPI, list[str]]]:
    """An API process on SQLite that does not dispatch, with two queued messages."""
    async with queued_sends(make_settings(data_dir, sqlite_url, dispatch=False), 2) as found:
        application, _, _, ids = found
        yield application, ids


def _typed(values: dict[str, object]) -> dict[str, tuple[type, object]]:
    return {key: (type(value), value) for key, value in values.items()}


async def test_rows_and_events_read_on_the_driver_are_the_ones_core_reads(
    stored: tuple[FastAPI, list[str]],
) -> None:
    app, ids = stored
    async with app.state.ctx.sessions() as session:
        connection = await session.connection()
        core = {
            row["id"]: dict(row)
            for row in (await connection.execute(_BY_ID, {"ids": ids})).mappings()
        }
        driver = await load_rows(session, ids)
        assert set(driver) == set(ids)
        for message_id in ids:
            assert _typed(driver[message_id]) == _typed(core[message_id])
            assert list(driver[message_id]) == [column.key for column in COLUMNS]
            assert driver[message_id]["created_at"].tzinfo is UTC
            assert isinstance(driver[message_id]["credits"], Decimal)
        core_events = [tuple(row) for row in await connection.execute(_EVENTS, {"ids": ids})]
        events = await events_of(session, ids)
        assert sum(len(found) for found in events.values()) == len(core_events)
        for message_id, status, at, applied, kind in core_events:
            assert (status, at, applied, kind) in events[message_id]
            assert type(applied) is bool
        assert await load_rows(session, []) == {}


async def test_refs_and_inbox_rows_written_and_read_on_the_driver(
    stored: tuple[FastAPI, list[str]],
) -> None:
    app, ids = stored
    now = datetime.now(UTC)
    async with app.state.ctx.sessions() as session:
        refs = RefRepository(session)
        rows = [
            {
                "provider_id": "prv_x",
                "external_id": f"ext-{index}",
                "message_id": message_id,
                "part": index or None,
                "recipient": None,
                "created_at": now,
            }
            for index, message_id in enumerate(ids)
        ]
        await refs.add(rows)
        # A repeated id keeps its first owner.
        await refs.add([{**rows[0], "message_id": ids[1]}])
        assert await refs.refs("prv_x", ["ext-0", "ext-1", "ext-9"]) == {
            "ext-0": (ids[0], None),
            "ext-1": (ids[1], 1),
        }
        stored_refs = (await session.scalars(select(ProviderRefRow))).all()
        assert {ref.created_at for ref in stored_refs} == {now}

        inbox = InboxRepository(session)
        reports = [
            RawReport(dedupe_key="ext-0:delivered", payload={"id": "ext-0", "n": [1, "é"]}),
            RawReport(dedupe_key="ext-1:delivered", payload={"id": "ext-1"}, due_in_seconds=60),
        ]
        assert await inbox.store(inbox_rows("prv_x", reports, now), counted=False) == 0
        # A repeat of a stored report is ignored.
        assert await inbox.store(inbox_rows("prv_x", reports[:1], now), counted=False) == 0
        assert len((await session.scalars(select(InboxEvent))).all()) == 2
        due = await inbox.due(now + timedelta(seconds=1), 10)
        assert [(report.provider_id, report.payload) for report in due] == [
            ("prv_x", {"id": "ext-0", "n": [1, "é"]})
        ]
        assert due[0].received_at == now and due[0].received_at.tzinfo is UTC
        assert due[0].attempts == 0
        due[0].state = "done"
        await inbox.finish(due)
        assert await inbox.due(now + timedelta(seconds=1), 10) == []
        later = await inbox.due(now + timedelta(seconds=61), 10)
        assert [report.payload["id"] for report in later] == ["ext-1"]
        await session.commit()


async def test_a_status_change_writes_only_what_it_changed(
    stored: tuple[FastAPI, list[str]],
) -> None:
    app, ids = stored
    at = datetime.now(UTC)
    async with app.state.ctx.sessions() as session:
        rows = await load_rows(session, ids)
        queue_columns = tuple(
            name for name in ("next_attempt_at", "lease_owner") if rows[ids[0]][name] is not None
        )
        sent = RowChange(
            rows[ids[0]],
            Status.SENT,
            at,
            values={"provider": "simulator", "provider_id": "prv_x", "provider_message_id": "e"},
        )
        plan = status_writer.plan_rows([sent], Subscriptions({}))
        written = ("status", "updated_at", "provider", "provider_id", "provider_message_id")
        assert plan.changed == [(*written, *queue_columns)]
        await status_writer.write_rows(session, plan)
        # A receipt then changes the status and the time alone; a change that does
        # not apply writes nothing but its event.
        later = at + timedelta(seconds=1)
        delivered = RowChange(rows[ids[0]], Status.DELIVERED, later)
        again = RowChange(rows[ids[0]], Status.SENT, later)
        plan = status_writer.plan_rows([delivered, again], Subscriptions({}))
        assert plan.changed == [("status", "updated_at")]
        assert [event[3] for event in plan.events] == [True, False]
        await status_writer.write_rows(session, plan)
        await session.commit()
    async with app.state.ctx.sessions() as session:
        reread = await load_rows(session, ids)
        assert reread == rows
        message = await session.get(Message, ids[0])
        assert message is not None
        assert message.status == "delivered" and message.updated_at == later
        assert message.provider_message_id == "e" and message.lease_owner is None
        assert {name: reread[ids[1]][name] for name in WRITTEN}["status"] == "queued"


def test_status_lookups_by_text_agree_with_the_enum() -> None:
    for status in Status:
        assert status_of(status.value) is Status(status.value)
        for new in Status:
            assert applies(status.value, new) == applies(status, new)
    for wrong in ("nope", "", None, ["sent"]):
        with pytest.raises(ValueError) as expected:
            Status(wrong)  # type: ignore[arg-type]
        with pytest.raises(ValueError) as found:
            status_of(wrong)  # type: ignore[arg-type]
        assert str(found.value) == str(expected.value)


async def test_subscriptions_read_on_the_driver_are_the_ones_core_reads(
    stored: tuple[FastAPI, list[str]],
) -> None:
    app, ids = stored
    now = datetime.now(UTC)
    async with app.state.ctx.sessions() as session:
        account = (await load_rows(session, ids[:1]))[ids[0]]["account_id"]
        endpoints = [
            ("sandbox", ["message.sent"], True),
            ("sandbox", ["message.*"], False),
            ("production", None, True),
            ("production", ["message.delivered", "email.*"], True),
        ]
        session.add_all(
            WebhookEndpoint(
                id=f"whk_{index}",
                account_id=account,
                environment=environment,
                url="https://hooks.example.com/in",
                events=events,
                enabled=enabled,
                secret="sealed",
                created_at=now,
                updated_at=now,
            )
            for index, (environment, events, enabled) in enumerate(endpoints)
        )
        await session.flush()
        for scopes in (
            {(account, "sandbox"), (account, "production")},
            {(account, "sandbox")},
            {(account, "test"), ("acc_none", "sandbox")},
            set(),
        ):
            core = await Subscriptions.load(session, scopes)
            driver = await status_writer.subscriptions_of(session, scopes)
            for scope in (*scopes, (account, "production")):
                for event_type in (
                    "message.sent",
                    "message.delivered",
                    "message.failed",
                    "email.opened",
                ):
                    assert driver.wants(scope, event_type) == core.wants(scope, event_type)
            # The same endpoints' patterns, per scope.
            assert {scope: sorted(found) for scope, found in driver._patterns.items()} == {
                scope: sorted(found) for scope, found in core._patterns.items()
            }


def test_inbox_values_are_inbox_rows_as_tuples() -> None:
    now = datetime.now(UTC)
    reports = [
        RawReport(dedupe_key="k" * 200, payload={"id": "a"}),
        RawReport(dedupe_key="b:delivered", payload={"id": "b"}, due_in_seconds=0.05),
        RawReport(dedupe_key="c:delivered", payload={"id": "c"}, due_in_seconds=0.05),
        RawReport(dedupe_key="c:read", payload={"id": "c", "n": 2}, due_in_seconds=1.5),
    ]
    providers = ["prv_a", "prv_b", "prv_b", "prv_c"]
    expected = [
        tuple(row[name] for name in INBOX_COLUMNS)
        for provider_id, report in zip(providers, reports, strict=True)
        for row in inbox_rows(provider_id, [report], now)
    ]
    assert inbox_values(zip(providers, reports, strict=True), now) == expected


def test_plan_rows_tables_agree_with_the_enum() -> None:
    for status in Status:
        assert status_writer._VALUES[status] == status.value
        assert type(status_writer._VALUES[status]) is str
        assert status_writer._EVENT_TYPES[status] == f"message.{status.value}"
        assert (status in status_writer._CLEARS_ERROR) == (
            status in (Status.SENT, Status.DELIVERED, Status.READ)
        )
        assert (status in status_writer._LEAVES_QUEUE) == (status in FINAL or status == Status.SENT)
