"""Idempotency-Key: replay, conflicts, and two concurrent requests with one key."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.support.users import TestUser, bearer, login
from tidings.messages.models import Message

SMS = "/sandbox/api/v4/sms/send"


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def _count(app: FastAPI) -> int:
    async with app.state.ctx.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Message)) or 0)


async def test_same_key_same_body_replays(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    headers = {**bearer(token), "Idempotency-Key": "key-1"}
    first = await client.post(SMS, json={"to": "+393331234567", "body": "Hi"}, headers=headers)
    # Same JSON, other spacing and key order: the same request.
    second = await client.post(
        SMS,
        content='{ "body": "Hi",  "to": "+393331234567" }',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert await _count(app) == 1


async def test_same_key_other_body_conflicts(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    headers = {**bearer(token), "Idempotency-Key": "key-2"}
    await client.post(SMS, json={"to": "+393331234567", "body": "Hi"}, headers=headers)
    other = await client.post(SMS, json={"to": "+393331234567", "body": "Bye"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert await _count(app) == 1


async def test_key_is_scoped_to_endpoint_and_environment(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, token: str
) -> None:
    headers = {**bearer(token), "Idempotency-Key": "key-3"}
    await client.post(SMS, json={"to": "+393331234567", "body": "Hi"}, headers=headers)
    other_endpoint = await client.post(
        "/sandbox/api/v4/whatsapp/chats/+393331234567/message", json={"body": "Hi"}, headers=headers
    )
    assert other_endpoint.status_code == 200
    assert await _count(app) == 2


async def test_failed_validation_is_not_remembered(client: httpx.AsyncClient, token: str) -> None:
    headers = {**bearer(token), "Idempotency-Key": "key-4"}
    bad = await client.post(SMS, json={"to": "+1", "body": "Hi"}, headers=headers)
    assert bad.status_code == 422
    fixed = await client.post(SMS, json={"to": "+393331234567", "body": "Hi"}, headers=headers)
    assert fixed.status_code == 200


async def test_concurrent_requests_with_one_key_create_one_message(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    headers = {**bearer(token), "Idempotency-Key": "key-5"}
    answers = await asyncio.gather(
        *(
            client.post(SMS, json={"to": "+393331234567", "body": "Once"}, headers=headers)
            for _ in range(8)
        )
    )
    assert {answer.status_code for answer in answers} <= {200, 409}
    ids = {answer.json()["id"] for answer in answers if answer.status_code == 200}
    assert len(ids) == 1
    assert await _count(app) == 1


async def test_overlong_key(client: httpx.AsyncClient, token: str) -> None:
    headers = {**bearer(token), "Idempotency-Key": "k" * 256}
    answer = await client.post(SMS, json={"to": "+393331234567", "body": "Hi"}, headers=headers)
    assert answer.status_code == 422
