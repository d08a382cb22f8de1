"""What one verdict transaction writes, the same on SQLite and on PostgreSQL.

On PostgreSQL the verdict writer takes two statements (the rows locked with
their accounts' webhook endpoints, then every write and the notification as one
statement: :mod:`tidings.messages.verdict_statement`); on SQLite it takes the
Core paths. One batch of verdicts — accepted with two parts and a report, a
retryable error, a permanent error, and an acceptance that comes back after its
lease was taken over — must leave the same rows, events, provider ids, inbox
reports and outbox rows on both, tell only the subscribed endpoints' scope, and on
PostgreSQL notify the settled single sends when (and only when) it commits, each
with the answer the API shows for it. An endpoint enabled before the transaction
is heard at once (nothing is cached). The notification's lines fit under
PostgreSQL's payload limit; an answer too long goes as its id alone, and an
older worker's comma-separated ids are still understood.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from tests.conftest import make_settings
from tests.support.databases import POSTGRES_DSN, migrate_to_head
from tests.support.messages import sent_async
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.core.clock import SystemClock
from tidings.core.ids import new_id
from tidings.messages import queue
from tidings.messages.models import Message, MessageEvent, OutboxEvent
from tidings.messages.verdict_feed import (
    PAYLOAD_LIMIT,
    answer_payloads,
    parse_payload,
    payloads,
)
from tidings.messages.verdicts import Verdict, VerdictWriter
from tidings.messages.waiters import VerdictWaiters
from tidings.providers.base import ProviderRef, RawReport
from tidings.providers.errors import PermanentDeliveryError, RetryableDeliveryError
from tidings.providers.models import InboxEvent, ProviderRefRow
from tidings.webhooks.models import WebhookEndpoint

PROVIDER = "prv_verdicttest"
# A bound against hangs, not a speed check.
HEAR_TIMEOUT_SECONDS = 30


@pytest.fixture
async def api_only(
    data_dir: Path, database_url: tuple[str, str | None]
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, str, str]]:
    """An API process that does not dispatch: what it stores waits for this test."""
    application = create_app(make_settings(data_dir, database_url, dispatch=False))
    await migrate_to_head(application)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            user = await create_test_user(application)
            token = await login(http, user)
            yield application, http, token, user.account_id


def _endpoint(account_id: str, environment: str, events: list[str], enabled: bool) -> Any:
    now = datetime.now(UTC)
    return WebhookEndpoint(
        id=new_id("whk"),
        account_id=account_id,
        environment=environment,
        url="https://hooks.example.com/in",
        events=events,
        enabled=enabled,
        secret="sealed",
        created_at=now,
        updated_at=now,
    )


async def test_a_batch_of_verdicts_writes_the_same_on_both_databases(
    api_only: tuple[FastAPI, httpx.AsyncClient, str, str],
) -> None:
    app, http, token, account_id = api_only
    ctx = app.state.ctx
    sessions = ctx.sessions
    feed = ctx.runtime.verdict_feed
    postgres = feed is not None
    accepted, retried, refused, late = await sent_async(http, token, 4)
    async with sessions() as session:
        session.add_all(
            [
                # Only "message.sent" in the sandbox is wanted; the others must not count.
                _endpoint(account_id, "sandbox", ["message.sent"], enabled=True),
                _endpoint(account_id, "sandbox", ["*"], enabled=False),
                _endpoint(account_id, "production", ["*"], enabled=True),
            ]
        )
        now = datetime.now(UTC)
        rows = await queue.lease(
            session,
            [accepted, retried, refused, late],
            owner="w:1",
            until=now + timedelta(minutes=5),
        )
        # Another worker took the last one over after our lease ran out.
        await session.execute(update(Message).where(Message.id == late).values(lease_owner="w:2"))
        await session.commit()
    assert len(rows) == 4

    heard: list[str] = []
    listener = None
    if postgres:
        listener = await asyncpg.connect(POSTGRES_DSN)
        await listener.add_listener(feed.channel, lambda *args: heard.append(args[3]))
    waiters = VerdictWaiters()
    waited = waiters.register(accepted)
    writer = VerdictWriter(
        clock=SystemClock(),
        settings=ctx.settings.delivery,
        waiters=waiters,
        worker="w",
        channel=feed.channel if postgres else None,
    )
    batch = [
        Verdict(
            accepted,
            "w:1",
            provider="sandbox",
            provider_id=PROVIDER,
            refs=(ProviderRef("ext-1", part=1), ProviderRef("ext-2", part=2)),
            reports=(RawReport("receipt-1", {"id": "ext-1", "stat": "DELIVRD"}, 30.0),),
        ),
        Verdict(
            retried,
            "w:1",
            provider="sandbox",
            provider_id=PROVIDER,
            error=RetryableDeliveryError("provider_timeout", "No answer."),
        ),
        Verdict(
            refused,
            "w:1",
            provider="sandbox",
            provider_id=PROVIDER,
            error=PermanentDeliveryError("invalid_number", "No such number."),
        ),
        Verdict(
            late, "w:1", provider="sandbox", provider_id=PROVIDER, refs=(ProviderRef("ext-9"),)
        ),
    ]
    try:
        async with sessions() as session:
            settled = await writer.apply(session, batch)
            await asyncio.sleep(0.2)
            # Nothing is told before the commit.
            assert heard == []
            await session.commit()
        if postgres:
            async with asyncio.timeout(HEAR_TIMEOUT_SECONDS):
                while not heard:
                    await asyncio.sleep(0.01)
    finally:
        if listener is not None:
            await listener.close()

    assert sorted(settled) == sorted([accepted, refused])
    answer = settled[accepted]
    assert answer is not None
    assert answer["status"] == "sent"
    events_answered = answer["events"]
    assert isinstance(events_answered, list)
    assert [event["status"] for event in events_answered] == ["queued", "sent"]
    assert not waited.done()  # resolving is the dispatcher's, once committed
    if postgres:
        named: dict[str, str | None] = {}
        for payload in heard:
            named.update(parse_payload(payload))
        assert sorted(named) == sorted([accepted, refused, late])
        # Each answer went with the notification: what the API shows, read back.
        for message_id, sent_answer in named.items():
            assert sent_answer is not None
            shown = await http.get(f"/sandbox/api/v4/messages/{message_id}", headers=bearer(token))
            assert json.loads(sent_answer) == shown.json()
        assert json.loads(named[accepted] or "") == answer

    async with sessions() as session:
        messages = {
            row.id: row
            for row in (
                await session.scalars(
                    select(Message).where(Message.id.in_([accepted, retried, refused, late]))
                )
            ).all()
        }
        events = [
            (event.message_id, event.status, event.applied, event.kind, event.detail)
            for event in await session.scalars(select(MessageEvent).order_by(MessageEvent.id))
        ]
        outbox = [
            (event.type, event.subject_id, event.environment, event.payload["status"])
            for event in await session.scalars(select(OutboxEvent))
        ]
        refs = sorted(
            (ref.external_id, ref.message_id, ref.part)
            for ref in await session.scalars(select(ProviderRefRow))
        )
        reports = [
            (report.provider_id, report.dedupe_key, report.payload, report.state)
            for report in await session.scalars(select(InboxEvent))
        ]

    sent = messages[accepted]
    assert (sent.status, sent.provider, sent.provider_id, sent.provider_message_id) == (
        "sent",
        "sandbox",
        PROVIDER,
        "ext-1",
    )
    assert sent.lease_owner is None and sent.next_attempt_at is None
    again = messages[retried]
    assert again.status == "queued" and again.lease_owner is None
    assert (again.attempts, again.error_code, again.provider_id) == (
        1,
        "provider_timeout",
        PROVIDER,
    )
    assert again.next_attempt_at is not None and again.next_attempt_at > now
    failed = messages[refused]
    assert (failed.status, failed.error_code, failed.error_message) == (
        "failed",
        "invalid_number",
        "No such number.",
    )
    assert failed.lease_owner is None and failed.next_attempt_at is None
    taken_over = messages[late]
    # The status machine takes a late "sent": the message leaves the queue with it.
    assert (taken_over.status, taken_over.lease_owner, taken_over.provider_message_id) == (
        "sent",
        None,
        "ext-9",
    )
    retry_detail = _retry_detail(events, retried)
    # Each message's first event (queued, when it was stored) left out.
    written = [event for event in events if (event[1], event[3]) != ("queued", None)]
    assert sorted(written, key=lambda event: event[0]) == sorted(
        [
            (accepted, "sent", True, None, {"worker": "w"}),
            (retried, "queued", False, "retry", retry_detail),
            (refused, "failed", True, None, None),
            (late, "sent", True, None, {"worker": "w", "late": True}),
        ],
        key=lambda event: event[0],
    )
    assert retry_detail["error"] == {"code": "provider_timeout", "message": "No answer."}
    assert retry_detail["providerId"] == PROVIDER
    assert sorted(outbox) == sorted(
        [
            ("message.sent", accepted, "sandbox", "sent"),
            ("message.sent", late, "sandbox", "sent"),
        ]
    )
    assert refs == [("ext-1", accepted, 1), ("ext-2", accepted, 2), ("ext-9", late, None)]
    assert reports == [(PROVIDER, "receipt-1", {"id": "ext-1", "stat": "DELIVRD"}, "pending")]


def _retry_detail(events: list[tuple[Any, ...]], message_id: str) -> dict[str, Any]:
    """The detail of the message's retry event."""
    (detail,) = [event[4] for event in events if event[0] == message_id and event[3] == "retry"]
    assert isinstance(detail, dict)
    return detail


def test_answers_travel_in_payloads_under_the_limit() -> None:
    small = {"id": "msg_1", "status": "sent", "body": "é"}
    large = {"id": "msg_2", "status": "sent", "body": "x" * (PAYLOAD_LIMIT + 10)}
    many = {f"msg_{index:05d}": {**small, "id": f"msg_{index:05d}"} for index in range(200)}
    answers: dict[str, dict[str, object] | None] = {**many, "msg_2": large, "msg_3": None}
    chunks = answer_payloads(answers)
    assert len(chunks) > 1
    assert all(len(chunk.encode()) <= PAYLOAD_LIMIT for chunk in chunks)
    named: dict[str, str | None] = {}
    for chunk in chunks:
        named.update(parse_payload(chunk))
    assert list(named) == list(answers)
    assert named["msg_2"] is None and named["msg_3"] is None
    assert json.loads(named["msg_00007"] or "") == many["msg_00007"]
    # What an older worker sends: ids, comma-separated.
    assert parse_payload(payloads(["msg_a", "msg_b"])[0]) == {"msg_a": None, "msg_b": None}
    assert parse_payload(answer_payloads({"msg_c": None})[0]) == {"msg_c": None}
