"""A batch's cancel is a status change like any other: each canceled message has
its event and fires ``message.canceled`` to the endpoints subscribed to it, and the
credits come back as one refund for the batch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import make_settings
from tests.messages.test_credits import _balance, _production_sms
from tests.support.users import TestUser, bearer, login
from tests.webhooks.conftest import FAST_WEBHOOKS
from tests.webhooks.hook_receiver import Receiver
from tidings.credits.models import CreditEntry
from tidings.messages.models import MessageEvent
from tidings.settings import Settings


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    # The receiver listens on loopback.
    return make_settings(
        data_dir, database_url, webhooks={**FAST_WEBHOOKS, "allow_private_in_sandbox": True}
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    try:
        yield hook
    finally:
        await hook.stop()


def later() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


async def test_canceled_batch_messages_fire_message_canceled(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, receiver: Receiver
) -> None:
    token = await login(client, user)
    hook = await client.post(
        "/sandbox/api/v4/webhooks/create",
        json={"url": receiver.url, "events": ["message.canceled"]},
        headers=bearer(token),
    )
    assert hook.status_code == 201, hook.text
    recipients = [{"to": f"+3933312{i:05d}"} for i in range(5)]
    answer = await client.post(
        "/sandbox/api/v4/sms/bulk",
        json={"recipients": recipients, "body": "Tomorrow", "scheduledAt": later()},
        headers=bearer(token),
    )
    batch_id = answer.json()["id"]
    canceled = await client.post(
        f"/sandbox/api/v4/batches/{batch_id}/cancel", headers=bearer(token)
    )
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["counts"] == {"canceled": 5}

    deadline = time.monotonic() + 15
    while len(receiver.delivered()) < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    events = [request.json() for request in receiver.delivered()]
    assert {event["type"] for event in events} == {"message.canceled"}
    told = {event["data"]["id"]: event["data"] for event in events}
    listed = await client.get(
        "/sandbox/api/v4/messages", params={"batchId": batch_id}, headers=bearer(token)
    )
    assert set(told) == {message["id"] for message in listed.json()["data"]}
    for data in told.values():
        assert data["status"] == "canceled" and data["batchId"] == batch_id
        assert data["error"]["code"] == "batch_canceled"
    async with app.state.ctx.sessions() as session:
        statuses = list(
            await session.scalars(
                select(MessageEvent.status).where(MessageEvent.message_id.in_(list(told)))
            )
        )
    assert sorted(statuses) == ["canceled"] * 5 + ["scheduled"] * 5


async def test_a_canceled_batch_is_refunded_once(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await _production_sms(app, user, Decimal("10"))
    token = await login(client, user, base="")
    answer = await client.post(
        "/api/v4/sms/bulk",
        json={
            "recipients": [{"to": f"+39333123400{i}"} for i in range(3)],
            "body": "y" * 200,
            "scheduledAt": later(),
        },
        headers=bearer(token),
    )
    assert answer.status_code == 202, answer.text
    assert await _balance(client, token) == 4.0
    batch_id = answer.json()["id"]
    canceled = await client.post(f"/api/v4/batches/{batch_id}/cancel", headers=bearer(token))
    assert canceled.status_code == 200, canceled.text
    assert await _balance(client, token) == 10.0
    async with app.state.ctx.sessions() as session:
        refunds = list(
            await session.scalars(select(CreditEntry).where(CreditEntry.reason == "refund"))
        )
    assert [(entry.batch_id, entry.amount) for entry in refunds] == [(batch_id, Decimal(6))]
