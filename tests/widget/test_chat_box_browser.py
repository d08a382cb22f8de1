"""The chat box in a real browser: framed by another site, against ``tidings serve``.

One server (module scope) and one host site on another port; each test opens the
host page, which frames the chat box, and drives it through Playwright. Waits are
Playwright's ``expect``/``wait_for`` with a timeout, never sleeps.

Needs Debian's Chromium at /usr/bin/chromium: skipped with a message without it,
except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from playwright.async_api import Browser, ConsoleMessage, Dialog, FrameLocator, Page, expect

from tests.support.databases import require_or_skip
from tests.widget.browser import (
    CHROMIUM,
    JWT_SECRET,
    TIMEOUT_MS,
    HostSite,
    Server,
    chromium,
    tidings_server,
)
from tidings.auth.tokens import TokenCodec
from tidings.core.clock import FrozenClock
from tidings.core.environments import Environment
from tidings.widget.tokens import WidgetTokenCodec

pytestmark = pytest.mark.browser

ADA = "+393331234567"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_or_skip(os.path.exists(CHROMIUM), "Chromium")
    with tidings_server(tmp_path_factory.mktemp("widget")) as running:
        yield running


@pytest.fixture(scope="module")
def host() -> Iterator[HostSite]:
    with HostSite() as site:
        yield site


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


class Visit:
    """A host page framing the chat box, with what went wrong in it recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.errors: list[str] = []

    @property
    def frame(self) -> FrameLocator:
        return self.page.frame_locator("#chat")


async def visit(browser: Browser, host: HostSite, url: str) -> Visit:
    context = await browser.new_context(viewport={"width": 400, "height": 700})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    seen = Visit(page)

    async def on_dialog(dialog: Dialog) -> None:
        seen.dialogs.append(dialog.message)
        await dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        seen.console.append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    await page.goto(host.page_for(url), wait_until="load")
    return seen


def send(server: Server, token: str, to: str, body: str) -> dict[str, Any]:
    answer = server.api("POST", f"/api/v4/whatsapp/chats/{to}/message", token, {"body": body})
    assert answer.status_code in (200, 202), answer.text
    return answer.json()  # type: ignore[no-any-return]


def inbound(server: Server, token: str, sender: str, body: str) -> dict[str, Any]:
    answer = server.api(
        "POST",
        "/api/v4/sandbox/inbound",
        token,
        {"channel": "whatsapp", "from": sender, "body": body},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def test_history_reply_ticks_and_live_inbound(
    server: Server, host: HostSite, browser: Browser
) -> None:
    token = server.login()
    contact = "+393331230001"
    first = send(server, token, contact, "Your order shipped")
    said = inbound(server, token, contact, "Thanks! When does it arrive?")
    box = server.chat_box(token, chatId=contact, allowedOrigins=[host.origin])
    seen = await visit(browser, host, box["url"])
    frame = seen.frame
    items = frame.locator("#messages > li")
    await expect(items).to_have_count(2)
    await expect(items.nth(0)).to_have_attribute("data-id", first["id"])
    await expect(items.nth(1).locator(".text")).to_have_text(said["body"])
    await expect(frame.locator("#window-state")).to_contain_text("Replies open")
    chat_frame = seen.page.frame(url=lambda url: "/widget/whatsapp/chat-box" in url)
    assert chat_frame is not None
    await chat_frame.evaluate("() => { window.__sameDocument = true; }")

    # A reply typed and sent with Enter shows at once, then its ticks move on live.
    await frame.locator("#reply").fill("Tomorrow morning")
    await frame.locator("#reply").press("Enter")
    reply = items.nth(2)
    await expect(reply.locator(".text")).to_have_text("Tomorrow morning")
    await expect(reply).to_have_attribute("data-status", "sent")
    await expect(reply.locator(".ticks")).to_have_attribute("aria-label", "Sent")
    await expect(reply).to_have_attribute("data-status", "delivered", timeout=TIMEOUT_MS)
    await expect(reply).to_have_attribute("data-status", "read", timeout=TIMEOUT_MS)
    await expect(reply.locator(".ticks.read")).to_have_text("\u2713\u2713")
    await expect(frame.locator("#reply")).to_have_value("")

    # The contact writes in: it shows within a second (the stream polls every 0.3 s).
    inbound(server, token, contact, "See you then")
    await expect(items).to_have_count(4, timeout=1000)
    await expect(items.nth(3).locator(".text")).to_have_text("See you then")
    await expect(frame.locator("#announcer")).to_contain_text("See you then")
    assert await chat_frame.evaluate("() => window.__sameDocument === true")
    assert not seen.errors, seen.errors
    await seen.page.context.close()


async def test_message_text_is_never_html(server: Server, host: HostSite, browser: Browser) -> None:
    token = server.login()
    contact = "+393331230002"
    inbound(server, token, contact, XSS)
    box = server.chat_box(token, chatId=contact, allowedOrigins=[host.origin])
    seen = await visit(browser, host, box["url"])
    frame = seen.frame
    await expect(frame.locator("#messages > li")).to_have_count(1)
    await frame.locator("#reply").fill(XSS)
    await frame.locator("#send").click()
    texts = frame.locator("#messages .text")
    await expect(texts).to_have_text([XSS, XSS])
    # And once more live, through the stream.
    inbound(server, token, contact, XSS + "<script>alert(2)</script>")
    await expect(texts).to_have_count(3)
    await expect(texts.nth(2)).to_have_text(XSS + "<script>alert(2)</script>")
    assert await frame.locator("#messages img, #messages script").count() == 0
    assert seen.dialogs == []
    assert not seen.errors, seen.errors
    await seen.page.context.close()


async def test_a_closed_window_offers_templates_and_sends_one(
    server: Server, host: HostSite, browser: Browser
) -> None:
    token = server.login()
    box = server.chat_box(token, chatId="+15550000006", allowedOrigins=[host.origin])
    seen = await visit(browser, host, box["url"])
    frame = seen.frame
    await expect(frame.locator("#templates")).to_be_visible()
    await expect(frame.locator("#composer")).to_be_hidden()
    await expect(frame.locator("#window-state")).to_have_text("Window closed: templates only")
    option = frame.locator("#template option", has_text="order_update (en)")
    await expect(option).to_have_count(1)
    await frame.locator("#template").select_option(await option.get_attribute("value") or "")
    inputs = frame.locator("#template-params input")
    count = await inputs.count()
    assert count >= 2
    await frame.locator("#send-template").click()
    await expect(frame.locator("#notice")).to_have_text("Fill in every parameter of the template.")
    for index in range(count):
        await inputs.nth(index).fill(f"value{index}")
    await frame.locator("#send-template").click()
    sent = frame.locator("#messages > li.out")
    await expect(sent).to_have_count(1)
    await expect(sent.locator(".template-name")).to_have_text("Template: order_update")
    await expect(sent).to_have_attribute("data-status", "read", timeout=TIMEOUT_MS)
    await expect(frame.locator("#notice")).to_be_hidden()
    assert not seen.errors, seen.errors
    await seen.page.context.close()


async def test_a_read_only_dark_chat_box_has_no_composer(
    server: Server, host: HostSite, browser: Browser
) -> None:
    token = server.login()
    box = server.chat_box(token, chatId=ADA, readOnly=True, theme="dark")
    seen = await visit(browser, host, box["url"])
    frame = seen.frame
    await expect(frame.locator("html")).to_have_attribute("data-theme", "dark")
    await expect(frame.locator("html")).to_have_attribute("data-ready", "true")
    await expect(frame.locator("#read-only")).to_be_visible()
    await expect(frame.locator("#composer")).to_be_hidden()
    await expect(frame.locator("#templates")).to_be_hidden()
    await seen.page.context.close()


def crafted(server: Server, token: str, *, contact: str, issued: datetime, lifetime: int) -> str:
    """A chat-box token signed with the server's key, issued at ``issued``."""
    codec = WidgetTokenCodec(
        TokenCodec(
            JWT_SECRET.encode(), issuer="tidings", audience="tidings-api", clock=FrozenClock()
        ),
        issuer="tidings",
        clock=FrozenClock(issued),
    )
    widget, _ = codec.issue(
        user_id=server.user_id(token),
        account_id=server.account_id,
        environment=Environment.SANDBOX,
        contact=contact,
        read_only=False,
        theme="light",
        allowed_origins=(),
        lifetime=lifetime,
    )
    return widget


async def test_expired_and_forged_tokens_are_refused(
    server: Server, host: HostSite, browser: Browser
) -> None:
    token = server.login()
    page_url = f"{server.base}/sandbox/widget/whatsapp/chat-box?token="
    expired = crafted(
        server, token, contact=ADA, issued=datetime.now(UTC) - timedelta(hours=2), lifetime=3600
    )
    seen = await visit(browser, host, page_url + expired)
    await expect(seen.frame.locator("h1")).to_have_text("This chat has expired")
    await seen.page.context.close()
    answer = server.api("GET", "/widget/api/messages", expired)
    assert (answer.status_code, answer.json()["code"]) == (401, "token_expired")

    # A token whose chat was changed to another contact no longer verifies.
    good = token_of(server.chat_box(token, chatId=ADA)["url"])
    header, _payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    other = jwt.encode({**claims, "chat": "+393339876543"}, "x" * 32, algorithm="HS256")
    forged = ".".join((header, other.split(".")[1], signature))
    seen = await visit(browser, host, page_url + forged)
    await expect(seen.frame.locator("h1")).to_have_text("This chat cannot be opened")
    await seen.page.context.close()
    answer = server.api("GET", "/widget/api/messages", forged)
    assert (answer.status_code, answer.json()["code"]) == (401, "invalid_token")

    # Tokens do not cross: the API refuses a chat-box token, the widget a regular one.
    refused = server.api("GET", "/api/v4/account", good)
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")
    refused = server.api("GET", "/widget/api/messages", token)
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")


async def test_the_page_notices_when_its_token_expires(
    server: Server, host: HostSite, browser: Browser
) -> None:
    token = server.login()
    short = crafted(server, token, contact=ADA, issued=datetime.now(UTC), lifetime=4)
    seen = await visit(
        browser, host, f"{server.base}/sandbox/widget/whatsapp/chat-box?token={short}"
    )
    frame = seen.frame
    await expect(frame.locator("html")).to_have_attribute("data-ready", "true")
    await expect(frame.locator("#notice")).to_contain_text("expired", timeout=TIMEOUT_MS)
    await expect(frame.locator("#composer")).to_be_hidden()
    await expect(frame.locator("#window-state")).to_have_text("Expired")
    await seen.page.context.close()


async def test_a_site_outside_allowed_origins_cannot_frame_it(
    server: Server, host: HostSite, browser: Browser
) -> None:
    token = server.login()
    box = server.chat_box(token, chatId=ADA, allowedOrigins=["https://shop.example.com"])
    seen = await visit(browser, host, box["url"])
    if not any("frame-ancestors" in text for text in seen.console):
        await seen.page.wait_for_event(
            "console", predicate=lambda message: "frame-ancestors" in message.text
        )
    frame = seen.page.frame(url=lambda url: "/widget/" in url)
    # Chromium replaces a refused frame's document with an error page: no chat in it.
    if frame is not None:
        assert await frame.locator("#messages").count() == 0
    assert await seen.frame.locator("#messages").count() == 0
    assert any("frame-ancestors" in text for text in seen.console), seen.console
    await seen.page.context.close()
