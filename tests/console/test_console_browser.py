"""The console in Chromium against ``tidings serve``: signing in and out, the
environment switch, a message's timeline going live to ``delivered``, another
account's message, a form without its token, and axe-core on every page.

One server for the module (a few seconds to start); each test opens its own browser
context. Waits are Playwright's, with a timeout, never sleeps. Needs Debian's Chromium
at /usr/bin/chromium: skipped without it, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, expect

from tests.console.browser import (
    ConsoleServer,
    ConsoleVisit,
    accessibility_violations,
    browser_required,
    console_server,
    describe,
    visit,
)
from tests.support.databases import require_or_skip
from tests.widget.browser import chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    require_or_skip(browser_required(), "Chromium")
    with console_server(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
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
