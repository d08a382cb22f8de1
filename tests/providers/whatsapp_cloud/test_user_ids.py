"""Contacts WhatsApp knows by their business-scoped user id, end to end through the
API against the Graph fake: a contact with no phone writes in, its chat is
``chat_<user id>``, free-form messages and template notifications addressed by the
user id go to Graph as ``recipient`` (never ``to``), their statuses come back; a
contact with both a phone and a user id is one conversation whichever is used;
and the fake refuses what Meta refuses on the wire."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.fakes.graph_api import GraphApi
from tests.providers.helpers import FAST, eventually, read
from tests.providers.whatsapp_cloud.conftest import Business
from tests.providers.whatsapp_cloud.test_templates import ORDER_UPDATE, listed, synced
from tests.support.users import bearer
from tidings.settings import Settings


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    """These run on PostgreSQL too (the conversation queries and the contacts)."""
    return make_settings(data_dir, database_url, **FAST)


USER_ID = "US.13491208655302741918"
OTHER_USER_ID = "IT.7719203847561029384756"


async def say(
    client: httpx.AsyncClient, business: Business, chat: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v4/whatsapp/chats/{chat}/message",
        json=body or {"body": "Hello!"},
        headers={**bearer(business.token), "Prefer": "respond-async"},
    )


async def until(client: httpx.AsyncClient, business: Business, message_id: str, status: str) -> Any:
    async def reached() -> bool:
        return bool((await read(client, business.token, message_id))["status"] == status)

    await eventually(reached, f"{message_id} {status}")
    return await read(client, business.token, message_id)


async def accepted(client: httpx.AsyncClient, business: Business, chat: str, **body: Any) -> str:
    """Send once the contact's message is recorded (the window open); the id."""
    ids: list[str] = []

    async def taken() -> bool:
        answer = await say(client, business, chat, **body)
        if answer.status_code == 202:
            ids.append(answer.json()["id"])
            return True
        assert answer.json()["code"] == "outside_customer_service_window", answer.text
        return False

    await eventually(taken, f"the window of {chat} open")
    return ids[0]


async def chats(client: httpx.AsyncClient, business: Business) -> list[dict[str, Any]]:
    answer = await client.get("/api/v4/whatsapp/chats", headers=bearer(business.token))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


async def test_a_contact_with_no_phone_is_a_chat_by_its_user_id(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    await graph.contact_writes_as_user(USER_ID, "Is my order ready?", username="sheena.k")

    first = await accepted(client, business, USER_ID, body="It is, come by.")
    done = await until(client, business, first, "read")
    assert done["to"] == USER_ID
    # The chat id form works as well.
    second = await accepted(client, business, f"chat_{USER_ID}", body="We close at 7.")
    await until(client, business, second, "read")

    # A bulk reaches it by user id too.
    bulk = await client.post(
        "/api/v4/whatsapp/bulk",
        json={"body": "Hi {{name}}", "recipients": [{"to": USER_ID, "variables": {"name": "S"}}]},
        headers=bearer(business.token),
    )
    assert bulk.status_code == 202, bulk.text
    assert bulk.json()["accepted"] == 1, bulk.text

    async def three_read() -> bool:
        return len(graph.sent()) == 3

    await eventually(three_read, "the bulk's message sent")
    sent = graph.sent()
    assert len(sent) == 3
    assert sent[-1]["text"]["body"] == "Hi S"
    for body in sent:
        assert body["recipient"] == USER_ID and "to" not in body
        assert body["recipient_type"] == "individual"
        assert body["messaging_product"] == "whatsapp"

    (chat,) = await chats(client, business)
    assert chat["id"] == f"chat_{USER_ID}"
    assert chat["contact"] == USER_ID
    assert chat["userId"] == USER_ID
    assert chat["phone"] is None
    assert chat["username"] == "sheena.k"
    assert chat["windowOpen"] is True

    # A chat box opens on it by user id.
    box = await client.post(
        "/api/v4/iframes/whatsapp/chat-box",
        json={"chatId": USER_ID},
        headers=bearer(business.token),
    )
    assert box.status_code == 200, box.text

    history = await client.get(
        f"/api/v4/whatsapp/chats/chat_{USER_ID}/messages", headers=bearer(business.token)
    )
    assert history.status_code == 200, history.text
    shown = history.json()["data"]
    assert [m["direction"] for m in shown] == ["outbound"] * 3 + ["inbound"]
    assert shown[-1]["from"] == USER_ID
    assert shown[-1]["body"] == "Is my order ready?"


async def test_a_user_id_outside_the_window_takes_a_template(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    graph.templates = [ORDER_UPDATE]
    await synced(client, business)

    async def approved() -> bool:
        return len(await listed(client, business.token)) == 1

    await eventually(approved, "templates synced")
    refused = await say(client, business, OTHER_USER_ID)
    assert refused.status_code == 422
    assert refused.json()["code"] == "outside_customer_service_window"

    answer = await client.post(
        "/api/v4/whatsapp/notifications",
        json={
            "to": OTHER_USER_ID,
            "template": {
                "name": "order_update",
                "language": "en_US",
                "parameters": {"header": ["#1234"], "body": ["Ada", "#1234"], "buttons": ["1234"]},
            },
        },
        headers={**bearer(business.token), "Prefer": "respond-async"},
    )
    assert answer.status_code == 202, answer.text
    done = await until(client, business, answer.json()["id"], "read")
    assert done["to"] == OTHER_USER_ID
    (sent,) = graph.sent()
    assert sent["type"] == "template"
    assert sent["recipient"] == OTHER_USER_ID and "to" not in sent


async def test_a_phone_and_its_user_id_are_one_conversation(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    phone = "+393331234567"
    await graph.contact_writes_as_user(USER_ID, "Hi", phone=phone)
    # Addressed by its user id, the contact is the chat of its phone.
    by_user_id = await accepted(client, business, USER_ID)
    by_phone = await accepted(client, business, phone.removeprefix("+"))
    for message_id in (by_user_id, by_phone):
        done = await until(client, business, message_id, "read")
        assert done["to"] == phone
    assert [body.get("to") for body in graph.sent()] == ["393331234567"] * 2

    (chat,) = await chats(client, business)
    assert chat["id"] == "chat_393331234567"
    assert (chat["phone"], chat["userId"]) == (phone, USER_ID)


async def test_a_contact_first_seen_by_user_id_keeps_one_history(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    await graph.contact_writes_as_user(USER_ID, "Hello, no phone shown")
    first = await accepted(client, business, USER_ID)
    await until(client, business, first, "read")
    # Later WhatsApp shows the phone too: the conversation stays the user id's.
    await graph.contact_writes_as_user(USER_ID, "Now with my phone", phone="+393339998877")

    async def both_in() -> bool:
        history = await client.get(
            f"/api/v4/whatsapp/chats/{USER_ID}/messages", headers=bearer(business.token)
        )
        return len(history.json()["data"]) == 3

    await eventually(both_in, "the second message in the same history")
    later = await accepted(client, business, "+393339998877")
    done = await until(client, business, later, "read")
    assert done["to"] == USER_ID
    (chat,) = await chats(client, business)
    assert (chat["contact"], chat["phone"], chat["userId"]) == (
        USER_ID,
        "+393339998877",
        USER_ID,
    )


async def test_malformed_user_ids_are_refused(
    client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    for chat in ("chat_US.not-an-id!", "us.1349"):
        answer = await say(client, business, chat)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "invalid_phone_number"
    assert graph.sent() == []


async def test_the_fake_refuses_what_meta_refuses_on_the_wire(graph: GraphApi) -> None:
    graph.enforce_window = False
    url = f"{graph.base_url}/{graph.version}/{graph.phone_number_id}/messages"
    headers = {"Authorization": f"Bearer {graph.access_token}"}
    text = {"messaging_product": "whatsapp", "type": "text", "text": {"body": "Hi"}}
    async with httpx.AsyncClient() as http:
        wrong = [
            {**text},
            {**text, "to": USER_ID},
            {**text, "recipient": "393331234567"},
            {**text, "recipient": USER_ID, "recipient_type": "group"},
        ]
        for body in wrong:
            answer = await http.post(url, json=body, headers=headers)
            assert answer.status_code == 400, body
            assert answer.json()["error"]["code"] == 100
        by_user = await http.post(url, json={**text, "recipient": USER_ID}, headers=headers)
        assert by_user.json()["contacts"] == [{"input": USER_ID, "user_id": USER_ID}]
        # Both given: the phone wins, as at Meta.
        both = await http.post(
            url, json={**text, "recipient": USER_ID, "to": "393331234567"}, headers=headers
        )
        assert both.json()["contacts"] == [{"input": "393331234567", "wa_id": "393331234567"}]
