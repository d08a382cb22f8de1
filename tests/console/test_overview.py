"""The overview: today's counts, credits in production only, providers, last failures,
and never a number of another account."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.console.support import sign_in
from tests.support.messages import wait_for
from tests.support.users import TestUser, bearer, create_test_user, login

REFUSED = "+15550000001"


async def _send_sms(client: httpx.AsyncClient, token: str, to: str) -> str:
    answer = await client.post(
        "/sandbox/api/v4/sms/send", json={"to": to, "body": "Hello"}, headers=bearer(token)
    )
    assert answer.status_code in (200, 202), answer.text
    return str(answer.json()["id"])


async def test_todays_counts_and_last_failures(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    delivered = await _send_sms(client, token, "+393331234567")
    await wait_for(client, token, delivered, {"delivered"})
    refused = await _send_sms(client, token, REFUSED)
    await wait_for(client, token, refused, {"failed"})

    # Another account's messages count for it alone.
    other = await create_test_user(app, "grace@example.com")
    other_token = await login(client, other)
    other_id = await _send_sms(client, other_token, REFUSED)
    await wait_for(client, other_token, other_id, {"failed"})

    await sign_in(client, user)
    page = await client.get("/sandbox/console")
    assert page.status_code == 200
    text = page.text
    assert ">sms</a></th>" in text
    assert f'href="/sandbox/console/messages/{refused}"' in text
    assert other_id not in text
    # One delivered, one failed: the row's total is 2, not 3.
    assert '<td class="num">2</td>' in text
    assert "The sandbox spends no credits." in text


async def test_production_shows_credits_and_no_provider(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    page = await client.get("/console")
    assert page.status_code == 200
    assert "No messages yet today." in page.text
    assert '<p class="big">0.00</p>' in page.text
    assert "No provider is configured" in page.text
    assert "No failed or undelivered message." in page.text
