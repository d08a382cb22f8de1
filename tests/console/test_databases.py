"""The console's own queries (tidings/console/queries.py) on SQLite and PostgreSQL:
the overview's counts and failures, a message's webhook deliveries and sandbox emails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head
from tests.support.users import create_test_user
from tests.webhooks.conftest import FAST_WEBHOOKS
from tidings.app import create_app
from tidings.console import queries
from tidings.core.environments import Environment
from tidings.core.ids import new_id
from tidings.core.tenancy import TenantScope
from tidings.messages.models import Message
from tidings.providers.simulator.mailbox import SandboxEmail
from tidings.settings import Settings
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    return make_settings(data_dir, database_url, webhooks=FAST_WEBHOOKS, dispatch=False)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    await migrate_to_head(application)
    async with application.router.lifespan_context(application):
        yield application


def _message(account_id: str, environment: str, status: str, at: datetime) -> Message:
    return Message(
        id=new_id("msg"),
        account_id=account_id,
        environment=environment,
        channel="sms",
        direction="outbound",
        status=status,
        to_address="+393331234567",
        content={},
        created_at=at,
        updated_at=at,
    )


async def test_the_console_queries_stay_in_their_scope(app: FastAPI) -> None:
    ada = await create_test_user(app)
    grace = await create_test_user(app, "grace@example.com")
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    sandbox = TenantScope(ada.account_id, Environment.SANDBOX)
    async with app.state.ctx.sessions() as session:
        mine = [
            _message(ada.account_id, "sandbox", "delivered", now),
            _message(ada.account_id, "sandbox", "failed", now),
            _message(ada.account_id, "production", "failed", now),
            _message(grace.account_id, "sandbox", "failed", now),
        ]
        session.add_all(mine)
        await session.flush()
        for account_id, url in (
            (ada.account_id, "https://a.example/h"),
            (grace.account_id, "https://g.example/h"),
        ):
            endpoint = WebhookEndpoint(
                id=new_id("whk"),
                account_id=account_id,
                environment="sandbox",
                url=url,
                events=["message.*"],
                secret="x",
                created_at=now,
                updated_at=now,
            )
            session.add(endpoint)
            await session.flush()
            session.add(
                WebhookDelivery(
                    id=new_id("dlv"),
                    endpoint_id=endpoint.id,
                    event_id=new_id("evt"),
                    event_type="message.delivered",
                    subject_id=mine[0].id,
                    payload={},
                    event_at=now,
                    status="pending",
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        for account_id in (ada.account_id, grace.account_id):
            session.add(
                SandboxEmail(
                    id=f"sbx.{account_id}",
                    message_id=mine[0].id,
                    account_id=account_id,
                    environment="sandbox",
                    mime=b"Subject: hi\r\n\r\nhello",
                    created_at=now,
                )
            )
        await session.commit()

        counts = await queries.counts_since(session, sandbox, midnight)
        assert [(c.channel, c.by_status, c.total) for c in counts] == [
            ("sms", {"delivered": 1, "failed": 1}, 2)
        ]
        assert await queries.counts_since(session, sandbox, now + timedelta(seconds=1)) == []
        failures = await queries.recent_failures(session, sandbox)
        assert [m.id for m in failures] == [mine[1].id]
        deliveries = await queries.deliveries_of_message(session, sandbox, mine[0].id)
        assert [d.endpoint_url for d in deliveries] == ["https://a.example/h"]
        emails = await queries.sandbox_emails_of_message(session, sandbox, mine[0].id)
        assert emails == [f"sbx.{ada.account_id}"]
        production = TenantScope(ada.account_id, Environment.PRODUCTION)
        assert await queries.deliveries_of_message(session, production, mine[0].id) == []
