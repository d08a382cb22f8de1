"""Receipts read only the columns their status changes use (``inbound.RECEIPT_KEYS``)
when no webhook endpoint is enabled, and whole rows otherwise: either way every
message is stored as a change from its whole row leaves it, and with an endpoint the
subscribed account's message gets its ``message.delivered`` outbox event with the
payload of the whole message as stored after the change, the others none. The same
on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head
from tests.support.messages import sent_async
from tests.support.users import create_test_user, login
from tidings.app import create_app
from tidings.messages import status_writer
from tidings.messages.inbound import apply_reports
from tidings.messages.models import Message, MessageEvent, OutboxEvent
from tidings.messages.rows import load_rows
from tidings.messages.schemas import message_payload
from tidings.messages.status import Status
from tidings.messages.status_writer import RowChange
from tidings.providers.base import StatusReport
from tidings.providers.repository import RefRepository
from tidings.webhooks.models import WebhookEndpoint

PROVIDER = "prv_receipttest"


@pytest.fixture
async def two_accounts(
    data_dir: Path, database_url: tuple[str, str | None]
) -> AsyncIterator[tuple[FastAPI, list[tuple[str, str]]]]:
    """An API process that does not dispatch; one queued message of a first account
    and two of a second: (account, message id) each."""
    application = create_app(make_settings(data_dir, database_url, dispatch=False))
    await migrate_to_head(application)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            queued = []
            for username, count in (("ada@example.com", 1), ("bob@example.com", 2)):
                user = await create_test_user(application, username)
                token = await login(http, user)
                ids = await sent_async(http, token, count)
                queued += [(user.account_id, message_id) for message_id in ids]
            yield application, queued


@pytest.mark.parametrize("endpoint", [True, False])
async def test_receipts_write_what_whole_rows_would(
    two_accounts: tuple[FastAPI, list[tuple[str, str]]], endpoint: bool
) -> None:
    app, queued = two_accounts
    sessions = app.state.ctx.sessions
    subscribed = queued[0][0]
    ids = [message_id for _, message_id in queued]
    sent_at = datetime.now(UTC)
    async with sessions() as session:
        # A disabled endpoint of the other account's is no enabled endpoint.
        for account_id, enabled in ((subscribed, endpoint), (queued[1][0], False)):
            session.add(
                WebhookEndpoint(
                    id=f"whk_{account_id}",
                    account_id=account_id,
                    environment="sandbox",
                    url="https://hooks.example.com/in",
                    events=["message.delivered", "message.undelivered"],
                    enabled=enabled,
                    secret="sealed",
                    created_at=sent_at,
                    updated_at=sent_at,
                )
            )
        await session.flush()
        assert await status_writer.endpoints_enabled(session) is endpoint
        rows = await load_rows(session, ids)
        await status_writer.change_rows(
            session,
            [
                RowChange(
                    rows[message_id],
                    Status.SENT,
                    sent_at,
                    values={"provider": "sandbox", "provider_id": PROVIDER},
                )
                for message_id in ids
            ],
        )
        await RefRepository(session).add(
            [
                {
                    "provider_id": PROVIDER,
                    "external_id": f"ext-{index}",
                    "message_id": message_id,
                    "part": None,
                    "recipient": None,
                    "created_at": sent_at,
                }
                for index, message_id in enumerate(ids)
            ]
        )
        await session.commit()
    at = sent_at + timedelta(seconds=2)
    reports = [
        StatusReport("ext-0", Status.DELIVERED, at),
        StatusReport("ext-1", Status.DELIVERED, at + timedelta(seconds=1)),
        StatusReport("ext-2", Status.UNDELIVERED, at, "expired", "The message expired."),
        StatusReport("ext-9", Status.DELIVERED, at),
    ]
    async with sessions() as session:
        unmatched = await apply_reports(session, PROVIDER, reports)
        await session.commit()
    assert [report.external_id for report in unmatched] == ["ext-9"]
    async with sessions() as session:
        messages = {
            message.id: message
            for message in await session.scalars(select(Message).where(Message.id.in_(ids)))
        }
        assert [
            (messages[message_id].status, messages[message_id].updated_at) for message_id in ids
        ] == [
            ("delivered", at),
            ("delivered", at + timedelta(seconds=1)),
            ("undelivered", at),
        ]
        failed = messages[ids[2]]
        assert (failed.error_code, failed.error_message) == ("expired", "The message expired.")
        assert all(message.provider_id == PROVIDER for message in messages.values())
        outbox = (
            await session.scalars(select(OutboxEvent).where(OutboxEvent.type != "message.sent"))
        ).all()
        if endpoint:
            # Only the subscribed account's message, with the whole message as stored.
            assert [(event.subject_id, event.type) for event in outbox] == [
                (ids[0], "message.delivered")
            ]
            assert outbox[0].payload == message_payload(messages[ids[0]])
        else:
            assert outbox == []
        events = (
            await session.execute(
                select(MessageEvent.message_id, MessageEvent.status, MessageEvent.applied).where(
                    MessageEvent.message_id.in_(ids), MessageEvent.at >= at
                )
            )
        ).all()
        assert sorted(events) == sorted(
            [
                (ids[0], "delivered", True),
                (ids[1], "delivered", True),
                (ids[2], "undelivered", True),
            ]
        )
