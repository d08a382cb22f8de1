"""The chat box's API (``/widget/api``) over plain HTTP: what a chat-box token reaches,
what it cannot, and the live stream's events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from tests.support.messages import wait_for
from tests.support.users import TestUser, bearer, create_test_user, login
from tidings.accounts.models import User
from tidings.core.environments import Environment
from tidings.core.ids import new_id
from tidings.templates.models import Template
from tidings.templates.repository import TemplateRepository
from tidings.widget.access import widget_codec
from tidings.widget.live import chat_events
from tidings.widget.tokens import WidgetClaims

API = "/sandbox/widget/api"
ADA = "+393331234567"
BOB = "+393339876543"


async def widget_token(
    client: httpx.AsyncClient, token: str, chat: str = ADA, *, base: str = "/sandbox", **extra: Any
) -> str:
    answer = await client.post(
        f"{base}/api/v4/iframes/whatsapp/chat-box",
        json={"chatId": chat, **extra},
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    return parse_qs(urlsplit(answer.json()["url"]).query)["token"][0]


async def say(client: httpx.AsyncClient, token: str, to: str, body: str) -> dict[str, Any]:
    answer = await client.post(
        f"/sandbox/api/v4/whatsapp/chats/{to}/message", json={"body": body}, headers=bearer(token)
    )
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


async def test_history_shows_only_the_tokens_chat_both_ways(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    first = await say(client, token, ADA, "Your order shipped")
    await say(client, token, BOB, "Hello Bob")
    inbound = await hear(client, token, ADA, "Thanks!")
    widget = await widget_token(client, token, "chat_393331234567")

    answer = await client.get(f"{API}/messages", headers=bearer(widget))
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert [m["id"] for m in page["data"]] == [inbound["id"], first["id"]]
    assert page["data"][0] | {"createdAt": None, "updatedAt": None} == {
        "id": inbound["id"],
        "direction": "inbound",
        "status": "received",
        "body": "Thanks!",
        "template": None,
        "mediaType": None,
        "error": None,
        "createdAt": None,
        "updatedAt": None,
    }
    # Nothing of the account's wider resource leaks into the page's view.
    assert "credits" not in page["data"][1] and "to" not in page["data"][1]

    older = await client.get(f"{API}/messages", params={"limit": 1}, headers=bearer(widget))
    assert older.json()["nextCursor"] == inbound["id"]
    rest = await client.get(
        f"{API}/messages", params={"limit": 1, "after": inbound["id"]}, headers=bearer(widget)
    )
    assert [m["id"] for m in rest.json()["data"]] == [first["id"]]


async def test_a_reply_goes_through_the_send_path_to_that_contact(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    widget = await widget_token(client, token)
    answer = await client.post(
        f"{API}/messages",
        json={"body": "On its way", "to": BOB},  # a "to" is ignored: the token decides
        headers=bearer(widget),
    )
    assert answer.status_code == 200, answer.text
    sent = answer.json()
    assert sent["direction"] == "outbound" and sent["status"] in {"sent", "delivered", "read"}
    stored = await wait_for(client, token, sent["id"], {"read"})
    assert stored["to"] == ADA and stored["body"] == "On its way"


async def test_the_same_idempotency_key_sends_once(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    widget = await widget_token(client, token)
    headers = {**bearer(widget), "Idempotency-Key": "widget-key-1"}
    first = await client.post(f"{API}/messages", json={"body": "Once"}, headers=headers)
    second = await client.post(f"{API}/messages", json={"body": "Once"}, headers=headers)
    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    history = await client.get(f"{API}/messages", headers=bearer(widget))
    assert len(history.json()["data"]) == 1


async def test_a_read_only_token_cannot_send(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    widget = await widget_token(client, token, readOnly=True)
    answer = await client.post(f"{API}/messages", json={"body": "Hi"}, headers=bearer(widget))
    assert answer.status_code == 403
    assert answer.json()["code"] == "forbidden"
    info = await client.get(f"{API}/chat", headers=bearer(widget))
    assert info.json()["readOnly"] is True


async def test_a_closed_window_refuses_free_text(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    widget = await widget_token(client, token, "+15550000006")
    info = await client.get(f"{API}/chat", headers=bearer(widget))
    assert info.status_code == 200, info.text
    assert info.json()["window"] == {"open": False, "expiresAt": None, "lastInboundAt": None}
    answer = await client.post(f"{API}/messages", json={"body": "Hi"}, headers=bearer(widget))
    assert answer.status_code == 422
    assert answer.json()["code"] == "outside_customer_service_window"


async def test_tokens_do_not_cross_between_the_api_and_the_widget(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    widget = await widget_token(client, token)
    # A regular token is refused by every widget route...
    for method, path in (("GET", "/chat"), ("GET", "/messages"), ("POST", "/messages")):
        answer = await client.request(
            method, f"{API}{path}", json={"body": "x"}, headers=bearer(token)
        )
        assert answer.status_code == 401, (path, answer.text)
        assert answer.json()["code"] == "invalid_token"
        assert "WWW-Authenticate" in answer.headers
    stream = await client.get(f"{API}/stream", params={"token": token})
    assert stream.status_code == 401
    # ... and a widget token by every /api/v4 route.
    for method, path in (
        ("GET", "/sandbox/api/v4/account"),
        ("GET", f"/sandbox/api/v4/whatsapp/chats/{ADA}/messages"),
        ("POST", f"/sandbox/api/v4/whatsapp/chats/{ADA}/message"),
        ("POST", "/sandbox/api/v4/iframes/whatsapp/chat-box"),
    ):
        answer = await client.request(
            method, path, json={"body": "x", "chatId": ADA}, headers=bearer(widget)
        )
        assert answer.status_code == 401, (path, answer.text)
        assert answer.json()["code"] == "invalid_token"


async def test_a_token_is_bound_to_its_environment(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    widget = await widget_token(client, token)
    answer = await client.get("/widget/api/messages", headers=bearer(widget))
    assert answer.status_code == 401
    assert answer.json()["code"] == "wrong_environment"
    page = await client.get("/widget/whatsapp/chat-box", params={"token": widget})
    assert page.status_code == 401


async def test_a_tampered_token_is_refused(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    widget = await widget_token(client, token)
    header, payload, signature = widget.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    answer = await client.get(f"{API}/messages", headers=bearer(forged))
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_token"


async def test_another_accounts_messages_stay_invisible(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    other = await create_test_user(app, "eve@example.com")
    other_token = await login(client, other)
    await say(client, other_token, ADA, "Eve's message to the same number")
    token = await login(client, user)
    widget = await widget_token(client, token)
    answer = await client.get(f"{API}/messages", headers=bearer(widget))
    assert answer.json()["data"] == []


async def test_a_disabled_users_chat_boxes_stop_working(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    widget = await widget_token(client, token)
    async with app.state.ctx.sessions() as session:
        await session.execute(update(User).where(User.id == user.user_id).values(disabled=True))
        await session.commit()
    answer = await client.get(f"{API}/messages", headers=bearer(widget))
    assert answer.status_code == 401
    assert "disabled" in answer.json()["detail"]


async def next_event(events: AsyncIterator[str], timeout: float = 10) -> tuple[str, Any]:
    """The next named event of the stream (comments and retry lines skipped)."""
    while True:
        chunk = await asyncio.wait_for(anext(events), timeout)
        fields = dict(
            line.split(": ", 1) for line in chunk.strip().splitlines() if not line.startswith(":")
        )
        if "event" in fields:
            return fields["event"], json.loads(fields["data"])


@pytest.fixture
async def claims(app: FastAPI, client: httpx.AsyncClient, user: TestUser) -> WidgetClaims:
    token = await login(client, user)
    widget = await widget_token(client, token)
    decoded = widget_codec(app.state.ctx).decode(widget)
    assert decoded.environment == Environment.SANDBOX
    return decoded


async def test_the_stream_sends_the_window_then_new_messages_and_status_changes(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, claims: WidgetClaims
) -> None:
    token = await login(client, user)
    events = chat_events(app.state.ctx, claims, None)
    try:
        kind, window = await next_event(events)
        assert kind == "window" and window["open"] is True
        inbound = await hear(client, token, ADA, "Is it shipped?")
        await hear(client, token, BOB, "Another chat")
        kind, data = await next_event(events)
        assert (kind, data["id"], data["body"]) == ("message", inbound["id"], "Is it shipped?")
        sent = await say(client, token, ADA, "Yes")
        seen: list[str] = []
        while "read" not in seen:
            kind, data = await next_event(events)
            if kind == "message":
                assert data["id"] == sent["id"], data
                seen.append(data["status"])
        assert seen == sorted(seen, key=["queued", "sent", "delivered", "read"].index)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def add_template(
    app: FastAPI, user: TestUser, name: str, status: str, components: list[dict[str, Any]]
) -> None:
    now = datetime.now(UTC)
    async with app.state.ctx.sessions() as session:
        TemplateRepository(session).add(
            Template(
                id=new_id("tpl"),
                account_id=user.account_id,
                environment="sandbox",
                name=name,
                language="en",
                category="UTILITY",
                status=status,
                rejected_reason=None,
                parameter_format="POSITIONAL",
                components=components,
                review_due_at=None,
                created_at=now,
                updated_at=now,
            )
        )
        await session.commit()


ORDER_UPDATE = [
    {"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped."},
    {
        "type": "BUTTONS",
        "buttons": [{"type": "URL", "text": "Track", "url": "https://t.example/{{1}}"}],
    },
]


async def test_templates_lists_the_approved_ones_with_their_inputs_and_sends_one(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await add_template(app, user, "widget_note", "APPROVED", ORDER_UPDATE)
    await add_template(app, user, "widget_draft", "PENDING", [{"type": "BODY", "text": "Sale!"}])
    token = await login(client, user)
    widget = await widget_token(client, token, "+15550000006")

    listed = await client.get(f"{API}/templates", headers=bearer(widget))
    assert listed.status_code == 200, listed.text
    offered = {template["name"]: template for template in listed.json()["data"]}
    assert "widget_draft" not in offered  # PENDING: not offered
    assert offered["widget_note"] == (
        {
            "name": "widget_note",
            "language": "en",
            "category": "UTILITY",
            "parameterFormat": "POSITIONAL",
            "headerFormat": None,
            "text": "Hi {{1}}, order {{2}} has shipped.",
            "fields": [
                {"part": "body", "key": "1", "label": "Body {{1}}"},
                {"part": "body", "key": "2", "label": "Body {{2}}"},
                {"part": "buttons", "key": "0", "label": "Button “Track”"},
            ],
        }
    )
    # The sandbox's ready set includes a named template with an image header.
    spring = offered["spring_offer"]
    assert spring["parameterFormat"] == "NAMED" and spring["headerFormat"] == "IMAGE"
    assert spring["fields"][0] == {"part": "header", "key": "media", "label": "Header image URL"}
    sent = await client.post(
        f"{API}/templates/send",
        json={
            "name": "widget_note",
            "language": "en",
            "parameters": {"body": ["Ada", "#1234"], "buttons": ["1234"]},
        },
        headers=bearer(widget),
    )
    assert sent.status_code == 200, sent.text
    view = sent.json()
    assert view["template"] == "widget_note"
    assert view["body"] == "Hi Ada, order #1234 has shipped."
    stored = await wait_for(client, token, view["id"], {"sent", "delivered", "read"})
    assert stored["to"] == "+15550000006"

    wrong = await client.post(
        f"{API}/templates/send",
        json={"name": "widget_note", "language": "en", "parameters": {"body": ["Ada"]}},
        headers=bearer(widget),
    )
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "template_params_mismatch"
    pending = await client.post(
        f"{API}/templates/send",
        json={"name": "widget_draft", "language": "en"},
        headers=bearer(widget),
    )
    assert pending.status_code == 422
    assert pending.json()["code"] == "template_not_approved"


async def test_a_read_only_token_cannot_send_templates(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await add_template(app, user, "widget_note", "APPROVED", ORDER_UPDATE)
    token = await login(client, user)
    widget = await widget_token(client, token, "+15550000006", readOnly=True)
    answer = await client.post(
        f"{API}/templates/send",
        json={"name": "widget_note", "language": "en", "parameters": {"body": ["A", "B"]}},
        headers=bearer(widget),
    )
    assert answer.status_code == 403
