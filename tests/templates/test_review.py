"""The sandbox's simulated review: PENDING becomes APPROVED or REJECTED once due,
with one ``template.updated`` outbox event, durably (a fresh reviewer finds it);
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from tests.conftest import make_settings
from tests.support.databases import (
    PostgresSchema,
    migrate_to_head,
    postgres_available,
    require_or_skip,
)
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.core.clock import FrozenClock
from tidings.messages.models import OutboxEvent
from tidings.templates.review import TemplateReviewer, review_due

TEMPLATES = "/sandbox/api/v4/notifications/whatsapp/templates"
BODY = "Hello {{1}}, your table for tonight is ready whenever you arrive."


@asynccontextmanager
async def frozen_app(
    data_dir: Path, database: tuple[str, str | None], *, dispatch: bool
) -> AsyncIterator[tuple[FastAPI, FrozenClock, httpx.AsyncClient, str]]:
    clock = FrozenClock()
    settings = make_settings(
        data_dir, database, dispatch=dispatch, sandbox={"template_review_seconds": 30}
    )
    app = create_app(settings, clock=clock)
    await migrate_to_head(app)
    async with app.router.lifespan_context(app):
        user = await create_test_user(app)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            token = await login(client, user, expiresIn=86400)
            yield app, clock, client, token


@pytest.fixture
async def frozen(
    data_dir: Path, database_url: tuple[str, str | None]
) -> AsyncIterator[tuple[FastAPI, FrozenClock, httpx.AsyncClient, str]]:
    """No background loops: the tests run the sweeps themselves."""
    async with frozen_app(data_dir, database_url, dispatch=False) as running:
        yield running


async def submit(client: httpx.AsyncClient, token: str, name: str, text: str = BODY) -> str:
    answer = await client.post(
        TEMPLATES,
        json={
            "name": name,
            "language": "en",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": text}],
        },
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "PENDING"
    return str(answer.json()["id"])


async def events(app: FastAPI, subject: str) -> list[OutboxEvent]:
    async with app.state.ctx.sessions() as session:
        rows = await session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.subject_id == subject, OutboxEvent.type == "template.updated"
            )
        )
        return list(rows)


async def shown(client: httpx.AsyncClient, token: str, name: str) -> dict[str, Any]:
    answer = await client.get(
        TEMPLATES, params={"name": name, "status": "all"}, headers=bearer(token)
    )
    (template,) = answer.json()["data"]
    return dict(template)


def reviewer(app: FastAPI, clock: FrozenClock) -> TemplateReviewer:
    ctx = app.state.ctx
    return TemplateReviewer(ctx.sessions, ctx.runtime.writer, clock, interval=60)


async def test_review_approves_once_due_with_one_event(
    frozen: tuple[FastAPI, FrozenClock, httpx.AsyncClient, str],
) -> None:
    app, clock, client, token = frozen
    template_id = await submit(client, token, "table_ready")
    fresh = reviewer(app, clock)
    assert await fresh.sweep() == 0
    assert (await shown(client, token, "table_ready"))["status"] == "PENDING"

    clock.advance(timedelta(seconds=31))
    # A reviewer built afresh (as after a restart) finds what is due in the database.
    assert await fresh.sweep() == 1
    assert await fresh.sweep() == 0
    template = await shown(client, token, "table_ready")
    assert template["status"] == "APPROVED" and template["rejectedReason"] is None
    (event,) = await events(app, template_id)
    assert event.environment == "sandbox"
    assert event.payload["status"] == "APPROVED" and event.payload["id"] == template_id
    assert event.payload == template


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("please_reject_me", BODY, "ABUSIVE_CONTENT"),
        ("mostly_variables", "Hi {{1}} {{2}} {{3}} thanks", "INVALID_FORMAT"),
    ],
)
async def test_review_rejects_by_the_documented_rules(
    frozen: tuple[FastAPI, FrozenClock, httpx.AsyncClient, str], name: str, text: str, reason: str
) -> None:
    app, clock, client, token = frozen
    template_id = await submit(client, token, name, text)
    clock.advance(timedelta(seconds=31))
    assert await reviewer(app, clock).sweep() == 1
    template = await shown(client, token, name)
    assert (template["status"], template["rejectedReason"]) == ("REJECTED", reason)
    (event,) = await events(app, template_id)
    assert event.payload["rejectedReason"] == reason
    # A rejected template cannot be sent.
    answer = await client.post(
        "/sandbox/api/v4/whatsapp/notifications",
        json={"to": "+393331234567", "template": {"name": name, "language": "en"}},
        headers=bearer(token),
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "template_not_approved"
    assert "REJECTED" in answer.json()["detail"]


@pytest.fixture
def postgres_database() -> Iterator[tuple[str, str | None]]:
    require_or_skip(postgres_available(), "PostgreSQL")
    with PostgresSchema() as schema:
        yield schema.url, schema.name


async def lock_waits(app: FastAPI) -> int:
    async with app.state.ctx.engine.connect() as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")))


@pytest.mark.postgres
async def test_sweeps_of_two_processes_at_once_decide_once(
    data_dir: Path, postgres_database: tuple[str, str | None]
) -> None:
    """Two sweeps in two transactions, as two processes run them on PostgreSQL: both
    read the template as PENDING; the second's verdict waits for the first's row lock,
    then changes nothing and writes no event."""
    async with frozen_app(data_dir, postgres_database, dispatch=False) as running:
        app, clock, client, token = running
        template_id = await submit(client, token, "raced")
        clock.advance(timedelta(seconds=31))
        now = clock.now()
        sessions = app.state.ctx.sessions
        async with sessions() as first, sessions() as second:
            assert await review_due(first, now) == 1  # decided, not yet committed
            racing = asyncio.create_task(review_due(second, now))
            for _ in range(500):
                if racing.done() or await lock_waits(app):
                    break
                await asyncio.sleep(0.01)
            assert not racing.done(), "the second sweep did not meet the first one's lock"
            await first.commit()
            assert await asyncio.wait_for(racing, 10) == 0
            await second.commit()
        assert len(await events(app, template_id)) == 1
        assert (await shown(client, token, "raced"))["status"] == "APPROVED"


async def test_the_running_loop_reviews_without_help(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    async with frozen_app(data_dir, database_url, dispatch=True) as (app, clock, client, token):
        template_id = await submit(client, token, "looped")
        clock.advance(timedelta(seconds=31))
        app.state.ctx.runtime.template_reviewer.wake()
        for _ in range(500):
            if await events(app, template_id):
                break
            await asyncio.sleep(0.01)
        assert len(await events(app, template_id)) == 1
        assert (await shown(client, token, "looped"))["status"] == "APPROVED"
