"""A provider's agreed rate holds for single sends too, on the schedule every process
shares; and a provider answering "slow down" gives the attempt back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from tests.support.messages import wait_for
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer, login
from tidings.bulk.models import PaceSlot
from tidings.credits.repository import CreditRepository
from tidings.providers.models import InboxEvent

RATE = 10


def most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_single_sends_keep_the_providers_rate(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    provider_id = await add_provider(
        app, user.account_id, "sms", config={"messagesPerSecond": RATE}
    )
    async with app.state.ctx.sessions() as session:
        await CreditRepository(session).add(
            user.account_id, Decimal(100), reason="top-up", at=datetime.now(UTC)
        )
        await session.commit()
    token = await login(client, user, base="")

    async def send(index: int) -> str:
        answer = await client.post(
            "/api/v4/sms/send",
            json={"to": f"+3933312{index:05d}", "body": "Paced"},
            headers={**bearer(token), "Prefer": "respond-async"},
        )
        assert answer.status_code in (200, 202), answer.text
        return str(answer.json()["id"])

    ids = await asyncio.gather(*(send(index) for index in range(25)))
    for message_id in ids:
        final = await wait_for(client, token, message_id, {"delivered"}, base="")
        assert final["providerId"] == provider_id

    # When the network took each one, by the network's own clock (its receipt's "at",
    # a fixed delay after acceptance); not when the receipt was stored, since one
    # transaction stores a whole group of receipts at one moment.
    async with app.state.ctx.sessions() as session:
        accepted = [
            datetime.fromisoformat(payload["at"]).timestamp()
            for payload in await session.scalars(
                select(InboxEvent.payload).where(InboxEvent.provider_id == provider_id)
            )
        ]
        slot = await session.scalar(
            select(PaceSlot).where(PaceSlot.key == f"provider:{provider_id}")
        )
    assert len(accepted) == 25
    assert most_in_any_second(accepted) <= RATE + 2
    assert slot is not None
