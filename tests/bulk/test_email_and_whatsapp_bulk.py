"""Email bulk (escaped placeholders, unsubscribe headers, suppression) and WhatsApp
bulk (templates with per-recipient parameters, the window for free-form text)."""

from __future__ import annotations

import httpx
import pytest

from tests.bulk.support import wait_for_batch
from tests.support.users import TestUser, bearer, login


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


async def all_messages(client: httpx.AsyncClient, token: str, batch_id: str) -> list[dict]:  # type: ignore[type-arg]
    page = await client.get(
        "/sandbox/api/v4/messages",
        params={"batchId": batch_id, "limit": 100},
        headers=bearer(token),
    )
    return page.json()["data"]  # type: ignore[no-any-return]


async def test_email_bulk_escapes_values_in_html_and_carries_unsubscribe(
    client: httpx.AsyncClient, token: str
) -> None:
    answer = await client.post(
        "/sandbox/api/v4/email/bulk",
        json={
            "from": "News <news@example.com>",
            "subject": "{{name}}, our news",
            "text": "Hello {{name}}",
            "html": "<p>Hello <b>{{name}}</b> <a href='https://example.com/offer'>offer</a></p>",
            "recipients": [
                {"to": "ada@example.com", "variables": {"name": "<script>alert(1)</script>"}},
                {"to": "hard-bounce@sandbox.test", "variables": {"name": "Bounce"}},
                {"to": "not an address", "variables": {"name": "X"}},
            ],
        },
        headers=bearer(token),
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["errors"][0]["index"] == 2
    batch = await wait_for_batch(client, token, body["id"])
    assert batch["counts"] == {"delivered": 1, "undelivered": 1}

    [ada] = [
        m for m in await all_messages(client, token, body["id"]) if m["to"] == "ada@example.com"
    ]
    assert ada["subject"] == "<script>alert(1)</script>, our news"
    kept = await client.get("/sandbox/api/v4/sandbox/emails", headers=bearer(token))
    [summary] = [e for e in kept.json()["data"] if e["messageId"] == ada["id"]]
    email = (
        await client.get(f"/sandbox/api/v4/sandbox/emails/{summary['id']}", headers=bearer(token))
    ).json()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email["html"]
    assert "<script>" not in email["html"]
    assert "Hello <script>alert(1)</script>" in email["text"]
    headers = dict(email["headers"])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/sandbox/t/u/")

    # The hard bounce is now suppressed: a second batch rejects it.
    again = await client.post(
        "/sandbox/api/v4/email/bulk",
        json={
            "from": "news@example.com",
            "subject": "Again",
            "text": "Again",
            "recipients": [{"to": "Hard-Bounce@sandbox.test"}, {"to": "ada@example.com"}],
        },
        headers=bearer(token),
    )
    assert [e["code"] for e in again.json()["errors"]] == ["recipient_suppressed"]


async def test_whatsapp_bulk_sends_a_template_with_parameters_per_recipient(
    client: httpx.AsyncClient, token: str
) -> None:
    answer = await client.post(
        "/sandbox/api/v4/whatsapp/bulk",
        json={
            "template": {
                "name": "order_update",
                "language": "en",
                "parameters": {"header": ["{{order}}"], "body": ["{{name}}", "{{order}}"]},
            },
            "recipients": [
                {"to": "+393331234001", "variables": {"name": "Ada", "order": "#1"}},
                {"to": "+15550000006", "variables": {"name": "Closed", "order": "#2"}},
                {"to": "+393331234002", "variables": {"name": "No order"}},
                {"to": "+15550000005", "variables": {"name": "Opted", "order": "#3"}},
            ],
        },
        headers=bearer(token),
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (2, "missing_variable"),
        (3, "recipient_opted_out"),
    ]
    await wait_for_batch(client, token, body["id"])
    messages = {m["to"]: m for m in await all_messages(client, token, body["id"])}
    assert set(messages) == {"+393331234001", "+15550000006"}
    assert "Ada" in messages["+393331234001"]["body"] and "#1" in messages["+393331234001"]["body"]
    assert messages["+15550000006"]["status"] in {"delivered", "read"}


async def test_whatsapp_bulk_template_errors_refuse_the_request(
    client: httpx.AsyncClient, token: str
) -> None:
    unknown = await client.post(
        "/sandbox/api/v4/whatsapp/bulk",
        json={
            "template": {"name": "nope", "language": "en"},
            "recipients": [{"to": "+393331234001"}],
        },
        headers=bearer(token),
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "template_not_found"
    mismatch = await client.post(
        "/sandbox/api/v4/whatsapp/bulk",
        json={
            "template": {"name": "order_update", "language": "en", "parameters": {"body": ["x"]}},
            "recipients": [{"to": "+393331234001"}],
        },
        headers=bearer(token),
    )
    assert mismatch.status_code == 422 and mismatch.json()["code"] == "template_params_mismatch"


async def test_free_form_whatsapp_bulk_reaches_only_open_windows(
    client: httpx.AsyncClient, token: str
) -> None:
    answer = await client.post(
        "/sandbox/api/v4/whatsapp/bulk",
        json={
            "body": "Hi {{name}}",
            "recipients": [
                {"to": "+393331234001", "variables": {"name": "Ada"}},
                {"to": "+15550000006", "variables": {"name": "Closed"}},
            ],
        },
        headers=bearer(token),
    )
    assert answer.status_code == 202, answer.text
    assert [(e["index"], e["code"]) for e in answer.json()["errors"]] == [
        (1, "outside_customer_service_window")
    ]
    # After the contact writes in, its window is open for bulk text too.
    inbound = await client.post(
        "/sandbox/api/v4/sandbox/inbound",
        json={"channel": "whatsapp", "from": "+15550000006", "body": "Hello"},
        headers=bearer(token),
    )
    assert inbound.status_code in (200, 201, 202), inbound.text
    again = await client.post(
        "/sandbox/api/v4/whatsapp/bulk",
        json={"body": "Hi", "recipients": [{"to": "+15550000006"}]},
        headers=bearer(token),
    )
    assert again.json()["accepted"] == 1
