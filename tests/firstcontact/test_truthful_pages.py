"""Docs and pages that tell the truth (issue 17, item 7): the landing page and the
Swagger servers say which providers production has; Swagger offers the sandbox first;
the docs link nothing outside the repository and match the server; page requests are
labelled in the metrics; failed webhook deliveries are logged without query strings;
a login 429 says how long to wait; the chat box has an icon."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer, login
from tidings.db.migrate import head_revision
from tidings.http.problems import status_title

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


async def test_pages_say_which_providers_production_has(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    landing = (await client.get("/")).text
    assert "No production providers are configured on this deployment yet" in landing
    assert "Real WhatsApp, SMS and Email providers" not in landing
    servers = (await client.get("/openapi.json")).json()["servers"]
    assert [server["url"] for server in servers] == ["/sandbox", "/"]  # sandbox first
    assert "no providers configured yet" in servers[1]["description"]

    await add_provider(app, user.account_id, "sms", "simulator")
    landing = (await client.get("/")).text
    assert "<li>SMS: simulator</li>" in landing
    assert "<li>WhatsApp: none configured</li>" in landing
    production = (await client.get("/openapi.json")).json()["servers"][1]["description"]
    assert "SMS: simulator" in production and "Email: none configured" in production


def test_the_docs_link_nothing_outside_the_repository() -> None:
    for path in DOCS:
        assert "../shared" not in path.read_text(), path.name


def test_the_docs_match_the_server() -> None:
    texts = {path.name: path.read_text() for path in DOCS}
    for name, text in texts.items():
        for revision in re.findall(r"database at revision (\d{4})", text):
            assert revision == head_revision(), name
    assert status_title(422) == "Unprocessable Content"
    assert '"title": "Unprocessable Entity"' not in texts["api-guide.md"]
    body_limit = next(
        line for line in texts["README.md"].splitlines() if "TIDINGS_MAX_BULK_BODY_BYTES" in line
    )
    assert "/email/send" in body_limit


async def test_page_requests_are_labelled_in_the_metrics(client: httpx.AsyncClient) -> None:
    for path in ("/", "/docs", "/openapi.json", "/sandbox/"):
        assert (await client.get(path)).status_code == 200
    metrics = (await client.get("/metrics")).text
    assert 'route="/",status="200"} 2.0' in metrics
    assert 'route="/docs",status="200"} 1.0' in metrics
    assert 'route="/openapi.json",status="200"} 1.0' in metrics


async def test_failed_deliveries_are_logged_without_query_strings(
    client: httpx.AsyncClient, user: TestUser, caplog: pytest.LogCaptureFixture
) -> None:
    token = await login(client, user)
    url = "https://hooks.tidings-test.invalid/in?token=s3cr3t-query"
    created = await client.post(
        "/sandbox/api/v4/webhooks/create", headers=bearer(token), json={"url": url}
    )
    hook = created.json()["id"]
    caplog.set_level(logging.WARNING, logger="tidings.webhooks")
    await client.post(f"/sandbox/api/v4/webhooks/{hook}/test", headers=bearer(token))
    for _ in range(200):  # bounded: the first attempt runs within the poll interval
        if any("failed" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    [record] = [r for r in caplog.records if r.name == "tidings.webhooks"][:1]
    message = record.getMessage()
    assert "to https://hooks.tidings-test.invalid/in failed" in message
    assert "does not resolve" in message
    assert "s3cr3t-query" not in caplog.text


async def test_a_login_429_says_how_long_to_wait(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    limit = app.state.ctx.settings.login_throttle.max_failures_per_pair
    answer = None
    for _ in range(limit + 1):
        answer = await client.post(
            "/api/v4/auth/token", json={"username": user.username, "password": "wrong-one!"}
        )
    assert answer is not None and answer.status_code == 429
    seconds = answer.headers["Retry-After"]
    assert answer.json()["detail"].endswith(f"try again in {seconds} s.")


async def test_the_chat_box_has_an_icon(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    made = await client.post(
        "/sandbox/api/v4/iframes/whatsapp/chat-box",
        headers=bearer(token),
        json={"chatId": "+393331234567"},
    )
    url = urlsplit(made.json()["url"])
    page = await client.get(f"{url.path}?{url.query}")
    assert page.status_code == 200
    assert re.search(
        r'<link rel="icon" type="image/svg\+xml" href="data:image/svg\+xml,', page.text
    )
    assert "img-src 'self' data:" in page.headers["content-security-policy"]
    # The header's avatar shows a contact glyph, not an empty circle.
    assert re.search(r'<span class="avatar" aria-hidden="true"><svg [^>]*>', page.text)


async def test_an_inbound_message_is_addressed_to_our_number(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    received = await client.post(
        "/sandbox/api/v4/sandbox/inbound",
        headers=bearer(token),
        json={"channel": "whatsapp", "from": "+393331234567", "body": "Hi"},
    )
    assert received.status_code == 201, received.text
    message = received.json()
    assert message["direction"] == "inbound" and message["from"] == "+393331234567"
    assert message["to"] == "+15550000000"


async def test_the_pages_answer_without_a_migrated_database(tmp_path: Path) -> None:
    from tests.conftest import make_settings
    from tidings.app import create_app

    data = tmp_path / "data"
    data.mkdir()
    settings = make_settings(
        data, (f"sqlite+aiosqlite:///{data / 'empty.db'}", None), dispatch=False
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/")).status_code == 200
        servers = (await client.get("/openapi.json")).json()["servers"]
    await app.state.ctx.engine.dispose()
    assert "configured per account" in servers[1]["description"]
