"""Signing secrets are sealed at rest, and webhook creation honours Idempotency-Key."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import func, select, text

from tests.support.users import TestUser, bearer, login
from tests.webhooks.hook_receiver import Receiver
from tidings.core.key_ring import KeyRing, SecretUnavailable
from tidings.webhooks.models import WebhookEndpoint

CREATE = "/sandbox/api/v4/webhooks/create"


async def test_secrets_are_sealed_in_the_database(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, receiver: Receiver
) -> None:
    token = await login(client, user)
    created = (await client.post(CREATE, json={"url": receiver.url}, headers=bearer(token))).json()
    rotated = (
        await client.post(
            f"/sandbox/api/v4/webhooks/{created['id']}/rotate-secret", headers=bearer(token)
        )
    ).json()
    async with app.state.ctx.sessions() as session:
        row = (
            await session.execute(
                text("SELECT secret, previous_secret FROM webhook_endpoints WHERE id = :id"),
                {"id": created["id"]},
            )
        ).one()
    stored = " ".join(row)
    assert created["secret"] not in stored and rotated["secret"] not in stored
    assert row[0].startswith("enc:v2:test:") and row[1].startswith("enc:v2:test:")
    ring = app.state.ctx.key_ring
    assert ring.open(row[0]) == rotated["secret"] and ring.open(row[1]) == created["secret"]


def test_another_key_cannot_open_a_sealed_secret() -> None:
    sealed = KeyRing([("a", Fernet.generate_key())], legacy=None).seal("whsec_abc")
    with pytest.raises(SecretUnavailable, match="does not open with key 'a'"):
        KeyRing([("a", Fernet.generate_key())], legacy=None).open(sealed)


async def test_create_is_idempotent(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, receiver: Receiver
) -> None:
    token = await login(client, user)
    headers = {**bearer(token), "Idempotency-Key": "hook-1"}
    first = await client.post(CREATE, json={"url": receiver.url}, headers=headers)
    again = await client.post(CREATE, json={"url": receiver.url}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = await client.post(CREATE, json={"url": receiver.url + "x"}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    racing = {**bearer(token), "Idempotency-Key": "hook-2"}
    answers = await asyncio.gather(
        *(client.post(CREATE, json={"url": receiver.url}, headers=racing) for _ in range(6))
    )
    assert {answer.status_code for answer in answers} <= {201, 409}
    async with app.state.ctx.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(WebhookEndpoint))
    assert count == 2
