"""The templates page: the sandbox's simulated catalogue with statuses, a submitted
template reviewed by the simulated review, the production sync, scoping and CSRF."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from tests.console.support import sign_in, signed_in_token
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer, create_test_user, login

TEMPLATES = "/sandbox/api/v4/notifications/whatsapp/templates"


async def _submit(client: httpx.AsyncClient, token: str, name: str) -> None:
    answer = await client.post(
        TEMPLATES,
        json={
            "name": name,
            "language": "en",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Your parcel {{1}} is on its way."}],
        },
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.text


async def test_sandbox_catalogue_review_and_scoping(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    other = await create_test_user(app, "grace@example.com")
    await _submit(client, await login(client, other), "their_parcel")
    await _submit(client, await login(client, user), "reject_this")

    await sign_in(client, user, base="/sandbox")
    token = await signed_in_token(client, "/sandbox")
    page = await client.get("/sandbox/console/templates")
    assert page.status_code == 200
    assert page.text.count('<td class="mono">order_update</td>') == 2  # en and it
    assert "their_parcel" not in page.text
    assert (await client.post("/sandbox/console/templates/sync", data={})).status_code == 403
    synced = await client.post("/sandbox/console/templates/sync", data={"csrf": token})
    assert synced.status_code == 303
    for _ in range(100):
        rejected = await client.get("/sandbox/console/templates", params={"status": "REJECTED"})
        if "reject_this" in rejected.text:
            break
        await asyncio.sleep(0.05)
    assert '<span class="status bad">REJECTED</span>' in rejected.text
    assert '<td class="mono">order_update</td>' not in rejected.text


async def test_production_sync_reads_no_business_account_without_a_provider(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    token = await signed_in_token(client)
    synced = await client.post("/console/templates/sync", data={"csrf": token})
    assert synced.status_code == 303
    page = await client.get(synced.headers["location"])
    assert "Synced: 0 business accounts read, 0 templates added or changed." in page.text
    assert "No template." in page.text


async def test_a_business_account_that_cannot_be_read_says_why(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await add_provider(
        app,
        user.account_id,
        "whatsapp",
        "whatsapp_cloud",
        config={
            "phoneNumberId": "1234",
            "businessAccountId": "5678",
            "accessToken": "token",
            "appSecret": "secret",
            "verifyToken": "verify",
            # Nothing listens there.
            "baseUrl": "http://127.0.0.1:9",
        },
    )
    await sign_in(client, user)
    token = await signed_in_token(client)
    answer = await client.post("/console/templates/sync", data={"csrf": token})
    assert answer.status_code == 503
    assert "The WhatsApp Business account&#39;s templates could not be read" in answer.text
