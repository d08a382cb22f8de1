"""Pacing: a provider limited to N a second never receives more than N in any
second, counted by the sandbox provider; single sends keep their latency while a
batch drains; "slow down" answers slow the pace instead of failing messages."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.bulk.support import wait_for_batch
from tests.conftest import make_settings
from tests.support.users import TestUser, bearer, login
from tidings.bulk.models import PaceSlot
from tidings.providers.directory import sandbox_provider_id
from tidings.providers.models import InboxEvent
from tidings.settings import Settings

BULK = "/sandbox/api/v4/sms/bulk"
RATE = 20


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    """On SQLite and PostgreSQL: the pace rows are locked differently."""
    return make_settings(
        data_dir,
        database_url,
        bulk={"sms_per_second": RATE},
        sandbox={"receipt_delay_seconds": 0.01, "throttle_per_second": 15},
    )


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def accepted_at(app: FastAPI, leaving_out: str) -> list[float]:
    """When the simulated SMS network accepted each message, by the network's own clock
    (its receipt's ``at``, a fixed delay after acceptance). Not when the receipt was
    stored: a verdict transaction stores a whole group of receipts at one moment."""
    async with app.state.ctx.sessions() as session:
        payloads = await session.scalars(
            select(InboxEvent.payload).where(InboxEvent.provider_id == sandbox_provider_id("sms"))
        )
        return [
            datetime.fromisoformat(payload["at"]).timestamp()
            for payload in payloads
            if payload["status"] == "delivered" and payload["id"] != leaving_out
        ]


def most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_a_paced_batch_never_exceeds_its_rate_and_throttling_only_slows_it(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    recipients = [{"to": f"+3933312{i:05d}"} for i in range(70)]
    answer = await client.post(
        BULK, json={"recipients": recipients, "body": "Paced"}, headers=bearer(token)
    )
    assert answer.status_code == 202, answer.text
    batch_id = answer.json()["id"]

    # A single send while the batch drains: answered with its verdict, not queued.
    single = await client.post(
        "/sandbox/api/v4/sms/send",
        json={"to": "+393339999999", "body": "Not starved"},
        headers=bearer(token),
    )
    assert single.status_code == 200, single.text
    assert single.json()["status"] == "sent"

    batch = await wait_for_batch(client, token, batch_id, timeout=60)
    assert batch["counts"] == {"delivered": 70}

    batch_sends = await accepted_at(app, leaving_out=single.json()["providerMessageId"])
    assert len(batch_sends) == 70
    assert most_in_any_second(batch_sends) <= RATE

    # The provider took 15 a second and said "slow down" above that: messages were
    # retried (no attempt used up, none failed) and the shared pace slowed.
    async with app.state.ctx.sessions() as session:
        slot = await session.scalar(select(PaceSlot).where(PaceSlot.key.startswith("provider:")))
    assert slot is not None and slot.slow_factor < 1
    listed = await client.get(
        "/sandbox/api/v4/messages",
        params={"batchId": batch_id, "limit": 100},
        headers=bearer(token),
    )
    retried = []
    for message in listed.json()["data"]:
        shown = await client.get(f"/sandbox/api/v4/messages/{message['id']}", headers=bearer(token))
        events = shown.json()["events"]
        retried += [e for e in events if e["event"] == "retry"]
    assert retried, "the provider's throttling should have caused retries"
