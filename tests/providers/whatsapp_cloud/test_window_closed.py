"""WhatsApp's word on the 24-hour window wins over Tidings' count: when Graph
refuses a free-form message with 131047 ("Re-engagement message"), at once or in a
later ``failed`` status, the message ends with ``outside_customer_service_window``
and the conversation's window is closed: later free-form sends are refused up
front (nothing reaches Graph), the chat shows it closed, template notifications
still go, and the contact writing again opens it."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.fakes.graph_api import GraphApi
from tests.providers.helpers import FAST, eventually
from tests.providers.whatsapp_cloud.conftest import Business
from tests.providers.whatsapp_cloud.test_templates import ORDER_UPDATE, listed, synced
from tests.providers.whatsapp_cloud.test_user_ids import USER_ID, accepted, chats, until
from tests.support.users import bearer
from tidings.settings import Settings


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    """These run on PostgreSQL too (the conversation queries and the contacts)."""
    return make_settings(data_dir, database_url, **FAST)


CONTACT = "+393331234567"


async def send(
    client: httpx.AsyncClient, business: Business, chat: str, **headers: str
) -> httpx.Response:
    return await client.post(
        f"/api/v4/whatsapp/chats/{chat}/message",
        json={"body": "Are you still there?"},
        headers={**bearer(business.token), **headers},
    )


async def notify(client: httpx.AsyncClient, business: Business, to: str) -> dict[str, Any]:
    answer = await client.post(
        "/api/v4/whatsapp/notifications",
        json={
            "to": to,
            "template": {
                "name": "order_update",
                "language": "en_US",
                "parameters": {"header": ["#1234"], "body": ["Ada", "#1234"], "buttons": ["1234"]},
            },
        },
        headers={**bearer(business.token), "Prefer": "respond-async"},
    )
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


async def templates_ready(client: httpx.AsyncClient, graph: GraphApi, business: Business) -> None:
    graph.templates = [ORDER_UPDATE]
    await synced(client, business)

    async def approved() -> bool:
        return len(await listed(client, business.token)) == 1

    await eventually(approved, "templates synced")


async def test_a_131047_answer_closes_the_window_until_the_contact_writes(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    await templates_ready(client, graph, business)
    # The contact wrote a minute ago (Meta stamps messages in whole seconds).
    await graph.contact_writes(CONTACT, "Hi!", ago=60)
    opened = await accepted(client, business, CONTACT)
    await until(client, business, opened, "read")
    (chat,) = await chats(client, business)
    assert chat["windowOpen"] is True

    # More than 24 hours pass as WhatsApp counts them, not as Tidings does.
    graph.close_window(CONTACT)
    answer = await send(client, business, CONTACT)
    assert answer.status_code in (200, 202), answer.text
    refused = answer.json()
    if refused["status"] != "failed":
        refused = await until(client, business, refused["id"], "failed")
    assert refused["status"] == "failed"
    assert refused["error"]["code"] == "outside_customer_service_window"
    assert "131047" in refused["error"]["message"]
    assert "24 hours" in refused["error"]["message"]
    assert refused["attempts"] == 1
    reached_graph = len(graph.sent())

    # From now on the API refuses free-form messages itself, naming the templates.
    again = await send(client, business, CONTACT, Prefer="respond-async")
    assert again.status_code == 422, again.text
    problem = again.json()
    assert problem["code"] == "outside_customer_service_window"
    assert "WhatsApp refused" in problem["detail"]
    assert problem["templateEndpoint"] == "/api/v4/whatsapp/notifications"
    by_chat_id = await send(client, business, "chat_393331234567", Prefer="respond-async")
    assert by_chat_id.status_code == 422
    bulk = await client.post(
        "/api/v4/whatsapp/bulk",
        json={"body": "Hi {{name}}", "recipients": [{"to": CONTACT, "variables": {"name": "A"}}]},
        headers=bearer(business.token),
    )
    assert [(e["index"], e["code"]) for e in bulk.json()["errors"]] == [
        (0, "outside_customer_service_window")
    ], bulk.text
    assert len(graph.sent()) == reached_graph
    (chat,) = await chats(client, business)
    assert chat["windowOpen"] is False
    assert chat["windowExpiresAt"] is not None
    # The embeddable chat box shows it closed too.
    box = await client.post(
        "/api/v4/iframes/whatsapp/chat-box",
        json={"chatId": CONTACT},
        headers=bearer(business.token),
    )
    assert box.status_code == 200, box.text
    widget = parse_qs(urlsplit(box.json()["url"]).query)["token"][0]
    shown = await client.get("/widget/api/chat", headers=bearer(widget))
    assert shown.status_code == 200, shown.text
    assert shown.json()["window"]["open"] is False

    # Template notifications still go.
    template = await notify(client, business, CONTACT)
    await until(client, business, template["id"], "read")
    assert graph.sent()[-1]["type"] == "template"

    # The contact writes again: free-form messages are allowed again.
    await graph.contact_writes(CONTACT, "I'm back")
    back = await accepted(client, business, CONTACT)
    await until(client, business, back, "read")
    (chat,) = await chats(client, business)
    assert chat["windowOpen"] is True


async def test_a_later_failed_131047_closes_it_too(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    await graph.contact_writes_as_user(USER_ID, "Hello", ago=60)
    graph.script[USER_ID] = ["sent", "failed:131047"]
    message_id = await accepted(client, business, USER_ID)
    ended = await until(client, business, message_id, "undelivered")
    assert ended["error"]["code"] == "outside_customer_service_window"
    assert "131047" in ended["error"]["message"]

    refused = await send(client, business, USER_ID, Prefer="respond-async")
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "outside_customer_service_window"
    assert len(graph.sent()) == 1
    (chat,) = await chats(client, business)
    assert chat["windowOpen"] is False

    del graph.script[USER_ID]
    await graph.contact_writes_as_user(USER_ID, "Hello again")
    back = await accepted(client, business, USER_ID)
    await until(client, business, back, "read")
