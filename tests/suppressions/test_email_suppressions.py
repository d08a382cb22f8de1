"""The email suppression list (spec sections 7 and 12): hard bounces, complaints and
unsubscribes suppress; soft bounces do not; sends to a suppressed address answer 422
``recipient_suppressed``; DELETE lifts it; each environment has its own list."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.support.messages import wait_for
from tests.support.users import TestUser, bearer, login
from tidings.contacts.suppressions import SuppressionRepository
from tidings.core.clock import SystemClock
from tidings.core.environments import Environment
from tidings.settings import Settings

SEND = "/sandbox/api/v4/email/send"
LIST = "/sandbox/api/v4/email/suppressions"
HARD = "hard-bounce@sandbox.test"
SOFT = "soft-bounce@sandbox.test"
COMPLAINT = "complaint@sandbox.test"
ENGAGED = "engaged@sandbox.test"
BASE = "http://127.0.0.1:8000"


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    """On SQLite and PostgreSQL (the insert is ON CONFLICT DO NOTHING on both)."""
    return make_settings(data_dir, database_url)


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


def email(to: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"to": to, "from": "News <news@example.com>", "subject": "Hi", "text": "Hello", **extra}


async def send(client: httpx.AsyncClient, token: str, **body: Any) -> httpx.Response:
    return await client.post(SEND, json=body, headers=bearer(token))


async def suppressions(
    client: httpx.AsyncClient, token: str, *, base: str = "/sandbox", **params: Any
) -> dict[str, Any]:
    answer = await client.get(
        f"{base}/api/v4/email/suppressions", params=params, headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def wait_for_events(
    client: httpx.AsyncClient, token: str, message_id: str, wanted: set[str]
) -> list[str]:
    deadline = time.monotonic() + 10
    kinds: list[str] = []
    while time.monotonic() < deadline:
        answer = await client.get(
            "/sandbox/api/v4/email/events", params={"messageId": message_id}, headers=bearer(token)
        )
        assert answer.status_code == 200, answer.text
        kinds = [event["type"] for event in answer.json()["data"]]
        if wanted <= set(kinds):
            return kinds
        await asyncio.sleep(0.02)
    raise AssertionError(f"{message_id} has events {kinds}, wanted {wanted}")


async def bounce(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    answer = await send(client, token, **email(HARD))
    assert answer.status_code == 200, answer.text
    final = await wait_for(client, token, answer.json()["id"], {"undelivered"})
    await wait_for_events(client, token, final["id"], {"bounced"})
    return final


async def test_magic_addresses_suppress_exactly_hard_bounces_and_complaints(
    client: httpx.AsyncClient, token: str
) -> None:
    sent = {}
    for address in (HARD, SOFT, COMPLAINT, ENGAGED):
        answer = await send(client, token, **email(address))
        assert answer.status_code == 200, answer.text
        sent[address] = answer.json()["id"]

    hard = await wait_for(client, token, sent[HARD], {"undelivered"})
    assert hard["error"]["code"] == "bounced"
    assert "bounced" in await wait_for_events(client, token, sent[HARD], {"bounced"})
    soft = await wait_for(client, token, sent[SOFT], {"delivered"})
    assert soft["attempts"] == 2  # deferred once, then delivered
    assert await wait_for_events(client, token, sent[SOFT], {"delivered"}) == ["delivered"]
    await wait_for(client, token, sent[COMPLAINT], {"delivered"})
    complaint = await wait_for_events(client, token, sent[COMPLAINT], {"delivered", "complained"})
    assert sorted(complaint) == ["complained", "delivered"]
    await wait_for(client, token, sent[ENGAGED], {"delivered"})
    engaged = await wait_for_events(
        client, token, sent[ENGAGED], {"delivered", "opened", "clicked"}
    )
    assert sorted(engaged) == ["clicked", "delivered", "opened"]

    listed = (await suppressions(client, token))["data"]
    assert {(row["address"], row["reason"], row["messageId"]) for row in listed} == {
        (HARD, "bounce", sent[HARD]),
        (COMPLAINT, "complaint", sent[COMPLAINT]),
    }
    assert all(row["createdAt"] for row in listed)
    only = (await suppressions(client, token, reason="complaint"))["data"]
    assert [row["address"] for row in only] == [COMPLAINT]

    first = await suppressions(client, token, limit=1)
    assert len(first["data"]) == 1 and first["nextCursor"]
    second = await suppressions(client, token, limit=1, after=first["nextCursor"])
    assert second["nextCursor"] is None
    assert {first["data"][0]["address"], second["data"][0]["address"]} == {HARD, COMPLAINT}
    bad = await client.get(LIST, params={"after": "nobody@example.com"}, headers=bearer(token))
    assert bad.status_code == 422 and bad.json()["errors"][0]["code"] == "invalid_cursor"


async def test_a_suppressed_address_is_refused_in_to_cc_and_bcc_until_deleted(
    client: httpx.AsyncClient, token: str
) -> None:
    await bounce(client, token)

    for body in (
        email(HARD),
        email(["ada@example.com", "Hard-Bounce@Sandbox.Test"]),
        email("ada@example.com", cc=HARD),
        email("ada@example.com", bcc=[f"Bounce <{HARD.upper()}>"]),
    ):
        refused = await send(client, token, **body)
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["code"] == "recipient_suppressed"
        assert [error["code"] for error in problem["errors"]] == ["recipient_suppressed"]
    cc = (await send(client, token, **email("ada@example.com", cc=HARD))).json()
    assert cc["errors"][0]["field"] == "cc"
    messages = await client.get(
        "/sandbox/api/v4/messages", params={"channel": "email"}, headers=bearer(token)
    )
    assert len(messages.json()["data"]) == 1  # only the bounced one was stored

    gone = await client.delete(f"{LIST}/{HARD.upper()}", headers=bearer(token))
    assert gone.status_code == 204, gone.text
    assert (await suppressions(client, token))["data"] == []
    again = await client.delete(f"{LIST}/{HARD}", headers=bearer(token))
    assert again.status_code == 404 and again.json()["code"] == "not_found"

    allowed = await send(client, token, **email("ada@example.com", cc=HARD))
    assert allowed.status_code == 200, allowed.text


async def test_environments_have_their_own_lists(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, token: str
) -> None:
    await bounce(client, token)
    production = await login(client, user, base="")
    assert (await suppressions(client, production, base=""))["data"] == []
    missing = await client.delete(f"/api/v4/email/suppressions/{HARD}", headers=bearer(production))
    assert missing.status_code == 404

    async def suppress_in_production(session: Any) -> None:
        await SuppressionRepository(session).add(
            user.account_id,
            Environment.PRODUCTION,
            "Ada@Example.com",
            reason="complaint",
            message_id=None,
            at=SystemClock().now(),
        )

    await app.state.ctx.runtime.writer.submit(suppress_in_production)
    assert [
        row["address"] for row in (await suppressions(client, production, base=""))["data"]
    ] == ["ada@example.com"]
    assert [row["address"] for row in (await suppressions(client, token))["data"]] == [HARD]
    assert (await send(client, token, **email("ada@example.com"))).status_code == 200


async def test_one_click_unsubscribe_suppresses(client: httpx.AsyncClient, token: str) -> None:
    answer = await send(
        client,
        token,
        **email("Grace@Example.com", html="<p>News</p>", tags=["Marketing"]),
    )
    assert answer.status_code == 200, answer.text
    message = await wait_for(client, token, answer.json()["id"], {"delivered"})
    listed = await client.get("/sandbox/api/v4/sandbox/emails", headers=bearer(token))
    [summary] = [item for item in listed.json()["data"] if item["messageId"] == message["id"]]
    kept = await client.get(
        f"/sandbox/api/v4/sandbox/emails/{summary['id']}", headers=bearer(token)
    )
    headers = dict(kept.json()["headers"])
    match = re.fullmatch(
        r"<(http://127\.0\.0\.1:8000/sandbox/t/u/[^>]+)>", headers["List-Unsubscribe"]
    )
    assert match is not None
    url = match.group(1)[len(BASE) :]

    assert (await client.get(url)).status_code == 200  # the page alone suppresses nothing
    assert (await suppressions(client, token))["data"] == []
    for _ in range(2):  # a repeat is harmless
        done = await client.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200
    [row] = (await suppressions(client, token))["data"]
    assert (row["address"], row["reason"], row["messageId"]) == (
        "grace@example.com",
        "unsubscribe",
        message["id"],
    )
    refused = await send(client, token, **email("grace@example.com"))
    assert refused.status_code == 422 and refused.json()["code"] == "recipient_suppressed"
