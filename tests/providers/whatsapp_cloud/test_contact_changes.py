"""A WhatsApp contact who changes its number or its user id, end to end through the
inbound endpoint and the API against the Graph fake: Meta's ``system`` message
updates the contact, fires ``contact.changed`` (no message, no
``message.received``), never opens the 24-hour window, and the conversation goes
on under the same chat, the sends reaching the new number or user id. And a
phone contact's user id learned from the statuses of our own sends: a later
message carrying only the user id is the same conversation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.fakes.graph_api import GraphApi
from tests.providers.helpers import FAST, eventually
from tests.providers.whatsapp_cloud.conftest import Business, outbox
from tests.providers.whatsapp_cloud.test_user_ids import (
    OTHER_USER_ID,
    USER_ID,
    accepted,
    chats,
    say,
    until,
)
from tests.support.users import bearer
from tidings.settings import Settings

OLD_PHONE = "+393331234567"
NEW_PHONE = "+393339876543"
NEW_USER_ID = "US.99887766554433221100"
DAY_AND_MORE = 25 * 3600


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    """These run on PostgreSQL too (the contacts and the conversation queries)."""
    return make_settings(data_dir, database_url, **FAST)


async def history(client: httpx.AsyncClient, business: Business, chat: str) -> list[Any]:
    answer = await client.get(
        f"/api/v4/whatsapp/chats/{chat}/messages", headers=bearer(business.token)
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


async def changed(app: FastAPI, business: Business, count: int = 1) -> list[dict[str, Any]]:
    """The account's ``contact.changed`` events once ``count`` are written."""
    found: list[dict[str, Any]] = []

    async def written() -> bool:
        events = await outbox(app, business.user.account_id)
        found[:] = [e.payload for e in events if e.type == "contact.changed"]
        return len(found) >= count

    await eventually(written, "contact.changed written")
    return found


async def test_a_changed_number_keeps_the_chat_and_opens_no_window(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    # The contact last wrote more than a day ago: the window is closed.
    await graph.contact_writes_as_user(USER_ID, "Hi", phone=OLD_PHONE, ago=DAY_AND_MORE)

    async def recorded() -> bool:
        return len(await history(client, business, OLD_PHONE)) == 1

    await eventually(recorded, "the first message recorded")
    received_before = [
        e.type for e in await outbox(app, business.user.account_id) if e.type == "message.received"
    ]

    await graph.contact_changes_number(
        OLD_PHONE, NEW_PHONE, user_id=NEW_USER_ID, previous_user_id=USER_ID
    )
    (event,) = await changed(app, business)
    assert event == {
        "channel": "whatsapp",
        "change": "user_changed_number",
        "chatId": "chat_393331234567",
        "contact": OLD_PHONE,
        "phone": NEW_PHONE,
        "userId": NEW_USER_ID,
        "previousPhone": OLD_PHONE,
        "previousUserId": USER_ID,
        "body": "User Sheena changed from 393331234567 to 393339876543",
        "providerMessageId": event["providerMessageId"],
        "at": event["at"],
    }
    assert str(event["providerMessageId"]).startswith("wamid.")
    # Not a message: the history, the received events and the window are as they were.
    assert len(await history(client, business, OLD_PHONE)) == 1
    received_after = [
        e.type for e in await outbox(app, business.user.account_id) if e.type == "message.received"
    ]
    assert received_after == received_before
    refused = await say(client, business, NEW_PHONE)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "outside_customer_service_window"
    (chat,) = await chats(client, business)
    assert (chat["id"], chat["phone"], chat["userId"]) == (
        "chat_393331234567",
        NEW_PHONE,
        NEW_USER_ID,
    )
    assert chat["windowOpen"] is False

    # The contact writes from its new number: the same chat, the window open, and
    # the reply goes to the new number.
    await graph.contact_writes_as_user(NEW_USER_ID, "New number, same me", phone=NEW_PHONE)
    reply = await accepted(client, business, NEW_PHONE, body="Noted!")
    done = await until(client, business, reply, "read")
    assert done["to"] == OLD_PHONE
    assert graph.sent()[-1]["to"] == "393339876543"
    assert [m["direction"] for m in await history(client, business, OLD_PHONE)] == [
        "outbound",
        "inbound",
        "inbound",
    ]
    (chat,) = await chats(client, business)
    assert chat["id"] == "chat_393331234567" and chat["windowOpen"] is True
    # A bulk to the old number reaches the new one too.
    bulk = await client.post(
        "/api/v4/whatsapp/bulk",
        json={"body": "Hi {{name}}", "recipients": [{"to": OLD_PHONE, "variables": {"name": "S"}}]},
        headers=bearer(business.token),
    )
    assert bulk.status_code == 202, bulk.text
    assert bulk.json()["accepted"] == 1, bulk.text

    async def bulk_sent() -> bool:
        return graph.sent()[-1].get("text", {}).get("body") == "Hi S"

    await eventually(bulk_sent, "the bulk's message sent")
    assert graph.sent()[-1]["to"] == "393339876543"


async def test_a_changed_user_id_keeps_the_chat(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    await graph.contact_writes_as_user(OTHER_USER_ID, "Hello, no phone shown")
    first = await accepted(client, business, OTHER_USER_ID)
    await until(client, business, first, "read")

    await graph.contact_changes_user_id(OTHER_USER_ID, NEW_USER_ID)
    (event,) = await changed(app, business)
    assert (event["change"], event["chatId"], event["userId"], event["previousUserId"]) == (
        "user_changed_user_id",
        f"chat_{OTHER_USER_ID}",
        NEW_USER_ID,
        OTHER_USER_ID,
    )
    assert event["phone"] is None
    assert len(await history(client, business, OTHER_USER_ID)) == 2

    # Written to by either user id, the contact is the same chat, reached at the new one.
    second = await accepted(client, business, NEW_USER_ID, body="Still here")
    done = await until(client, business, second, "read")
    assert done["to"] == OTHER_USER_ID
    assert graph.sent()[-1]["recipient"] == NEW_USER_ID
    await graph.contact_writes_as_user(NEW_USER_ID, "Thanks")

    async def four_in() -> bool:
        return len(await history(client, business, OTHER_USER_ID)) == 4

    await eventually(four_in, "the new user id's message in the same history")
    (chat,) = await chats(client, business)
    assert (chat["id"], chat["userId"]) == (f"chat_{OTHER_USER_ID}", NEW_USER_ID)


async def test_a_change_for_an_unknown_contact_is_no_message(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    await graph.contact_changes_number(OLD_PHONE, NEW_PHONE)
    # The webhook is taken, and nothing comes of it: no chat, no message, no event.
    await graph.contact_writes("+15550001111", "Someone else")

    async def one_chat() -> bool:
        return len(await chats(client, business)) == 1

    await eventually(one_chat, "the other contact's chat")
    (chat,) = await chats(client, business)
    assert chat["id"] == "chat_15550001111"
    events = await outbox(app, business.user.account_id)
    assert "contact.changed" not in {e.type for e in events}


async def test_a_phone_contacts_user_id_is_learned_from_our_statuses(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    # A contact writes by phone alone; Meta knows its user id and shows it in the
    # statuses of what Tidings sends it.
    graph.users[USER_ID] = OLD_PHONE.lstrip("+")
    await graph.contact_writes(OLD_PHONE, "Hi by phone")
    sent = await accepted(client, business, OLD_PHONE)
    await until(client, business, sent, "read")
    (value,) = [
        change["value"]
        for body in graph.posted
        for change in body["entry"][0]["changes"]
        if [s["status"] for s in change["value"].get("statuses", [])] == ["read"]
    ]
    assert value["statuses"][0]["recipient_user_id"] == USER_ID
    assert value["contacts"] == [{"user_id": USER_ID, "wa_id": "393331234567"}]

    (chat,) = await chats(client, business)
    assert (chat["phone"], chat["userId"]) == (OLD_PHONE, USER_ID)

    # Later it writes with its user id only: the same conversation.
    await graph.contact_writes_as_user(USER_ID, "Now as my user id")

    async def in_same() -> bool:
        return len(await history(client, business, OLD_PHONE)) == 3

    await eventually(in_same, "the user id's message in the phone's conversation")
    (chat,) = await chats(client, business)
    assert chat["id"] == "chat_393331234567"
