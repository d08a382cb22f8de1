"""The inbound edge with Meta's own webhook examples: the verification handshake,
signatures over the raw bytes (wrong, missing, or over re-serialised JSON: 401 and
nothing recorded), each example's documented effect, Meta's repeats stored once,
and routing by ``phone_number_id``."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select

from tests.fakes.graph_api import GraphApi, signature
from tests.providers.helpers import eventually
from tests.providers.whatsapp_cloud import meta_examples
from tests.providers.whatsapp_cloud.conftest import Business, outbox
from tests.support.providers import add_provider
from tidings.inbound.router import CONFIG_TTL_SECONDS
from tidings.messages.models import Message
from tidings.providers.models import InboxEvent


async def stored(app: FastAPI, provider_id: str) -> list[InboxEvent]:
    async with app.state.ctx.sessions() as session:
        return list(
            await session.scalars(
                select(InboxEvent)
                .where(InboxEvent.provider_id == provider_id)
                .order_by(InboxEvent.id)
            )
        )


async def inbound_messages(app: FastAPI, account_id: str) -> list[Message]:
    async with app.state.ctx.sessions() as session:
        return list(
            await session.scalars(
                select(Message)
                .where(Message.account_id == account_id, Message.direction == "inbound")
                .order_by(Message.created_at)
            )
        )


# -- the verification handshake ---------------------------------------------------------


async def test_handshake_echoes_the_challenge_for_the_right_token(
    client: httpx.AsyncClient, business: Business
) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": "verify-me-please",
        "hub.challenge": "1158201444",
    }
    answer = await client.get(business.inbound_path, params=params)
    assert answer.status_code == 200
    assert answer.text == "1158201444"
    assert answer.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me-pleasE", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "verify-me-please", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me-please"},
    ],
)
async def test_handshake_refuses_anything_else(
    client: httpx.AsyncClient, business: Business, params: dict[str, str]
) -> None:
    answer = await client.get(business.inbound_path, params=params)
    assert answer.status_code == 403
    assert answer.json()["code"] == "verification_failed"
    assert "1" not in answer.text.split('"detail"')[0]


async def test_unknown_providers_and_kinds_are_404(
    client: httpx.AsyncClient, business: Business
) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "verify-me-please", "hub.challenge": "1"}
    assert (await client.get("/inbound/whatsapp/prv_nope", params=params)).status_code == 404
    wrong_kind = f"/inbound/sms/{business.provider_id}"
    assert (await client.get(wrong_kind, params=params)).status_code == 404
    # The kind's own name works as well as the channel's (the provider's inboundUrl).
    own = f"/inbound/whatsapp_cloud/{business.provider_id}"
    assert (await client.get(own, params=params)).text == "1"


async def test_the_inbound_path_is_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/inbound")]


# -- signatures ---------------------------------------------------------------------------


def _raw(body: dict[str, Any]) -> bytes:
    # As Meta sends it: non-ASCII escaped (\u00e4, lowercase hex).
    return json.dumps(body, separators=(",", ":")).encode()


async def _post(
    client: httpx.AsyncClient, path: str, raw: bytes, header: str | None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-Hub-Signature-256"] = header
    return await client.post(path, content=raw, headers=headers)


def _non_ascii_text() -> dict[str, Any]:
    body = meta_examples.for_fake(meta_examples.TEXT)
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message["text"]["body"] = "Grüße aus München — ça va? 👍"
    return body


@pytest.mark.parametrize("how", ["wrong secret", "unsigned", "re-serialised", "tampered"])
async def test_bad_signatures_are_401_and_record_nothing(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business, how: str
) -> None:
    body = _non_ascii_text()
    raw = _raw(body)
    header: str | None = signature(graph.app_secret, raw)
    if how == "wrong secret":
        header = signature("not-the-app-secret", raw)
    elif how == "unsigned":
        header = None
    elif how == "re-serialised":
        # Signed over Meta's bytes, but what arrives was decoded and encoded again.
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        raw = raw.replace(b"Does", b"DOES").replace(b"aus", b"AUS")
    answer = await _post(client, business.inbound_path, raw, header)
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_signature"
    assert await stored(app, business.provider_id) == []
    assert await inbound_messages(app, business.user.account_id) == []


async def test_non_ascii_signed_over_the_raw_bytes_is_taken(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    raw = _raw(_non_ascii_text())
    assert b"\\u00fc" in raw
    answer = await _post(client, business.inbound_path, raw, signature(graph.app_secret, raw))
    assert answer.status_code == 200

    async def recorded() -> bool:
        return len(await inbound_messages(app, business.user.account_id)) == 1

    await eventually(recorded, "the contact's message recorded")
    (message,) = await inbound_messages(app, business.user.account_id)
    assert message.body == "Grüße aus München — ça va? 👍"


# -- Meta's examples, each with its documented effect ---------------------------------------


@pytest.mark.parametrize(
    ("example", "body", "kind"),
    [
        (meta_examples.TEXT, "Does it come in another color?", "text"),
        (meta_examples.IMAGE, "Can I get this in red?", "image"),
        (meta_examples.BUTTON_REPLY, "Cancel", "interactive"),
        (meta_examples.REACTION, "\U0001f44d", "reaction"),
        (meta_examples.LOCATION, "Main Street Beach", "location"),
    ],
)
async def test_meta_message_examples_become_received_messages(
    app: FastAPI,
    client: httpx.AsyncClient,
    graph: GraphApi,
    business: Business,
    example: dict[str, Any],
    body: str,
    kind: str,
) -> None:
    answer = await graph.post_webhook(meta_examples.for_fake(example))
    assert answer.status_code == 200

    async def received() -> bool:
        return any(
            e.type == "message.received" for e in await outbox(app, business.user.account_id)
        )

    await eventually(received, "message.received")
    (message,) = await inbound_messages(app, business.user.account_id)
    original = example["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message.from_address == "+16505551234"
    assert message.to_address == "+15550783881"
    assert message.body == body
    assert message.provider_message_id == original["id"]
    assert message.provider_id == business.provider_id
    assert message.content["type"] == kind
    assert message.content[kind] == original[kind]
    assert message.content["contact"] == {"name": "Sheena Nelson", "waId": "16505551234"}
    if kind == "interactive":
        assert message.content["context"]["id"].startswith("wamid.")
    if kind == "image":
        # Meta's media id, to be fetched with the token within 7 days.
        assert message.content["image"]["id"] == "1003383421387256"


async def test_a_repeated_delivery_is_stored_once(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    body = meta_examples.for_fake(meta_examples.TEXT)
    for _ in range(3):
        assert (await graph.post_webhook(body)).status_code == 200
    rows = await stored(app, business.provider_id)
    assert [row.dedupe_key for row in rows] == [
        "message:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    ]

    async def applied() -> bool:
        return all(row.state == "done" for row in await stored(app, business.provider_id))

    await eventually(applied, "applied")
    assert len(await inbound_messages(app, business.user.account_id)) == 1


async def test_every_entry_and_change_of_a_batched_body_is_read(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    first = meta_examples.for_fake(meta_examples.TEXT)
    second = meta_examples.for_fake(meta_examples.IMAGE)
    third = meta_examples.for_fake(meta_examples.LOCATION)
    batched = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": first["entry"][0]["id"],
                "changes": first["entry"][0]["changes"] + second["entry"][0]["changes"],
            },
            third["entry"][0],
        ],
    }
    assert (await graph.post_webhook(batched)).status_code == 200
    assert len(await stored(app, business.provider_id)) == 3


async def test_reports_for_another_number_of_the_account_go_to_its_provider(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    other = await add_provider(
        app,
        business.user.account_id,
        "whatsapp",
        "whatsapp_cloud",
        config=graph.provider_config(phoneNumberId="200000000000001"),
        priority=2,
    )
    body = meta_examples.for_fake(meta_examples.TEXT)
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "200000000000001"
    assert (await graph.post_webhook(body)).status_code == 200
    assert await stored(app, business.provider_id) == []
    assert len(await stored(app, other)) == 1
    # A number no provider of this account has: acknowledged, nothing stored.
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "300000000000009"
    assert (await graph.post_webhook(body)).status_code == 200
    async with app.state.ctx.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboxEvent)) == 1


async def test_a_signed_body_that_is_not_a_webhook_is_400(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    for raw in (b"[1, 2]", b"not json", b'{"object": "page"}'):
        answer = await _post(client, business.inbound_path, raw, signature(graph.app_secret, raw))
        assert answer.status_code == 400, raw
        assert answer.json()["code"] == "invalid_body"
    assert await stored(app, business.provider_id) == []


async def test_a_flood_of_posts_costs_one_read_per_provider(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # A provider's row read by its id (what an inbound post needs), not the
        # background's reads of the table (housekeeping looks for deleted providers).
        if "FROM providers" in statement and "providers.id = " in statement:
            reads.append(statement)

    engine = app.state.ctx.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    started = time.monotonic()
    try:
        for path in (business.inbound_path, "/inbound/whatsapp/prv_01M95NOTAPROVIDER0000000000"):
            for _ in range(20):
                answer = await _post(client, path, b"{}", "sha256=" + "0" * 64)
                assert answer.status_code in (401, 404)
        # Not a provider id at all: refused without a read.
        assert (await _post(client, "/inbound/whatsapp/x' OR 1=1", b"{}", None)).status_code == 404
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # One read per provider per CONFIG_TTL_SECONDS (a loaded machine may take longer
    # than one period over the 41 posts), never one per post.
    periods = 1 + int((time.monotonic() - started) // CONFIG_TTL_SECONDS)
    assert 2 <= len(reads) <= 2 * periods, reads


async def test_meta_sized_payloads_are_taken_and_larger_refused(
    client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    # Meta documents webhook payloads of up to 3 MB; the API's own limit is 1 MB.
    body = _non_ascii_text()
    body["padding"] = "x" * 2_500_000
    raw = _raw(body)
    answer = await _post(client, business.inbound_path, raw, signature(graph.app_secret, raw))
    assert answer.status_code == 200, answer.text
    body["padding"] = "x" * 5_000_000
    raw = _raw(body)
    answer = await _post(client, business.inbound_path, raw, signature(graph.app_secret, raw))
    assert answer.status_code == 413
    assert answer.json()["code"] == "payload_too_large"
