"""WhatsApp Cloud API tests: the Graph fake on a real socket, an application with
the real kinds, a production account with a ``whatsapp_cloud`` provider pointing
at the fake, and the fake posting Meta's webhooks to that provider's inbound URL.

What Tidings tells its users is read from the outbox (the events its webhook
endpoints are sent, in order): production webhooks must be https, and their
delivery is the webhook tests' subject."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import make_settings
from tests.fakes.graph_api import GraphApi
from tests.providers.helpers import FAST, app_running, http, production_token
from tests.support.providers import add_provider
from tests.support.users import TestUser, create_test_user
from tidings.core.ids import new_id
from tidings.messages.models import OutboxEvent
from tidings.providers.registry import default_kinds
from tidings.settings import Settings
from tidings.webhooks.models import WebhookEndpoint


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    return make_settings(data_dir, sqlite_url, **FAST)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with app_running(settings, kinds=default_kinds()) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with http(app) as connection:
        yield connection


@pytest.fixture
async def graph() -> AsyncIterator[GraphApi]:
    fake = GraphApi()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@dataclass
class Business:
    """A production account wired to the fake: its user, token and provider."""

    user: TestUser
    token: str
    provider_id: str

    @property
    def inbound_path(self) -> str:
        return f"/inbound/whatsapp/{self.provider_id}"


@pytest.fixture
async def business(app: FastAPI, client: httpx.AsyncClient, graph: GraphApi) -> Business:
    user = await create_test_user(app)
    token = await production_token(app, client, user)
    provider_id = await add_provider(
        app, user.account_id, "whatsapp", "whatsapp_cloud", config=graph.provider_config()
    )
    await subscribe(app, user.account_id)
    graph.webhook_client = client
    graph.webhook_url = f"/inbound/whatsapp/{provider_id}"
    # Adding the provider syncs its template catalog in the background; tests that
    # then change Meta's templates must not race that first read.
    for _ in range(400):
        if any(r.method == "GET" and r.path.endswith("/message_templates") for r in graph.requests):
            break
        await asyncio.sleep(0.025)
    else:
        raise AssertionError("the first template sync never read the catalog")
    return Business(user, token, provider_id)


async def subscribe(app: FastAPI, account_id: str) -> None:
    """An enabled production endpoint wanting every event, so that events are
    written (the API takes only https URLs in production; this one never resolves,
    its deliveries are not what these tests read)."""
    ctx = app.state.ctx
    now = datetime.now(UTC)
    async with ctx.sessions() as session:
        session.add(
            WebhookEndpoint(
                id=new_id("whk"),
                account_id=account_id,
                environment="production",
                url="https://hooks.example.invalid/tidings",
                events=["*"],
                description=None,
                enabled=True,
                secret=ctx.key_ring.seal("whsec_" + "a" * 32),
                created_at=now,
                updated_at=now,
            )
        )
        await session.commit()


async def outbox(app: FastAPI, account_id: str) -> list[OutboxEvent]:
    """The account's webhook events (what its endpoints are sent), oldest first."""
    async with app.state.ctx.sessions() as session:
        rows = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.account_id == account_id).order_by(OutboxEvent.id)
        )
        return list(rows)
