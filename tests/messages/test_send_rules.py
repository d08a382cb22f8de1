"""What a send checks before storing: numbers, sender ids, length, content, timing."""

from __future__ import annotations

import base64
import email
from email import policy

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.support.users import TestUser, bearer, login
from tidings.providers.simulator.mailbox import SandboxEmail

SMS = "/sandbox/api/v4/sms/send"
EMAIL = "/sandbox/api/v4/email/send"


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def _sms(client: httpx.AsyncClient, token: str, **payload: object) -> httpx.Response:
    return await client.post(
        SMS, json={"to": "+393331234567", "body": "Hi", **payload}, headers=bearer(token)
    )


@pytest.mark.parametrize("number", ["+1", "12345", "+999123456789", "not a number", "+39 333 12"])
async def test_invalid_numbers(client: httpx.AsyncClient, token: str, number: str) -> None:
    answer = await _sms(client, token, to=number)
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_phone_number"
    assert answer.json()["errors"][0]["field"] == "to"


async def test_number_without_plus_is_stored_as_e164(client: httpx.AsyncClient, token: str) -> None:
    answer = await _sms(client, token, to="39 333 123 4567")
    assert answer.status_code == 200
    assert answer.json()["to"] == "+393331234567"


@pytest.mark.parametrize(
    ("body", "segments", "encoding"),
    [
        ("a" * 160, 1, "GSM-7"),
        ("a" * 161, 2, "GSM-7"),
        ("€" * 80, 1, "GSM-7"),
        ("ж" * 71, 2, "UCS-2"),
    ],
)
async def test_segments_and_encoding(
    client: httpx.AsyncClient, token: str, body: str, segments: int, encoding: str
) -> None:
    answer = await _sms(client, token, body=body)
    assert (answer.json()["segments"], answer.json()["encoding"]) == (segments, encoding)


async def test_message_too_long(client: httpx.AsyncClient, token: str) -> None:
    answer = await _sms(client, token, body="x" * (153 * 10 + 1))
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "message_too_long"
    assert problem["segments"] == 11


@pytest.mark.parametrize("sender", ["Tidings", "ACME 24", "+393331234567", "12345"])
async def test_valid_senders(client: httpx.AsyncClient, token: str, sender: str) -> None:
    answer = await _sms(client, token, **{"from": sender})
    assert answer.status_code == 200 and answer.json()["from"] == sender


@pytest.mark.parametrize("sender", ["TwelveChars1", "12", "<script>", "ééé"])
async def test_invalid_senders(client: httpx.AsyncClient, token: str, sender: str) -> None:
    answer = await _sms(client, token, **{"from": sender})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "from"


async def test_validity_period_bounds(client: httpx.AsyncClient, token: str) -> None:
    assert (await _sms(client, token, validityPeriod=3600)).status_code == 200
    assert (await _sms(client, token, validityPeriod=10)).status_code == 422


async def test_lone_surrogate_is_refused(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.post(
        SMS,
        content=b'{"to": "+393331234567", "body": "bad \\ud800 text"}',
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422


async def test_whatsapp_needs_body_or_media(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.post(
        "/sandbox/api/v4/whatsapp/chats/+393331234567/message", json={}, headers=bearer(token)
    )
    assert answer.status_code == 422


async def test_whatsapp_media_chat_id_and_reply(client: httpx.AsyncClient, token: str) -> None:
    first = await client.post(
        "/sandbox/api/v4/whatsapp/chats/chat_393331234567/message",
        json={"media": {"type": "image", "url": "https://example.com/a.png", "caption": "Look"}},
        headers=bearer(token),
    )
    assert first.status_code == 200, first.text
    assert first.json()["to"] == "+393331234567"
    reply = await client.post(
        "/sandbox/api/v4/whatsapp/chats/393331234567/message",
        json={"body": "About that", "replyTo": first.json()["id"], "previewUrl": True},
        headers=bearer(token),
    )
    assert reply.status_code == 200
    bad_reply = await client.post(
        "/sandbox/api/v4/whatsapp/chats/393331234567/message",
        json={"body": "x", "replyTo": "msg_nope"},
        headers=bearer(token),
    )
    assert bad_reply.status_code == 422 and bad_reply.json()["errors"][0]["field"] == "replyTo"
    bad_chat = await client.post(
        "/sandbox/api/v4/whatsapp/chats/chat_abc/message", json={"body": "x"}, headers=bearer(token)
    )
    assert bad_chat.status_code == 422 and bad_chat.json()["code"] == "invalid_phone_number"


async def test_email_is_kept_as_mime(app: FastAPI, client: httpx.AsyncClient, token: str) -> None:
    pdf = base64.b64encode(b"%PDF-1.4 test").decode()
    answer = await client.post(
        EMAIL,
        json={
            "to": ["Ada <ada@example.com>", "grace@example.com"],
            "from": "News <news@example.com>",
            "subject": "Grüße",
            "text": "Hello",
            "html": "<p>Hello <a href='https://example.com'>there</a></p>",
            "cc": "cc@example.com",
            "bcc": ["hidden@example.com"],
            "replyTo": "support@example.com",
            "headers": {"X-Campaign": "nov"},
            "tags": ["welcome"],
            "attachments": [
                {"filename": "a.pdf", "contentType": "application/pdf", "content": pdf}
            ],
        },
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    async with app.state.ctx.sessions() as session:
        stored = await session.scalar(
            select(SandboxEmail).where(SandboxEmail.message_id == answer.json()["id"])
        )
    assert stored is not None
    parsed = email.message_from_bytes(stored.mime, policy=policy.default)
    assert parsed["Subject"] == "Grüße"
    assert parsed["To"] == "Ada <ada@example.com>, grace@example.com"
    assert parsed["Bcc"] is None and parsed["X-Campaign"] == "nov"
    assert parsed.get_content_type() == "multipart/mixed"
    attachment = next(parsed.iter_attachments())
    assert attachment.get_content() == b"%PDF-1.4 test"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"to": "not-an-address"}, "invalid_email"),
        ({"from": "nobody"}, "invalid_email"),
        ({"text": None}, "validation_failed"),
        ({"headers": {"Bcc": "x@example.com"}}, "validation_failed"),
        ({"headers": {"X-A": "a\r\nBcc: evil@example.com"}}, "validation_failed"),
        (
            {"attachments": [{"filename": "a", "contentType": "text/plain", "content": "!!"}]},
            "validation_failed",
        ),
    ],
)
async def test_email_refusals(
    client: httpx.AsyncClient, token: str, payload: dict[str, object], code: str
) -> None:
    body = {
        "to": "ada@example.com",
        "from": "news@example.com",
        "subject": "S",
        "text": "T",
        **payload,
    }
    answer = await client.post(EMAIL, json=body, headers=bearer(token))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == code


async def test_production_without_provider_is_503(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user, base="")
    answer = await client.post(
        "/api/v4/sms/send", json={"to": "+393331234567", "body": "x"}, headers=bearer(token)
    )
    assert answer.status_code == 503
    assert answer.json()["code"] == "channel_not_configured"
