"""The 24-hour window follows the contact's last inbound message (injected clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from tests.support.databases import migrate_to_head
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.core.clock import FrozenClock
from tidings.settings import Settings

CHAT = "/sandbox/api/v4/whatsapp/chats/+15550000006/message"


@pytest.fixture
async def frozen(settings: Settings) -> AsyncIterator[tuple[FastAPI, FrozenClock]]:
    clock = FrozenClock()
    app = create_app(settings, clock=clock)
    await migrate_to_head(app)
    async with app.router.lifespan_context(app):
        yield app, clock


async def test_inbound_opens_the_window_for_24_hours(frozen: tuple[FastAPI, FrozenClock]) -> None:
    app, clock = frozen
    user = await create_test_user(app)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        token = await login(client, user, expiresIn=86400)
        closed = await client.post(CHAT, json={"body": "Hi"}, headers=bearer(token))
        assert closed.json()["code"] == "outside_customer_service_window"
        wrote_in = await client.post(
            "/sandbox/api/v4/sandbox/inbound",
            json={"channel": "whatsapp", "from": "+15550000006", "body": "Hello?"},
            headers=bearer(token),
        )
        assert wrote_in.status_code == 201
        clock.advance(timedelta(hours=23, minutes=59))
        assert (
            await client.post(CHAT, json={"body": "Hi"}, headers=bearer(token))
        ).status_code == 200
        clock.advance(timedelta(minutes=2))
        late = await client.post(CHAT, json={"body": "Hi"}, headers=bearer(token))
        assert late.status_code == 422
        assert late.json()["code"] == "outside_customer_service_window"
        assert "last wrote in at" in late.json()["detail"]
