"""Bulk to a list, credits for a whole batch in production, and the
``batch.completed`` event."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.bulk.support import wait_for_batch
from tests.conftest import make_settings
from tests.messages.test_credits import _balance, _production_sms
from tests.support.users import TestUser, bearer, login
from tidings.messages.models import OutboxEvent
from tidings.settings import Settings


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    # The batch.completed subscriber below is a loopback URL: private webhook
    # destinations are off by default.
    return make_settings(data_dir, sqlite_url, webhooks={"allow_private_in_sandbox": True})


async def test_a_batch_to_a_list_uses_each_members_variables(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    created = await client.post(
        "/sandbox/api/v4/lists", json={"name": "Regulars"}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text
    list_id = created.json()["id"]
    added = await client.post(
        f"/sandbox/api/v4/lists/{list_id}/contacts",
        json={
            "contacts": [
                {"phone": "+393331234001", "variables": {"name": "Ada"}},
                {"phone": "+393331234002", "variables": {"name": "Grace"}},
                {"email": "no-phone@example.com", "variables": {"name": "Mail only"}},
            ]
        },
        headers=bearer(token),
    )
    assert added.status_code in (200, 201), added.text
    # A webhook endpoint that wants batch events, so that batch.completed is written.
    hook = await client.post(
        "/sandbox/api/v4/webhooks/create",
        json={"url": "http://127.0.0.1:9/hook", "events": ["batch.*"]},
        headers=bearer(token),
    )
    assert hook.status_code == 201, hook.text

    answer = await client.post(
        "/sandbox/api/v4/sms/bulk",
        json={"listId": list_id, "body": "Hi {{name}}"},
        headers=bearer(token),
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["total"], body["accepted"], body["rejected"]) == (3, 2, 1)
    assert body["errors"][0]["code"] == "invalid_phone_number"
    batch = await wait_for_batch(client, token, body["id"])
    assert batch["counts"] == {"delivered": 2}
    listed = await client.get(
        "/sandbox/api/v4/messages", params={"batchId": body["id"]}, headers=bearer(token)
    )
    assert sorted(m["body"] for m in listed.json()["data"]) == ["Hi Ada", "Hi Grace"]

    async with app.state.ctx.sessions() as session:
        events = list(
            await session.scalars(select(OutboxEvent).where(OutboxEvent.subject_id == body["id"]))
        )
    assert [event.type for event in events] == ["batch.completed"]
    assert events[0].payload["counts"] == {"delivered": 2}
    assert events[0].payload["status"] == "completed"

    # The endpoint wants batch events only: the messages' changes, which nobody
    # subscribes to, wrote no outbox rows; the batch's event was written.
    message_ids = [m["id"] for m in listed.json()["data"]]
    async with app.state.ctx.sessions() as session:
        message_events = list(
            await session.scalars(
                select(OutboxEvent.type).where(OutboxEvent.subject_id.in_(message_ids))
            )
        )
    assert message_events == []


async def test_production_batches_pay_for_all_or_store_nothing(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await _production_sms(app, user, Decimal("3"))
    token = await login(client, user, base="")
    recipients = [{"to": f"+39333123400{i}"} for i in range(4)]
    refused = await client.post(
        "/api/v4/sms/bulk", json={"recipients": recipients, "body": "x"}, headers=bearer(token)
    )
    assert refused.status_code == 402
    assert refused.json()["code"] == "insufficient_credits"
    assert (await client.get("/api/v4/batches", headers=bearer(token))).json()["data"] == []
    assert await _balance(client, token) == 3.0

    # Two segments each for two recipients, one refused by the provider: 4 debited
    # with the batch, 2 back when that message fails.
    await _production_sms(app, user, Decimal("10"))
    answer = await client.post(
        "/api/v4/sms/bulk",
        json={
            "recipients": [{"to": "+393331234001"}, {"to": "+15550000001"}],
            "body": "y" * 200,
        },
        headers=bearer(token),
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["credits"] == 4.0
    batch = await wait_for_batch(client, token, answer.json()["id"], base="")
    assert batch["credits"] == 4.0
    assert batch["counts"] == {"delivered": 1, "failed": 1}
    assert await _balance(client, token) == 13.0 - 4.0 + 2.0
