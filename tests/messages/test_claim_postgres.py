"""The claim and the work channel on PostgreSQL (the scale-out mode's queue).

A claim is one statement that leases due single sends, skipping rows another
transaction holds, says whether batch messages are due too, and leaves its
transaction committing without waiting for its flush when it leased any; alone,
it is a transaction of its own. A process on PostgreSQL dispatching its own
sends (``tidings serve``) still sends a scheduled message when due with every
event. The work channel carries a topic: each listener hears the other
processes' topics, not its own, and a notification without a topic (an older
process) wakes both the dispatcher and the inbox processor; a listening
connection killed by the server comes back, wakes every loop, and hears again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from tests.conftest import make_settings
from tests.support.databases import (
    POSTGRES_DSN,
    PostgresSchema,
    migrate_to_head,
    postgres_available,
    require_or_skip,
)
from tests.support.messages import wait_for
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.db.notify import MESSAGES, REPORTS, WEBHOOKS, WorkNotifier
from tidings.messages import queue
from tidings.messages.models import Message
from tidings.settings import Settings

pytestmark = pytest.mark.postgres

SMS = "/sandbox/api/v4/sms/send"
# A bound against hangs, not a speed check.
HEAR_TIMEOUT_SECONDS = 30


@pytest.fixture
def schema() -> Iterator[PostgresSchema]:
    require_or_skip(postgres_available(), "PostgreSQL")
    with PostgresSchema() as made:
        yield made


def _settings(data_dir: Path, schema: PostgresSchema, **overrides: object) -> Settings:
    return make_settings(data_dir, (schema.url, schema.name), **overrides)


async def _started(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, str]]:
    application = create_app(settings)
    await migrate_to_head(application)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            token = await login(http, await create_test_user(application))
            yield application, http, token


@pytest.fixture
async def api_only(
    data_dir: Path, schema: PostgresSchema
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, str]]:
    """An API process that does not dispatch: what it stores stays due."""
    async for started in _started(_settings(data_dir, schema, dispatch=False)):
        yield started


@pytest.fixture
async def dispatching(
    data_dir: Path, schema: PostgresSchema
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, str]]:
    async for started in _started(_settings(data_dir, schema)):
        yield started


async def _queued(http: httpx.AsyncClient, token: str, count: int) -> list[str]:
    ids = []
    for index in range(count):
        answer = await http.post(
            SMS,
            json={"to": "+393331234567", "body": f"Hi {index}"},
            headers={**bearer(token), "Prefer": "respond-async"},
        )
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    return ids


async def test_claim_leases_due_singles_and_skips_locked_rows(
    api_only: tuple[FastAPI, httpx.AsyncClient, str],
) -> None:
    app, http, token = api_only
    first, second, third = await _queued(http, token, 3)
    sessions = app.state.ctx.sessions
    now = datetime.now(UTC) + timedelta(seconds=1)
    until = now + timedelta(minutes=5)
    async with sessions() as holder:
        # Another worker's claim holds the first message.
        await holder.execute(select(Message.id).where(Message.id == first).with_for_update())
        async with sessions() as session:
            rows, batch_waiting = await queue.claim_singles(
                session, now=now, channels=["sms"], limit=10, owner="w:1", until=until
            )
            unflushed = (await session.execute(text("SHOW synchronous_commit"))).scalar_one()
            await session.commit()
        await holder.rollback()
    assert not batch_waiting
    assert sorted(row["id"] for row in rows) == sorted([second, third])
    assert all(row["lease_owner"] == "w:1" and row["attempts"] == 1 for row in rows)
    assert all(row["next_attempt_at"] == until for row in rows)
    assert "commit_without_flush" not in rows[0]
    # Only leases taken: the commit does not wait for its flush.
    assert unflushed == "off"
    async with sessions() as session:
        found = await session.execute(select(Message.id, Message.lease_owner))
        leased = {message_id: owner for message_id, owner in found}
    assert leased == {first: None, second: "w:1", third: "w:1"}


async def test_claim_alone_commits_and_leasing_nothing_keeps_the_flush(
    api_only: tuple[FastAPI, httpx.AsyncClient, str],
) -> None:
    app, http, token = api_only
    (queued,) = await _queued(http, token, 1)
    sessions = app.state.ctx.sessions
    now = datetime.now(UTC) + timedelta(seconds=1)
    async with sessions() as session:
        none, _ = await queue.claim_singles(
            session, now=now, channels=["whatsapp"], limit=10, owner="w:1", until=now
        )
        untouched = (await session.execute(text("SHOW synchronous_commit"))).scalar_one()
        await session.rollback()
    assert none == [] and untouched == "on"
    rows, batch_waiting = await queue.claim_singles_alone(
        sessions,
        now=now,
        channels=["sms"],
        limit=10,
        owner="w:2",
        until=now,
        batch_channels=["sms"],
        batch_room=10,
    )
    assert [row["id"] for row in rows] == [queued] and not batch_waiting
    # Committed by itself: another session sees the lease.
    async with sessions() as session:
        owner = await session.scalar(select(Message.lease_owner).where(Message.id == queued))
    assert owner == "w:2"


async def test_claim_says_when_batch_messages_are_due(
    api_only: tuple[FastAPI, httpx.AsyncClient, str],
) -> None:
    app, http, token = api_only
    answer = await http.post(
        "/sandbox/api/v4/sms/bulk",
        json={"recipients": [{"to": "+393331234567"}], "body": "Batch"},
        headers=bearer(token),
    )
    assert answer.status_code == 202, answer.text
    now = datetime.now(UTC) + timedelta(seconds=1)
    rows, batch_waiting = await queue.claim_singles_alone(
        app.state.ctx.sessions,
        now=now,
        channels=["sms"],
        limit=10,
        owner="w:1",
        until=now,
        batch_channels=["sms"],
        batch_room=10,
    )
    assert rows == [] and batch_waiting
    _, no_room = await queue.claim_singles_alone(
        app.state.ctx.sessions,
        now=now,
        channels=["sms"],
        limit=10,
        owner="w:1",
        until=now,
        batch_channels=["sms"],
        batch_room=0,
    )
    assert not no_room


async def test_scheduled_message_is_sent_when_due_on_postgres(
    dispatching: tuple[FastAPI, httpx.AsyncClient, str],
) -> None:
    _, http, token = dispatching
    # Far enough ahead that a slow request on a loaded machine still finds it future.
    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    answer = await http.post(
        SMS,
        json={"to": "+393331234567", "body": "Soon", "scheduledAt": soon},
        headers=bearer(token),
    )
    assert answer.status_code == 202, answer.text
    final = await wait_for(http, token, answer.json()["id"], {"delivered"}, timeout=60)
    assert [e["status"] for e in final["events"] if e["applied"]] == [
        "scheduled",
        "queued",
        "sent",
        "delivered",
    ]
    waited = await http.post(
        SMS, json={"to": "+393331234567", "body": "Now"}, headers=bearer(token)
    )
    assert waited.status_code == 200 and waited.json()["status"] in ("sent", "delivered")


async def _heard(topics: list[str], expected: list[str]) -> None:
    async with asyncio.timeout(HEAR_TIMEOUT_SECONDS):
        while sorted(topics) != sorted(expected):
            await asyncio.sleep(0.01)


async def test_work_channel_carries_topics_to_other_processes(
    data_dir: Path, schema: PostgresSchema
) -> None:
    settings = _settings(data_dir, schema)
    api, worker = WorkNotifier(settings), WorkNotifier(settings)
    at_api: list[str] = []
    at_worker: list[str] = []
    try:
        await api.listen(at_api.append)
        await worker.listen(at_worker.append)
        api.notify(MESSAGES)
        api.notify(MESSAGES)
        await _heard(at_worker, [MESSAGES])
        worker.notify(WEBHOOKS)
        await _heard(at_api, [WEBHOOKS])
        api.notify(REPORTS)
        await _heard(at_worker, [MESSAGES, REPORTS])
        # A notification without a topic, as an older process sends it.
        connection = await asyncpg.connect(POSTGRES_DSN)
        try:
            await connection.execute(f'NOTIFY "{worker.channel}"')
        finally:
            await connection.close()
        await _heard(at_worker, [MESSAGES, REPORTS, MESSAGES, REPORTS])
        # Each has heard the other's (and the old one's), never its own.
        await _heard(at_api, [WEBHOOKS, MESSAGES, REPORTS])
    finally:
        await api.close()
        await worker.close()


async def test_work_listener_comes_back_after_its_connection_is_killed(
    data_dir: Path, schema: PostgresSchema
) -> None:
    settings = _settings(data_dir, schema)
    api, worker = WorkNotifier(settings), WorkNotifier(settings)
    at_worker: list[str] = []
    try:
        await worker.listen(at_worker.append)
        assert worker.connections == 1
        connection = await asyncpg.connect(POSTGRES_DSN)
        try:
            killed = await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                worker.channel,
            )
        finally:
            await connection.close()
        assert killed == 1
        # Back: every loop is woken once (what was committed meanwhile was told to nobody).
        await _heard(at_worker, [MESSAGES, REPORTS, WEBHOOKS])
        assert worker.connections == 2
        api.notify(MESSAGES)
        await _heard(at_worker, [MESSAGES, REPORTS, WEBHOOKS, MESSAGES])
    finally:
        await api.close()
        await worker.close()
