"""WhatsApp conversations: the list (last message, unread, window) and the history."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import make_settings
from tests.support.messages import wait_for
from tests.support.users import TestUser, bearer, login
from tidings.api.deps import Principal
from tidings.core.environments import Environment
from tidings.messages.drafts import Draft
from tidings.messages.models import Message
from tidings.messages.service import store_draft
from tidings.settings import Settings

CHATS = "/sandbox/api/v4/whatsapp/chats"


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    """These tests run on SQLite and PostgreSQL (grouped and aggregate SQL)."""
    return make_settings(data_dir, database_url)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def say(client: httpx.AsyncClient, token: str, to: str, body: str) -> dict[str, Any]:
    answer = await client.post(f"{CHATS}/{to}/message", json={"body": body}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def hear(client: httpx.AsyncClient, token: str, sender: str, body: str) -> dict[str, Any]:
    answer = await client.post(
        "/sandbox/api/v4/sandbox/inbound",
        json={"channel": "whatsapp", "from": sender, "body": body},
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def chats(client: httpx.AsyncClient, token: str, **params: str) -> dict[str, Any]:
    answer = await client.get(CHATS, params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_chat_list_shows_last_message_unread_and_window(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    first = await say(client, token, "+393331234567", "Your order shipped")
    await say(client, token, "chat_393339876543", "Hello Bob")
    await hear(client, token, "+393331234567", "Thanks!")
    reply = await hear(client, token, "+393331234567", "When will it arrive?")
    await hear(client, token, "+15550000003", "Hi there")
    await say(client, token, "+393339876543", "Anything else?")

    listed = await chats(client, token)
    assert [chat["contact"] for chat in listed["data"]] == [
        "+393339876543",
        "+15550000003",
        "+393331234567",
    ]
    bob, magic, ada = listed["data"]
    assert ada["id"] == "chat_393331234567"
    assert ada["lastMessage"]["id"] == reply["id"]
    assert ada["lastMessage"]["direction"] == "inbound"
    assert ada["lastMessage"]["body"] == "When will it arrive?"
    assert ada["lastMessage"]["status"] == "received"
    assert ada["unreadCount"] == 2  # both came after the last message sent to Ada
    assert ada["windowOpen"] is True
    assert at(ada["windowExpiresAt"]) == at(reply["createdAt"]) + timedelta(hours=24)
    assert magic["unreadCount"] == 1 and magic["windowOpen"] is True
    assert bob["unreadCount"] == 0 and bob["lastMessage"]["direction"] == "outbound"
    assert bob["lastMessage"]["body"] == "Anything else?"

    page = await chats(client, token, limit="2")
    assert len(page["data"]) == 2 and page["nextCursor"]
    rest = await chats(client, token, limit="2", after=page["nextCursor"])
    assert [chat["contact"] for chat in rest["data"]] == ["+393331234567"]
    assert rest["nextCursor"] is None

    history = await client.get(f"{CHATS}/chat_393331234567/messages", headers=bearer(token))
    assert history.status_code == 200
    bodies = [message["body"] for message in history.json()["data"]]
    assert bodies == ["When will it arrive?", "Thanks!", "Your order shipped"]
    assert history.json()["data"][-1]["id"] == first["id"]
    older = await client.get(
        f"{CHATS}/393331234567/messages",
        params={"limit": 1, "after": reply["id"]},
        headers=bearer(token),
    )
    assert [message["body"] for message in older.json()["data"]] == ["Thanks!"]
    assert older.json()["nextCursor"] is not None

    bad = await client.get(f"{CHATS}/chat_12x/messages", headers=bearer(token))
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_phone_number"
    production = await login(client, user, base="")
    other = await client.get("/api/v4/whatsapp/chats", headers=bearer(production))
    assert other.status_code == 200 and other.json()["data"] == []


async def test_a_contact_who_never_wrote_in_has_a_closed_window(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    # A template notification would reach +15550000006 outside the window; until
    # templates exist, store such a message directly.
    principal = Principal(
        user_id=user.user_id,
        account_id=user.account_id,
        environment=Environment.SANDBOX,
        jti="tok_test",
        expires_at=app.state.ctx.clock.now() + timedelta(hours=1),
    )

    async def write(session: AsyncSession) -> Message:
        draft = Draft(channel="whatsapp", to="+15550000006", sender=None, body="Order update")
        return await store_draft(session, principal, draft, app.state.ctx.clock.now())

    stored = await app.state.ctx.runtime.writer.submit(write)
    app.state.ctx.runtime.wake()
    await wait_for(client, token, stored.id, {"read"})

    [chat] = (await chats(client, token))["data"]
    assert chat["contact"] == "+15550000006"
    assert chat["windowOpen"] is False and chat["windowExpiresAt"] is None
    assert chat["unreadCount"] == 0 and chat["lastMessage"]["status"] == "read"

    wrote_in = await hear(client, token, "+15550000006", "Where is it?")
    [chat] = (await chats(client, token))["data"]
    assert chat["windowOpen"] is True and chat["unreadCount"] == 1
    assert chat["lastMessage"]["id"] == wrote_in["id"]
    assert at(chat["windowExpiresAt"]) == at(wrote_in["createdAt"]) + timedelta(hours=24)
