"""Sending through the Graph fake: the window, media, replies, Meta's refusals
(131026 now, 131047 later in a ``failed`` status), credentials refused (190: the
provider fails, messages wait without using attempts), throttling (130429: retried
without using attempts), and statuses out of order or repeated."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from starlette.responses import JSONResponse

from tests.fakes.graph_api import GraphApi, graph_error
from tests.providers.helpers import eventually, provider, read
from tests.providers.whatsapp_cloud.conftest import Business
from tests.support.users import bearer
from tidings.messages.models import Message

CONTACT = "+393331234567"


async def say(
    client: httpx.AsyncClient, business: Business, to: str = CONTACT, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v4/whatsapp/chats/{to}/message",
        json=body or {"body": "Hello!"},
        headers={**bearer(business.token), "Prefer": "respond-async"},
    )


async def until(
    client: httpx.AsyncClient, business: Business, message_id: str, *statuses: str
) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def reached() -> bool:
        found.update(await read(client, business.token, message_id))
        return found["status"] in statuses

    await eventually(reached, f"{message_id} {statuses}")
    return found


async def test_outside_the_window_nothing_reaches_graph(
    client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    answer = await say(client, business)
    assert answer.status_code == 422
    assert answer.json()["code"] == "outside_customer_service_window"
    assert graph.sent() == []


async def test_media_and_replies_become_graph_json(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    inbound_wamid = await graph.contact_writes(CONTACT, "Can you send the receipt?")

    async def recorded() -> bool:
        async with app.state.ctx.sessions() as session:
            found = await session.scalar(
                select(Message.id).where(Message.provider_message_id == inbound_wamid)
            )
        return found is not None

    await eventually(recorded, "the contact's message")
    async with app.state.ctx.sessions() as session:
        replied_id = await session.scalar(
            select(Message.id).where(Message.provider_message_id == inbound_wamid)
        )
    receipt = await say(
        client,
        business,
        media={
            "type": "document",
            "url": "https://cdn.example.com/receipt.pdf",
            "caption": "Your receipt",
            "filename": "receipt.pdf",
        },
        replyTo=replied_id,
    )
    assert receipt.status_code == 202, receipt.text
    await until(client, business, receipt.json()["id"], "read")
    photo = await say(
        client,
        business,
        body="Here it is, in red",
        media={"type": "image", "url": "https://cdn.example.com/red.jpg"},
        previewUrl=True,
    )
    await until(client, business, photo.json()["id"], "read")
    voice = await say(
        client,
        business,
        body="And a voice note",
        media={"type": "audio", "url": "https://cdn.example.com/note.ogg"},
    )
    voiced = await until(client, business, voice.json()["id"], "read")

    document, image, audio, text = graph.sent()
    assert document["type"] == "document"
    assert document["document"] == {
        "link": "https://cdn.example.com/receipt.pdf",
        "caption": "Your receipt",
        "filename": "receipt.pdf",
    }
    assert document["context"] == {"message_id": inbound_wamid}
    # Without a caption, the body is the image's caption.
    assert image["image"] == {
        "link": "https://cdn.example.com/red.jpg",
        "caption": "Here it is, in red",
    }
    assert "context" not in image
    # Audio takes no caption: the text follows as a second message of the same one.
    assert audio["audio"] == {"link": "https://cdn.example.com/note.ogg"}
    assert text["text"] == {"body": "And a voice note", "preview_url": False}
    assert audio["biz_opaque_callback_data"] == text["biz_opaque_callback_data"] == voiced["id"]


async def test_undeliverable_now_fails_and_a_later_131047_ends_undelivered(
    client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    gone, late = "+393330000001", "+393330000002"
    for number in (gone, late):
        await graph.contact_writes(number)
    graph.undeliverable.add(gone.removeprefix("+"))
    graph.script[late.removeprefix("+")] = ["sent", "failed:131047"]

    async def window_open() -> bool:
        return (await say(client, business, to=gone)).status_code == 202

    await eventually(window_open, "the window opened")
    failed = [m for m in await _messages(client, business) if m["to"] == gone]
    refused = await until(client, business, failed[0]["id"], "failed")
    assert refused["error"]["code"] == "undeliverable"
    assert "131026" in refused["error"]["message"]
    assert refused["attempts"] == 1

    later = await say(client, business, to=late)
    ended = await until(client, business, later.json()["id"], "undelivered")
    assert ended["error"]["code"] == "outside_customer_service_window"
    assert "131047" in ended["error"]["message"]
    assert "24 hours" in ended["error"]["message"]


async def test_read_before_delivered_and_repeats_never_go_backwards(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    await graph.contact_writes(CONTACT)
    graph.script[CONTACT.removeprefix("+")] = ["sent", "read", "sent", "delivered", "read"]

    async def accepted() -> bool:
        return (await say(client, business)).status_code == 202

    await eventually(accepted, "window open")
    (message,) = await _messages(client, business)
    await graph.settled()
    done = await until(client, business, message["id"], "read")
    applied = [e["status"] for e in done["events"] if e["applied"]]
    assert applied == ["queued", "sent", "read"]


async def test_credentials_refused_fail_the_provider_and_messages_wait(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    await graph.contact_writes(CONTACT)
    graph.access_token = "EAAG-rotated-by-meta"

    async def accepted() -> bool:
        return (await say(client, business)).status_code == 202

    await eventually(accepted, "window open")
    (message,) = await _messages(client, business)

    async def failing() -> bool:
        shown = await provider(client, business.token, business.provider_id)
        return bool(shown["health"] == "failing")

    await eventually(failing, "the provider failing")
    shown = await provider(client, business.token, business.provider_id)
    assert shown["lastError"]["code"] == "credentials_refused"
    assert "190" in shown["lastError"]["message"]
    assert "EAAG" not in str(shown)
    waiting = await read(client, business.token, message["id"])
    # Queued, its refused attempts given back (one may be in flight as it is read).
    assert waiting["status"] == "queued" and waiting["attempts"] <= 1

    # The operator pastes the new token (the other secrets left out are kept).
    config = graph.provider_config()
    del config["appSecret"], config["verifyToken"]
    patched = await client.patch(
        f"/api/v4/providers/{business.provider_id}",
        json={"config": config},
        headers=bearer(business.token),
    )
    assert patched.status_code == 200, patched.text
    done = await until(client, business, message["id"], "read")
    # Every refused attempt was given back: only the one that went counts.
    assert done["attempts"] == 1


async def test_throttling_is_retried_without_using_attempts(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    # The number takes 3 a second; the provider was told 80.
    graph.messages_per_second = 3.0
    graph.default_script = ("sent",)
    contacts = [f"+39333000{index:04d}" for index in range(12)]
    for contact in contacts:
        await graph.contact_writes(contact)
    ids = []
    for contact in contacts:

        async def accepted(to: str = contact) -> bool:
            answer = await say(client, business, to=to)
            if answer.status_code == 202:
                ids.append(answer.json()["id"])
            return answer.status_code == 202

        await eventually(accepted, "window open")
    for message_id in ids:
        sent = await until(client, business, message_id, "sent", "failed")
        assert sent["status"] == "sent"
        assert sent["attempts"] == 1
    assert graph.throttled > 0


async def _messages(client: httpx.AsyncClient, business: Business) -> list[dict[str, Any]]:
    answer = await client.get(
        "/api/v4/messages", params={"channel": "whatsapp"}, headers=bearer(business.token)
    )
    assert answer.status_code == 200, answer.text
    return [m for m in answer.json()["data"] if m["direction"] == "outbound"]


async def test_a_graph_5xx_or_131000_is_retried(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    await graph.contact_writes(CONTACT)
    refusals = iter(
        [
            JSONResponse({"error": {"message": "Service unavailable", "code": 2}}, 503),
            graph_error(500, 131000, "Something went wrong", "Try again later."),
        ]
    )
    graph.answer_with(lambda body: next(refusals, None))

    async def accepted() -> bool:
        return (await say(client, business)).status_code == 202

    await eventually(accepted, "window open")
    (message,) = await _messages(client, business)
    done = await until(client, business, message["id"], "read")
    # Two refused attempts, then the one Graph took (waits for the circuit use none).
    assert done["attempts"] == 3


async def test_a_sticker_goes_without_caption_its_text_after_it(
    client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    await graph.contact_writes(CONTACT)

    async def accepted() -> bool:
        answer = await say(
            client,
            business,
            body="Thanks!",
            media={"type": "sticker", "url": "https://cdn.example.com/thanks.webp"},
        )
        return answer.status_code == 202

    await eventually(accepted, "window open")
    (message,) = await _messages(client, business)
    done = await until(client, business, message["id"], "read")
    sticker, text = graph.sent()
    assert sticker["sticker"] == {"link": "https://cdn.example.com/thanks.webp"}
    assert text["text"]["body"] == "Thanks!"
    assert sticker["biz_opaque_callback_data"] == text["biz_opaque_callback_data"] == done["id"]
