"""Each magic number and address of spec section 12 gives exactly the statuses named."""

from __future__ import annotations

import httpx
import pytest

from tests.support.messages import reports_due_by_now_recorded, statuses_of, wait_for
from tests.support.users import TestUser, bearer, login

SMS = "/sandbox/api/v4/sms/send"


def whatsapp(number: str) -> str:
    return f"/sandbox/api/v4/whatsapp/chats/{number}/message"


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def test_any_other_number_is_delivered_and_read_on_whatsapp(
    client: httpx.AsyncClient, token: str
) -> None:
    answer = await client.post(
        whatsapp("+393331234567"), json={"body": "Hello!"}, headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    sent = answer.json()
    assert sent["status"] == "sent" and sent["channel"] == "whatsapp"
    assert sent["to"] == "+393331234567" and sent["providerMessageId"]
    final = await wait_for(client, token, sent["id"], {"read"})
    assert statuses_of(final) == ["queued", "sent", "delivered", "read"]


async def test_any_other_number_is_delivered_on_sms(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.post(
        SMS, json={"to": "+393331234567", "body": "Hi"}, headers=bearer(token)
    )
    final = await wait_for(client, token, answer.json()["id"], {"delivered"})
    await reports_due_by_now_recorded(client, token)
    again = await wait_for(client, token, final["id"], {"delivered"}, timeout=0)
    assert statuses_of(again) == ["queued", "sent", "delivered"]


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
async def test_refused(client: httpx.AsyncClient, token: str, channel: str) -> None:
    if channel == "sms":
        answer = await client.post(
            SMS, json={"to": "+15550000001", "body": "x"}, headers=bearer(token)
        )
    else:
        answer = await client.post(
            whatsapp("+15550000001"), json={"body": "x"}, headers=bearer(token)
        )
    body = answer.json()
    assert answer.status_code == 200
    assert body["status"] == "failed"
    assert body["error"]["code"] == "provider_rejected"
    assert statuses_of(body) == ["queued", "failed"]


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
async def test_sent_then_undelivered(client: httpx.AsyncClient, token: str, channel: str) -> None:
    path, payload = (
        (SMS, {"to": "+15550000002", "body": "x"})
        if channel == "sms"
        else (whatsapp("+15550000002"), {"body": "x"})
    )
    answer = await client.post(path, json=payload, headers=bearer(token))
    assert answer.json()["status"] == "sent"
    final = await wait_for(client, token, answer.json()["id"], {"undelivered"})
    assert statuses_of(final) == ["queued", "sent", "undelivered"]


async def test_delivered_never_read(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.post(whatsapp("+15550000003"), json={"body": "x"}, headers=bearer(token))
    final = await wait_for(client, token, answer.json()["id"], {"delivered"})
    await reports_due_by_now_recorded(client, token)
    still = await wait_for(client, token, final["id"], {"delivered"}, timeout=0)
    assert statuses_of(still) == ["queued", "sent", "delivered"]


async def test_unavailable_twice_then_accepted(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.post(SMS, json={"to": "+15550000004", "body": "x"}, headers=bearer(token))
    body = answer.json()
    assert body["status"] == "sent", body
    assert body["attempts"] == 3
    assert body["error"] is None  # the retried attempts' error no longer applies
    retries = [e for e in body["events"] if not e["applied"] and e["status"] == "queued"]
    assert len(retries) == 2
    final = await wait_for(client, token, body["id"], {"delivered"})
    assert statuses_of(final) == ["queued", "sent", "delivered"]


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
async def test_opted_out(client: httpx.AsyncClient, token: str, channel: str) -> None:
    if channel == "sms":
        answer = await client.post(
            SMS, json={"to": "+15550000005", "body": "x"}, headers=bearer(token)
        )
    else:
        answer = await client.post(
            whatsapp("+15550000005"), json={"body": "x"}, headers=bearer(token)
        )
    assert answer.status_code == 422
    assert answer.json()["code"] == "recipient_opted_out"


async def test_never_wrote_in(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.post(whatsapp("+15550000006"), json={"body": "x"}, headers=bearer(token))
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "outside_customer_service_window"
    assert "/api/v4/whatsapp/notifications" in problem["detail"]
    # SMS has no window.
    sms = await client.post(SMS, json={"to": "+15550000006", "body": "x"}, headers=bearer(token))
    assert sms.json()["status"] == "sent"


@pytest.mark.parametrize(
    ("address", "statuses"),
    [
        ("ada@example.com", ["queued", "sent", "delivered"]),
        ("hard-bounce@sandbox.test", ["queued", "sent", "undelivered"]),
        ("soft-bounce@sandbox.test", ["queued", "sent", "delivered"]),
        ("complaint@sandbox.test", ["queued", "sent", "delivered"]),
        ("engaged@sandbox.test", ["queued", "sent", "delivered"]),
    ],
)
async def test_magic_addresses(
    client: httpx.AsyncClient, token: str, address: str, statuses: list[str]
) -> None:
    answer = await client.post(
        "/sandbox/api/v4/email/send",
        json={"to": address, "from": "News <news@example.com>", "subject": "Hi", "text": "Hello"},
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    final = await wait_for(client, token, answer.json()["id"], {"delivered", "undelivered"})
    assert statuses_of(final) == statuses
    if address.startswith("soft-bounce"):
        assert final["attempts"] == 2
    if address.startswith("hard-bounce"):
        assert final["error"]["code"] == "bounced"
