"""``POST /api/v4/iframes/whatsapp/chat-box`` and the page it links to, over plain HTTP:
validation, the URL and snippet, the page's headers, and expired or refused tokens."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.support.users import TestUser, bearer, login
from tidings.core.clock import FrozenClock
from tidings.core.environments import Environment
from tidings.widget.tokens import WidgetTokenCodec

CHAT_BOX = "/sandbox/api/v4/iframes/whatsapp/chat-box"


async def chat_box(client: httpx.AsyncClient, token: str, **body: object) -> httpx.Response:
    return await client.post(CHAT_BOX, json=body, headers=bearer(token))


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_answers_a_sandbox_url_an_escaped_iframe_and_the_expiry(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    before = datetime.now(UTC).replace(microsecond=0)
    answer = await chat_box(client, token, chatId="chat_393331234567", expiresIn=600)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    url = urlsplit(body["url"])
    assert (url.scheme, url.netloc, url.path) == (
        "http",
        "127.0.0.1:8000",
        "/sandbox/widget/whatsapp/chat-box",
    )
    expires = at(body["expiresAt"])
    assert before + timedelta(seconds=600) <= expires <= datetime.now(UTC) + timedelta(seconds=600)
    # The snippet's src is the url, attribute-escaped (& becomes &amp; if present).
    match = re.fullmatch(r'<iframe src="([^"]+)" title="([^"]+)" .*></iframe>', body["iframe"])
    assert match is not None, body["iframe"]
    assert html.unescape(match.group(1)) == body["url"]
    assert "+393331234567" in match.group(2)


async def test_the_default_lifetime_is_an_hour(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    answer = await chat_box(client, token, chatId="+393331234567")
    assert answer.status_code == 200, answer.text
    lifetime = at(answer.json()["expiresAt"]) - datetime.now(UTC)
    assert timedelta(minutes=58) < lifetime <= timedelta(hours=1)


@pytest.mark.parametrize("expires_in", [0, 59, 86401, 10**9])
async def test_expires_in_out_of_bounds_is_refused(
    client: httpx.AsyncClient, user: TestUser, expires_in: int
) -> None:
    token = await login(client, user)
    answer = await chat_box(client, token, chatId="+393331234567", expiresIn=expires_in)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "validation_failed"
    assert [error["field"] for error in problem["errors"]] == ["expiresIn"]


@pytest.mark.parametrize("chat", ["+39", "hello", "chat_abc", "chat_", "+1 555 000 0000"])
async def test_a_bad_chat_id_is_refused(
    client: httpx.AsyncClient, user: TestUser, chat: str
) -> None:
    token = await login(client, user)
    answer = await chat_box(client, token, chatId=chat)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid_phone_number"


@pytest.mark.parametrize(
    "origin",
    [
        "http://shop.example.com",  # plain http outside localhost
        "https://shop.example.com/path",
        "https://shop.example.com; script-src *",  # would add a directive
        "https://user@shop.example.com",
        "javascript:alert(1)",
        "*",
        "https://",
        "https://shop.example.com:99999",
        "https://shop example.com",
    ],
)
async def test_origins_that_are_not_https_origins_are_refused(
    client: httpx.AsyncClient, user: TestUser, origin: str
) -> None:
    token = await login(client, user)
    answer = await chat_box(
        client, token, chatId="+393331234567", allowedOrigins=["https://ok.example.com", origin]
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "validation_failed"
    assert problem["errors"] == [
        {
            "field": "allowedOrigins[1]",
            "code": "invalid_origin",
            "message": problem["errors"][0]["message"],
        }
    ]


async def test_the_page_is_framed_only_by_the_allowed_origins(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    answer = await chat_box(
        client,
        token,
        chatId="+393331234567",
        theme="dark",
        allowedOrigins=[
            "https://Shop.Example.com/",
            "http://localhost:3000",
            "https://*.example.org",
        ],
    )
    assert answer.status_code == 200, answer.text
    page = await client.get(urlsplit(answer.json()["url"])._replace(scheme="", netloc="").geturl())
    assert page.status_code == 200, page.text
    policy = page.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "connect-src": "'self'",
        "img-src": "'self' data:",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "https://shop.example.com http://localhost:3000 https://*.example.org",
    }
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert 'data-theme="dark"' in page.text
    assert "<script>" not in page.text and "style=" not in page.text
    assert 'src="/sandbox/widget/static/chat-box.js"' in page.text


async def test_without_origins_any_site_may_frame_it(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    url = (await chat_box(client, token, chatId="+393331234567")).json()["url"]
    page = await client.get(url)
    assert page.status_code == 200
    assert page.headers["content-security-policy"].endswith("frame-ancestors *")


async def test_static_files_are_only_the_stylesheet_and_the_script(
    client: httpx.AsyncClient,
) -> None:
    for name, media in (("chat-box.css", "text/css"), ("chat-box.js", "javascript")):
        answer = await client.get(f"/sandbox/widget/static/{name}")
        assert answer.status_code == 200
        assert media in answer.headers["content-type"]
    for name in ("chat-box.html", "notice.html", "../tokens.py", "__init__.py"):
        assert (await client.get(f"/widget/static/{name}")).status_code == 404


async def test_an_expired_link_shows_an_expiry_notice(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    ctx = app.state.ctx
    yesterday = FrozenClock(datetime.now(UTC) - timedelta(days=1))
    codec = WidgetTokenCodec(ctx.tokens, issuer=ctx.settings.jwt_issuer, clock=yesterday)
    token, _ = codec.issue(
        user_id=user.user_id,
        account_id=user.account_id,
        environment=Environment.SANDBOX,
        contact="+393331234567",
        read_only=False,
        theme="light",
        allowed_origins=(),
        lifetime=3600,
    )
    page = await client.get("/sandbox/widget/whatsapp/chat-box", params={"token": token})
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert "This chat has expired" in page.text
    assert 'data-code="token_expired"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    api = await client.get("/sandbox/widget/api/messages", headers=bearer(token))
    assert api.status_code == 401
    assert api.json()["code"] == "token_expired"


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c"])
async def test_a_missing_or_forged_token_shows_a_refusal(
    client: httpx.AsyncClient, token: str
) -> None:
    page = await client.get("/sandbox/widget/whatsapp/chat-box", params={"token": token})
    assert page.status_code == 401
    assert "This chat cannot be opened" in page.text


async def test_a_regular_token_does_not_open_the_page(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    page = await client.get("/sandbox/widget/whatsapp/chat-box", params={"token": token})
    assert page.status_code == 401
    assert "not a chat-box token" in html.unescape(page.text)


async def test_the_url_keeps_the_scheme_a_trusted_proxy_reports(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    answer = await client.post(
        CHAT_BOX,
        json={"chatId": "+393331234567"},
        headers={**bearer(token), "X-Forwarded-Proto": "https", "Host": "chat.example.com"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["url"].startswith("https://chat.example.com/sandbox/widget/")


async def test_production_urls_have_no_prefix(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user, base="")
    answer = await client.post(
        "/api/v4/iframes/whatsapp/chat-box", json={"chatId": "+393331234567"}, headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    assert urlsplit(answer.json()["url"]).path == "/widget/whatsapp/chat-box"
