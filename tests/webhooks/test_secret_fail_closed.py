"""A webhook secret that cannot be opened stops its own endpoint, never the others
(review E3): the endpoint is disabled with the reason, its deliveries wait unattempted,
and every other endpoint of every account keeps delivering."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import update

from tests.support.users import bearer, create_test_user, login
from tests.webhooks.hook_receiver import Receiver, verify_any
from tests.webhooks.test_webhook_delivery import create_hook, eventually
from tidings.core.key_ring import KeyRing
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint

SBX = "/sandbox/api/v4/webhooks"
# Sealed under a key id the ring does not hold (a key dropped too early), and a
# token that does not open under the ring's own key id (a corrupt row).
UNKNOWN_KEY = "enc:v2:dropped:gAAAAABnotarealtokenbutlongenoughtolooklikeone"
CORRUPT = "enc:v2:test:gAAAAABcorrupted"


async def store_secret(app: FastAPI, endpoint_id: str, value: str) -> None:
    async with app.state.ctx.sessions() as session:
        await session.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(secret=value)
        )
        await session.commit()


async def send_test(client: httpx.AsyncClient, token: str, hook: dict[str, Any]) -> str:
    answer = await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def read_hook(client: httpx.AsyncClient, token: str, hook: dict[str, Any]) -> Any:
    return (await client.get(f"{SBX}/{hook['id']}", headers=bearer(token))).json()


async def until_disabled(client: httpx.AsyncClient, token: str, hook: dict[str, Any]) -> Any:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = await read_hook(client, token, hook)
        if seen["status"] == "disabled":
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError("the endpoint was not disabled in time")


@pytest.mark.parametrize("stored", [UNKNOWN_KEY, CORRUPT], ids=["unknown-key", "corrupt"])
async def test_one_bad_secret_disables_its_endpoint_alone(
    app: FastAPI,
    client: httpx.AsyncClient,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    stored: str,
) -> None:
    ada = await login(client, await create_test_user(app, "ada@example.com"))
    bob = await login(client, await create_test_user(app, "bob@example.com"))
    bad = await create_hook(client, ada, receiver.url + "/bad")
    good = await create_hook(client, ada, receiver.url + "/good")
    other = await create_hook(client, bob, receiver.url + "/other")
    await store_secret(app, bad["id"], stored)
    caplog.set_level(logging.INFO)

    held = await send_test(client, ada, bad)
    for _ in range(3):
        await send_test(client, ada, good)
        await send_test(client, bob, other)
    seen = await until_disabled(client, ada, bad)
    await eventually(lambda: len(receiver.delivered()) == 6)

    secrets = {"/hook/good": good["secret"], "/hook/other": other["secret"]}
    for request in receiver.delivered():
        verify_any(request, [secrets[request.path]])
    assert "signing secret cannot be opened" in seen["disabledReason"]
    assert stored not in seen["disabledReason"]
    assert (await read_hook(client, ada, good))["status"] == "active"
    assert (await read_hook(client, bob, other))["status"] == "active"

    # Handed back unattempted: it waits, pending, until the endpoint is enabled.
    async with app.state.ctx.sessions() as session:
        delivery = await session.get(WebhookDelivery, held)
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.lease_owner) == ("pending", 0, None)
    assert delivery.last_error == "secret_unavailable"

    named = [r.getMessage() for r in caplog.records if bad["id"] in r.getMessage()]
    assert any("cannot be opened" in line for line in named)
    assert not any(stored in r.getMessage() for r in caplog.records)


async def test_a_bad_previous_secret_disables_too(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    token = await login(client, await create_test_user(app))
    hook = await create_hook(client, token, receiver.url)
    await client.post(f"{SBX}/{hook['id']}/rotate-secret", headers=bearer(token))
    async with app.state.ctx.sessions() as session:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == hook["id"])
            .values(previous_secret=CORRUPT)
        )
        await session.commit()
    await send_test(client, token, hook)
    seen = await until_disabled(client, token, hook)
    assert "cannot be opened" in seen["disabledReason"] and receiver.delivered() == []


async def test_rotating_then_enabling_recovers_the_endpoint(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    token = await login(client, await create_test_user(app))
    hook = await create_hook(client, token, receiver.url)
    await store_secret(app, hook["id"], UNKNOWN_KEY)
    await send_test(client, token, hook)
    await until_disabled(client, token, hook)

    rotated = await client.post(f"{SBX}/{hook['id']}/rotate-secret", headers=bearer(token))
    assert rotated.status_code == 200
    # The lost secret cannot sign an overlap, so it is not kept as the previous one.
    assert rotated.json()["previousSecretExpiresAt"] is None
    enabled = await client.patch(
        f"{SBX}/{hook['id']}", json={"enabled": True}, headers=bearer(token)
    )
    assert enabled.json()["status"] == "active"
    await eventually(lambda: len(receiver.delivered()) == 1)
    request = receiver.delivered()[0]
    assert len(request.headers["webhook-signature"].split()) == 1
    assert verify_any(request, [rotated.json()["secret"]])["type"] == "webhook.test"


async def test_a_replayed_create_whose_kept_secret_cannot_be_opened_is_a_409(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    token = await login(client, await create_test_user(app))
    headers = {**bearer(token), "Idempotency-Key": "hook-lost"}
    first = await client.post(f"{SBX}/create", json={"url": receiver.url}, headers=headers)
    assert first.status_code == 201
    # The keys change under the stored answer: a ring without the key that sealed it.
    app.state.ctx.key_ring = KeyRing([("fresh", Fernet.generate_key())], legacy=None)
    again = await client.post(f"{SBX}/create", json={"url": receiver.url}, headers=headers)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    problem = again.json()
    assert problem["code"] == "secret_unavailable" and first.json()["id"] in problem["detail"]
    assert first.json()["secret"] not in again.text
