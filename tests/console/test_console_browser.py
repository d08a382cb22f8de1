"""The console in Chromium against ``tidings serve``: signing in and out, the
environment switch, a message's timeline going live to ``delivered``, another
account's message, a form without its token, and axe-core on every page.

One server and one browser for the module (a few seconds to start); each test opens
its own browser context. Waits are Playwright's, with a timeout, never sleeps.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from tests.console.browser import (
    ConsoleServer,
    ConsoleVisit,
    accessibility_violations,
    browser_required,
    console_server,
    describe,
    screenshot_path,
    visit,
)
from tests.support.databases import require_or_skip
from tests.widget.browser import TIMEOUT_MS, chromium

# One browser for the module, as one server: the tests share the module's event loop.
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

BOB = "+393471234567"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    require_or_skip(browser_required(), "Chromium")
    with console_server(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(server: ConsoleServer) -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def signed_in(
    browser: Browser, server: ConsoleServer, path: str = "/console"
) -> ConsoleVisit:
    seen = await visit(browser, server.base)
    await seen.sign_in(server.server.username, server.server.password, path=path)
    return seen


async def assert_accessible(seen: ConsoleVisit) -> None:
    violations = await accessibility_violations(seen.page)
    assert not violations, describe(violations)


async def test_sign_in_switch_environment_and_sign_out(
    server: ConsoleServer, browser: Browser
) -> None:
    seen = await visit(browser, server.base)
    await seen.open("/sandbox/console")
    await expect(seen.page).to_have_url(f"{server.base}/sandbox/console/sign-in")
    await assert_accessible(seen)
    await seen.sign_in(server.server.username, server.server.password, path="/sandbox/console")
    await expect(seen.page).to_have_url(f"{server.base}/sandbox/console")
    switch = seen.page.get_by_role("navigation", name="Environment")
    await expect(switch.get_by_role("link", name="Sandbox")).to_have_attribute(
        "aria-current", "page"
    )
    await assert_accessible(seen)

    await switch.get_by_role("link", name="Production").click()
    await expect(seen.page).to_have_url(f"{server.base}/console")
    await expect(switch.get_by_role("link", name="Production")).to_have_attribute(
        "aria-current", "page"
    )
    await assert_accessible(seen)

    await seen.page.get_by_role("button", name="Sign out").click()
    await expect(seen.page).to_have_url(f"{server.base}/console/sign-in")
    await seen.open("/console")
    await expect(seen.page).to_have_url(f"{server.base}/console/sign-in")
    seen.assert_clean()
    await seen.close()


async def test_a_form_without_its_token_is_refused(server: ConsoleServer, browser: Browser) -> None:
    seen = await signed_in(browser, server)
    await seen.page.locator("form.who input[name=csrf]").evaluate("input => input.remove()")
    async with seen.page.expect_response(lambda r: r.url.endswith("/console/sign-out")) as info:
        await seen.page.get_by_role("button", name="Sign out").click()
    assert (await info.value).status == 403
    await expect(seen.page.get_by_role("heading", name="This form has expired")).to_be_visible()
    await assert_accessible(seen)
    # Nothing happened: the session is still there.
    await seen.open("/console")
    await expect(seen.page.get_by_role("button", name="Sign out")).to_be_visible()
    seen.assert_clean()
    await seen.close()


def send(server: ConsoleServer, token: str, path: str, body: dict[str, Any]) -> str:
    answer = server.server.api("POST", path, token, body)
    assert answer.status_code in (200, 202), answer.text
    return str(answer.json()["id"])


async def settled(server: ConsoleServer, token: str, message_id: str, statuses: set[str]) -> None:
    """Until the message has one of ``statuses`` (as the API reads it), bounded."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        answer = server.server.api("GET", f"/api/v4/messages/{message_id}", token)
        if answer.json()["status"] in statuses or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)


async def test_a_message_sent_through_the_api_goes_live_to_delivered(
    server: ConsoleServer, browser: Browser
) -> None:
    seen = await signed_in(browser, server, "/sandbox/console/messages")
    token = server.server.login()
    # Scheduled a few seconds ahead, so the page is open before anything happens.
    at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    message_id = send(
        server,
        token,
        "/api/v4/sms/send",
        {"to": BOB, "body": "Your table for two is booked for 8 pm.", "scheduledAt": at},
    )

    page = seen.page
    await page.get_by_label("Message id or recipient").fill(BOB)
    await page.get_by_role("button", name="Find").click()
    await page.get_by_role("link", name=message_id).click()
    await expect(page.get_by_role("heading", name=message_id)).to_be_visible()
    timeline = page.locator("#timeline")
    assert await timeline.get_attribute("data-status") in ("scheduled", "queued", "sent")
    await assert_accessible(seen)

    # The page is never reloaded: the timeline alone changes, up to delivered.
    await page.evaluate("window.consoleTestMarker = 'still here'")
    await expect(page.locator("#timeline[data-status=delivered]")).to_be_visible()
    assert await page.evaluate("window.consoleTestMarker") == "still here"
    history = page.locator("#timeline .timeline li")
    await expect(history.filter(has_text="Accepted by the provider")).to_have_count(1)
    await expect(history.filter(has_text="Delivered")).to_have_count(1)
    await expect(page.locator("#timeline [data-refresh]")).to_have_count(0)
    await expect(page.locator("#timeline")).not_to_have_attribute("data-refresh", re.compile("."))
    await assert_accessible(seen)
    await page.screenshot(path=str(screenshot_path("console-message.png")))

    # The list, filtered to it.
    await seen.open(f"/sandbox/console/messages?to={quote(BOB)}&channel=sms")
    await expect(page.get_by_role("link", name=message_id)).to_be_visible()
    await assert_accessible(seen)
    seen.assert_clean()
    await seen.close()


async def test_the_overview(server: ConsoleServer, browser: Browser) -> None:
    token = server.server.login()
    for to in ("+393331112233", "+393331112244"):
        send(server, token, "/api/v4/sms/send", {"to": to, "body": "Your parcel is on its way."})
    send(server, token, "/api/v4/sms/send", {"to": "+15550000001", "body": "Refused"})
    chat = send(server, token, f"/api/v4/whatsapp/chats/{BOB}/message", {"body": "See you at 8!"})
    email = send(
        server,
        token,
        "/api/v4/email/send",
        {
            "to": "ada@example.com",
            "from": "Bistro <hello@example.com>",
            "subject": "Your booking",
            "text": "See you at 8.",
        },
    )
    # The picture shows messages that got somewhere.
    await settled(server, token, chat, {"read"})
    await settled(server, token, email, {"delivered"})
    seen = await signed_in(browser, server, "/sandbox/console")
    page = seen.page
    await expect(page.get_by_role("heading", name="Today")).to_be_visible()
    await expect(page.locator("table.counts")).to_contain_text("sms")
    failures = page.get_by_role("region", name="Last failures")
    await expect(failures.get_by_role("link")).not_to_have_count(0)
    await expect(page.get_by_role("region", name="Providers")).to_contain_text("Sandbox sms")
    await assert_accessible(seen)
    await page.screenshot(path=str(screenshot_path("console-overview.png")))

    await seen.open("/console")
    await expect(page.get_by_role("region", name="Credits")).to_contain_text("Production balance")
    await assert_accessible(seen)
    seen.assert_clean()
    await seen.close()


async def test_readable_on_a_phone(server: ConsoleServer, browser: Browser) -> None:
    seen = await visit(browser, server.base, width=375, height=740)
    await seen.sign_in(server.server.username, server.server.password, path="/sandbox/console")
    for path in ("/sandbox/console", "/sandbox/console/messages"):
        await seen.open(path)
        # Wide tables scroll inside their box; the page itself never scrolls sideways.
        width = await seen.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} is {width} px wide on a 375 px screen"
    seen.assert_clean()
    await seen.close()


async def test_the_sandbox_email_is_framed_and_sandboxed(
    server: ConsoleServer, browser: Browser
) -> None:
    token = server.server.login()
    message_id = send(
        server,
        token,
        "/api/v4/email/send",
        {
            "to": "ada@example.com",
            "from": "Bistro <hello@example.com>",
            "subject": "Your booking",
            "html": "<h1>Table for two</h1><p>See you at 8.</p>"
            "<script>document.title='owned'</script>",
            "text": "Table for two. See you at 8.",
        },
    )
    seen = await signed_in(browser, server, f"/sandbox/console/messages/{message_id}")
    frame = seen.page.frame_locator("iframe.email")
    await expect(frame.get_by_role("heading", name="Table for two")).to_be_visible()
    assert await seen.page.title() != "owned"
    await assert_accessible(seen)
    await seen.close()


async def test_another_accounts_message_cannot_be_opened(
    server: ConsoleServer, browser: Browser
) -> None:
    token = server.server.login()
    message_id = send(server, token, "/api/v4/sms/send", {"to": BOB, "body": "Private note"})
    seen = await visit(browser, server.base)
    await seen.sign_in(server.other_username, server.other_password, path="/sandbox/console")
    async with seen.page.expect_response(lambda r: message_id in r.url) as info:
        await seen.open(f"/sandbox/console/messages/{message_id}")
    assert (await info.value).status == 404
    await expect(seen.page.get_by_role("heading", name="Not found")).to_be_visible()
    content = await seen.page.content()
    assert "Private note" not in content and BOB not in content
    await assert_accessible(seen)
    seen.assert_clean()
    await seen.close()
