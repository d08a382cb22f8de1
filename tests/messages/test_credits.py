"""Credits in production: 402 before storing, debit on accept, refund on failure.
The sandbox never touches them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from tests.support.messages import wait_for
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer, login
from tidings.credits.models import CreditEntry
from tidings.credits.repository import CreditRepository


async def _production_sms(app: FastAPI, user: TestUser, credits: Decimal) -> None:
    await add_provider(app, user.account_id, "sms")
    async with app.state.ctx.sessions() as session:
        if credits:
            await CreditRepository(session).add(
                user.account_id, credits, reason="top-up", at=datetime.now(UTC)
            )
        await session.commit()


async def _balance(client: httpx.AsyncClient, token: str, base: str = "") -> float:
    return float(
        (await client.get(f"{base}/api/v4/account", headers=bearer(token))).json()["credits"]
    )


async def test_insufficient_credits_store_nothing(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await _production_sms(app, user, Decimal("1"))
    token = await login(client, user, base="")
    answer = await client.post(
        "/api/v4/sms/send", json={"to": "+393331234567", "body": "x" * 200}, headers=bearer(token)
    )
    assert answer.status_code == 402
    assert answer.json()["code"] == "insufficient_credits"
    listed = await client.get("/api/v4/messages", headers=bearer(token))
    assert listed.json()["data"] == []
    assert await _balance(client, token) == 1.0


async def test_debit_per_segment_and_refund_on_failure(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await _production_sms(app, user, Decimal("10"))
    token = await login(client, user, base="")
    sent = await client.post(
        "/api/v4/sms/send", json={"to": "+393331234567", "body": "x" * 200}, headers=bearer(token)
    )
    assert sent.status_code == 200 and sent.json()["credits"] == 2.0
    assert await _balance(client, token) == 8.0
    failed = await client.post(
        "/api/v4/sms/send", json={"to": "+15550000001", "body": "x"}, headers=bearer(token)
    )
    assert failed.json()["status"] == "failed"
    assert await _balance(client, token) == 8.0
    async with app.state.ctx.sessions() as session:
        reasons = [
            row.reason
            for row in await session.scalars(select(CreditEntry).order_by(CreditEntry.id))
        ]
    assert reasons == ["top-up", "send", "send", "refund"]
    await wait_for(client, token, sent.json()["id"], {"delivered"}, base="")


async def test_sandbox_never_spends(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    answer = await client.post(
        "/sandbox/api/v4/sms/send",
        json={"to": "+393331234567", "body": "Hi"},
        headers=bearer(token),
    )
    assert answer.status_code == 200 and answer.json()["credits"] == 0.0
    assert await _balance(client, token, "/sandbox") == 0.0
