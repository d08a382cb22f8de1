"""Cancel mid-batch: canceled plus final statuses add up to the accepted count, and
nothing canceled reaches the provider afterwards."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.bulk.support import wait_for_batch
from tests.conftest import make_settings
from tests.support.users import TestUser, bearer, login
from tidings.providers.directory import sandbox_provider_id
from tidings.providers.models import ProviderRefRow
from tidings.settings import Settings

BULK = "/sandbox/api/v4/sms/bulk"


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    # Paced, so that the batch is still draining when it is canceled.
    return make_settings(data_dir, sqlite_url, bulk={"sms_per_second": 40})


async def taken_by_provider(app: FastAPI) -> set[str]:
    """The messages the simulated SMS network took: those it gave an id."""
    async with app.state.ctx.sessions() as session:
        found = await session.scalars(
            select(ProviderRefRow.message_id).where(
                ProviderRefRow.provider_id == sandbox_provider_id("sms")
            )
        )
        return set(found)


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def test_cancel_mid_batch(app: FastAPI, client: httpx.AsyncClient, token: str) -> None:
    recipients = [{"to": f"+3933312{i:05d}"} for i in range(200)]
    answer = await client.post(
        BULK, json={"recipients": recipients, "body": "Until canceled"}, headers=bearer(token)
    )
    batch_id = answer.json()["id"]
    while len(await taken_by_provider(app)) < 20:
        await asyncio.sleep(0.05)

    canceled = await client.post(
        f"/sandbox/api/v4/batches/{batch_id}/cancel", headers=bearer(token)
    )
    assert canceled.status_code == 200, canceled.text
    received_at_cancel = await taken_by_provider(app)

    batch = await wait_for_batch(client, token, batch_id)
    counts = batch["counts"]
    assert batch["status"] == "canceled" and batch["canceledAt"]
    assert sum(counts.values()) == 200 == batch["accepted"]
    assert set(counts) <= {"canceled", "delivered"}
    assert 0 < counts["canceled"] < 200

    listed = []
    cursor = None
    while True:
        params = {"batchId": batch_id, "limit": 100, **({"after": cursor} if cursor else {})}
        page = await client.get("/sandbox/api/v4/messages", params=params, headers=bearer(token))
        listed += page.json()["data"]
        cursor = page.json()["nextCursor"]
        if cursor is None:
            break
    canceled_ids = {m["id"] for m in listed if m["status"] == "canceled"}
    received = await taken_by_provider(app)
    assert len(canceled_ids) == counts["canceled"]
    # Nothing canceled was handed to the provider, then or afterwards; what it had
    # been handed before the cancel (or was in flight) was delivered.
    assert not canceled_ids & received
    assert received_at_cancel <= received
    assert len(received) == counts["delivered"]
