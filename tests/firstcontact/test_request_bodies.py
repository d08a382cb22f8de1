"""Request bodies (issue 17, item 5): unknown fields answer 422 naming them, a missing
or non-object body says so in words, a path without /api/v4 names the right one; and
every body the contract and the seed page send is still accepted field for field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.users import TestUser, bearer, login


@pytest.fixture
async def headers(client: httpx.AsyncClient, user: TestUser) -> dict[str, str]:
    return bearer(await login(client, user))


def unknown_fields(answer: httpx.Response) -> list[dict[str, Any]]:
    if answer.status_code != 422:
        return []
    return [e for e in answer.json().get("errors", []) if e["code"] == "unknown_field"]


async def test_a_typo_is_named_with_the_field_meant(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    answer = await client.post(
        "/sandbox/api/v4/whatsapp/chats/+393331234567/message",
        headers=headers,
        json={"text": "Hello!"},
    )
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "validation_failed"
    [error] = unknown_fields(answer)
    assert error["field"] == "text"
    assert "did you mean 'body'?" in error["message"]
    # The missing body is reported too, but the detail leads with the unknown field.
    assert "text" in body["detail"]


async def test_unknown_fields_alone_are_the_detail(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    answer = await client.post(
        "/sandbox/api/v4/sms/send",
        headers=headers,
        json={"to": "+393331234567", "body": "Hi", "sender": "Acme", "zzz": 1},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"] == "The request has unknown fields: sender, zzz."
    messages = {e["field"]: e["message"] for e in unknown_fields(answer)}
    assert set(messages) == {"sender", "zzz"}
    assert "takes: body, from, scheduledAt, to, validityPeriod" in messages["zzz"]


async def test_nested_and_bulk_unknown_fields(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    nested = await client.post(
        "/sandbox/api/v4/whatsapp/notifications",
        headers=headers,
        json={
            "to": "+393331234567",
            "template": {"name": "order_update", "language": "en", "params": {"body": []}},
        },
    )
    [error] = unknown_fields(nested)
    assert error["field"] == "template.params"
    assert "'parameters'" in error["message"]
    bulk = await client.post(
        "/sandbox/api/v4/sms/bulk",
        headers=headers,
        json={"body": "Hi", "recipients": [{"to": "+393331234567"}], "listid": "lst_1"},
    )
    [error] = unknown_fields(bulk)
    assert error["field"] == "listid" and "'listId'" in error["message"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "The request has no body"),
        (b"[1, 2]", "must be a JSON object ({...}), not an array"),
        (b'"Hello"', "not a string"),
    ],
)
async def test_a_missing_or_non_object_body_says_so(
    client: httpx.AsyncClient, headers: dict[str, str], content: bytes, words: str
) -> None:
    answer = await client.post(
        "/sandbox/api/v4/sms/send",
        headers={**headers, "Content-Type": "application/json"},
        content=content,
    )
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert words in body["detail"]
    # Not reported as a field named "body", which reads like the SMS text.
    assert "errors" not in body


@pytest.mark.parametrize(
    ("path", "meant"),
    [
        ("/whatsapp/chats/123/message", "/api/v4/whatsapp/chats/123/message"),
        ("/sandbox/whatsapp/chats/123/message", "/sandbox/api/v4/whatsapp/chats/123/message"),
        ("/sms/send", "/api/v4/sms/send"),
    ],
)
async def test_a_path_without_the_prefix_names_the_right_one(
    client: httpx.AsyncClient, path: str, meant: str
) -> None:
    answer = await client.post(path, json={"body": "Hello!"})
    assert answer.status_code == 404
    assert answer.json()["detail"].endswith(f"did you mean {meant}?")
    nowhere = await client.post("/no/such/thing", json={})
    assert nowhere.status_code == 404 and "did you mean" not in nowhere.json()["detail"]


# Every request body the contract (docs/api-guide.md, the spec it came from) and the
# seed page's quick start show, with every optional field the contract names.
CONTRACT_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("/api/v4/auth/revoke", {}),
    ("/api/v4/whatsapp/chats/+393331234567/message", {"body": "Hello!"}),
    (
        "/api/v4/whatsapp/chats/+393331234567/message",
        {
            "body": "Hello!",
            "media": {"type": "image", "url": "https://example.com/a.png", "caption": "A"},
            "replyTo": "msg_01",
            "previewUrl": True,
        },
    ),
    (
        "/api/v4/whatsapp/notifications",
        {
            "to": "+393331234567",
            "template": {
                "name": "order_update",
                "language": "en",
                "parameters": {"header": ["#1"], "body": ["Ada", "#1234"], "buttons": []},
            },
        },
    ),
    (
        "/api/v4/sms/send",
        {
            "to": "+393331234567",
            "body": "Hi",
            "from": "Sender",
            "scheduledAt": "2030-01-01T00:00:00Z",
            "validityPeriod": 3600,
        },
    ),
    (
        "/api/v4/email/send",
        {
            "to": ["a@example.com"],
            "from": "News <news@sandbox.test>",
            "subject": "Hi",
            "text": "Hi",
            "html": "<p>Hi</p>",
            "replyTo": "r@example.com",
            "cc": ["c@example.com"],
            "bcc": ["b@example.com"],
            "headers": {"X-Campaign": "nov"},
            "tags": ["nov"],
            "attachments": [{"filename": "a.txt", "contentType": "text/plain", "content": "SGk="}],
            "tracking": {"opens": True, "clicks": True},
        },
    ),
    ("/api/v4/email/domains", {"domain": "example.com"}),
    (
        "/api/v4/sms/bulk",
        {
            "body": "Hi {{name}}",
            "recipients": [{"to": "+393331234567", "variables": {"name": "Ada"}}],
            "name": "November",
            "scheduledAt": "2030-01-01T00:00:00Z",
        },
    ),
    ("/api/v4/sms/bulk", {"body": "Hi", "listId": "lst_01"}),
    (
        "/api/v4/webhooks/create",
        {"url": "https://your-app.com/hook", "events": ["message.*"], "description": "mine"},
    ),
    ("/api/v4/webhooks/create", {"url": "https://your-app.com/hook"}),
    (
        "/api/v4/iframes/whatsapp/chat-box",
        {"chatId": "+393331234567", "expiresIn": 3600, "readOnly": False, "theme": "dark"},
    ),
    ("/api/v4/sandbox/inbound", {"channel": "whatsapp", "from": "+393331234567", "body": "Hi"}),
    (
        "/api/v4/providers",
        {
            "channel": "sms",
            "kind": "simulator",
            "name": "sim",
            "priority": 1,
            "enabled": True,
            "config": {},
        },
    ),
]


@pytest.mark.parametrize(("path", "body"), CONTRACT_BODIES)
async def test_every_contract_field_is_known(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    answer = await client.post(f"/sandbox{path}", headers=headers, json=body)
    assert not unknown_fields(answer), answer.text


async def test_the_seed_login_and_the_token_lifetime_are_known(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    answer = await client.post(
        "/sandbox/api/v4/auth/token",
        json={"username": user.username, "password": user.password, "expiresIn": 600},
    )
    assert answer.status_code == 200, answer.text
