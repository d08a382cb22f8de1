"""A bulk email's shared content (attachments, bodies the same for all) is stored
once per batch, and each message gets it back whole when it is sent."""

from __future__ import annotations

import base64
import email
import os
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Text, cast, func, select

from tests.bulk.support import wait_for_batch
from tests.conftest import make_settings
from tests.support.users import TestUser, bearer, login
from tidings.bulk.models import SharedContent
from tidings.bulk.shared import SHARED_KEY, SharedContents
from tidings.channels.email.stored import UnresolvedSharedContent, render_outbound_email
from tidings.core.environments import Environment
from tidings.messages import queue
from tidings.messages.models import Message
from tidings.providers.base import OutboundMessage
from tidings.settings import Settings

BULK = "/sandbox/api/v4/email/bulk"
PDF = os.urandom(200_000)
HTML = "<p>Our news <a href='https://example.com/offer'>offer</a></p>"


@pytest.fixture
def settings(data_dir: Path, database_url: tuple[str, str | None]) -> Settings:
    return make_settings(data_dir, database_url)


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


def request(recipients: int, **extra: object) -> dict[str, object]:
    return {
        "from": "News <news@example.com>",
        "subject": "{{name}}, our news",
        "text": "Hello, our news.",
        "html": HTML,
        "attachments": [
            {
                "filename": "news.pdf",
                "contentType": "application/pdf",
                "content": base64.b64encode(PDF).decode(),
            }
        ],
        "recipients": [
            {"to": f"reader{i}@example.com", "variables": {"name": f"R{i}"}}
            for i in range(recipients)
        ],
        **extra,
    }


async def test_the_attachment_is_stored_once_per_batch(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    answer = await client.post(BULK, json=request(30, scheduledAt=later), headers=bearer(token))
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 30
    async with app.state.ctx.sessions() as session:
        stored = await session.scalar(select(func.sum(func.length(cast(Message.content, Text)))))
        shared = list(await session.scalars(select(SharedContent)))
    # 30 recipients hold less than one copy of the 200 KB attachment between them.
    assert stored is not None and stored < len(PDF)
    [only] = shared
    assert only.batch_id == answer.json()["id"]
    assert only.content["html"] == HTML
    assert base64.b64decode(only.content["attachments"][0]["content"]) == PDF


async def test_messages_answer_as_before(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    answer = await client.post(BULK, json=request(2, scheduledAt=later), headers=bearer(token))
    page = await client.get(
        "/sandbox/api/v4/messages",
        params={"batchId": answer.json()["id"]},
        headers=bearer(token),
    )
    shown = sorted((m["to"], m["subject"], m["body"]) for m in page.json()["data"])
    assert shown == [
        ("reader0@example.com", "R0, our news", "Hello, our news."),
        ("reader1@example.com", "R1, our news", "Hello, our news."),
    ]


async def test_a_leased_message_gets_its_whole_content_back(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    """What a provider is handed: the shared part put back, the MIME as for a
    message that kept its attachment."""
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    answer = await client.post(BULK, json=request(3, scheduledAt=later), headers=bearer(token))
    batch_id = answer.json()["id"]
    cache = SharedContents()
    async with app.state.ctx.sessions() as session:
        ids = list(await session.scalars(select(Message.id).where(Message.batch_id == batch_id)))
        until = datetime.now(UTC) + timedelta(minutes=1)
        rows = await queue.lease(session, ids, owner="test", until=until)
        assert all(SHARED_KEY in row["content"] for row in rows)
        await cache.resolve_rows(session, rows[:1])
        await cache.resolve_rows(session, rows[1:])
        await session.rollback()
    # One read for the batch, whatever the number of messages.
    assert cache.reads == 1
    row = rows[0]
    content = row["content"]
    assert SHARED_KEY not in content
    assert content["html"] == HTML and content["text"] == "Hello, our news."
    assert content["subject"].endswith(", our news") and content["bulk"] is True
    assert content["tracking"]["tokens"]["unsubscribe"]
    outbound = OutboundMessage(
        id=row["id"],
        account_id=row["account_id"],
        environment=Environment(row["environment"]),
        channel="email",
        to=row["to_address"],
        sender=row["from_address"],
        body=row["body"],
        content=content,
        attempt=1,
        segments=None,
        encoding=None,
    )
    mime = email.message_from_bytes(
        render_outbound_email(outbound, date=datetime.now(UTC)), policy=default_policy
    )
    assert isinstance(mime, EmailMessage)
    [attachment] = list(mime.iter_attachments())
    assert attachment.get_filename() == "news.pdf"
    assert attachment.get_content() == PDF
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_an_unresolved_reference_is_never_rendered() -> None:
    outbound = OutboundMessage(
        id="msg_1",
        account_id="acc_1",
        environment=Environment.SANDBOX,
        channel="email",
        to="a@example.com",
        sender="news@example.com",
        body="Hi",
        content={"from": "news@example.com", "to": ["a@example.com"], SHARED_KEY: "shc_1"},
        attempt=1,
        segments=None,
        encoding=None,
    )
    with pytest.raises(UnresolvedSharedContent):
        render_outbound_email(outbound, date=datetime.now(UTC))


async def test_a_personalised_body_stays_on_each_message(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = request(2, scheduledAt=later, html="<p>Hi {{name}}</p>")
    answer = await client.post(BULK, json=body, headers=bearer(token))
    assert answer.status_code == 202, answer.text
    async with app.state.ctx.sessions() as session:
        contents = list(await session.scalars(select(Message.content)))
        [shared] = list(await session.scalars(select(SharedContent.content)))
    assert sorted(c["html"] for c in contents) == ["<p>Hi R0</p>", "<p>Hi R1</p>"]
    assert "html" not in shared and shared["text"] == "Hello, our news."
    assert all("attachments" not in c for c in contents)


async def test_a_bad_attachment_refuses_the_request(client: httpx.AsyncClient, token: str) -> None:
    body = request(3)
    body["attachments"] = [
        {"filename": "x.pdf", "contentType": "application/pdf", "content": "not base64!"}
    ]
    answer = await client.post(BULK, json=body, headers=bearer(token))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "attachments[0].content"


async def test_the_kept_email_carries_the_shared_content(
    client: httpx.AsyncClient, token: str
) -> None:
    """End to end, through the dispatcher and the sandbox's provider."""
    answer = await client.post(BULK, json=request(2), headers=bearer(token))
    assert answer.status_code == 202, answer.text
    batch = await wait_for_batch(client, token, answer.json()["id"])
    assert batch["counts"] == {"delivered": 2}
    kept = (await client.get("/sandbox/api/v4/sandbox/emails", headers=bearer(token))).json()
    assert len(kept["data"]) == 2
    for summary in kept["data"]:
        detail = await client.get(
            f"/sandbox/api/v4/sandbox/emails/{summary['id']}", headers=bearer(token)
        )
        email_ = detail.json()
        assert email_["attachments"] == [
            {"filename": "news.pdf", "contentType": "application/pdf", "size": len(PDF)}
        ]
        assert "Our news" in email_["html"] and "/t/c/" in email_["html"]
        assert email_["text"].startswith("Hello, our news.")
        assert email_["subject"].endswith(", our news")
