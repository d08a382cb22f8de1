"""The console's management pages in Chromium against ``tidings serve``: a
``simulator`` provider made through its form in production and its check answering,
a failed webhook delivery replayed (a receiver answering 500, then 200) with the
delivery log updating by itself, a record copied from a domain's page, a CSV file
imported with its report, the pages on a phone's width, and axe-core on every page (no
serious or critical violation).

One server for the module; its webhooks give up after the first failed attempt
(``TIDINGS_WEBHOOKS__RETRY_SCHEDULE`` empty), so a delivery the receiver refuses is
``failed`` at once and waits for the replay. Each test opens its own browser
context; waits are Playwright's, never sleeps. The provider form's picture for the
README (docs/console-provider.png) is taken here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.console.browser import (
    ConsoleVisit,
    accessibility_violations,
    browser_required,
    describe,
    screenshot_path,
    visit,
)
from tests.support.databases import require_or_skip
from tests.webhooks.hook_receiver import Receiver, Recorded
from tests.widget.browser import Server, chromium, tidings_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_or_skip(browser_required(), "Chromium")
    with tidings_server(
        tmp_path_factory.mktemp("console-manage"), TIDINGS_WEBHOOKS__RETRY_SCHEDULE=""
    ) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    try:
        yield hook
    finally:
        await hook.stop()


async def signed_in(browser: Browser, server: Server, path: str, **size: int) -> ConsoleVisit:
    seen = await visit(browser, server.base, **size)
    await seen.sign_in(server.username, server.password, path=path)
    return seen


async def assert_accessible(page: Page) -> None:
    violations = await accessibility_violations(page)
    assert not violations, f"{page.url}\n{describe(violations)}"


async def test_a_simulator_provider_from_its_form_and_its_check(
    server: Server, browser: Browser
) -> None:
    seen = await signed_in(browser, server, "/console/providers")
    page = seen.page
    await expect(page.get_by_role("heading", name="Providers")).to_be_visible()
    await assert_accessible(page)

    await page.get_by_role("link", name="Add a provider").click()
    await page.get_by_label("Channel and kind").select_option("sms:simulator")
    await page.get_by_role("button", name="Show its settings").click()
    # The simulator's fields, from its config model.
    await expect(page.get_by_label("Scenario")).to_have_value("normal")
    await expect(page.get_by_label("Messages per second")).to_have_value("0")
    await page.get_by_label("Name (required)").fill("Simulated SMS")
    await assert_accessible(page)
    await page.screenshot(path=str(screenshot_path("console-provider.png")), full_page=True)

    await page.get_by_role("button", name="Add the provider").click()
    await expect(page.get_by_role("status").first).to_contain_text("The provider was added.")
    await expect(page.get_by_role("heading", name="Simulated SMS")).to_be_visible()
    await page.get_by_role("button", name="Check the connection").click()
    answer = page.locator("#check-answer")
    await expect(answer).to_contain_text("answered")
    await expect(answer).to_contain_text("nothing was sent")
    await expect(page.locator(".facts")).to_contain_text("ok")
    await assert_accessible(page)

    # A wrong value comes back next to its field.
    await page.get_by_label("Messages per second").fill("-1")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#cfg-messagesPerSecond-note .field-error")).to_contain_text(
        "greater than or equal to 0"
    )
    await expect(page.get_by_label("Messages per second")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page)

    await page.get_by_role("link", name="Providers", exact=True).first.click()
    await expect(page.get_by_role("link", name="Simulated SMS")).to_be_visible()
    seen.assert_clean()
    await seen.close()


async def test_replay_a_failed_webhook_delivery(
    server: Server, browser: Browser, receiver: Receiver
) -> None:
    answers = iter([500, 200])

    def answer(_request: Recorded) -> tuple[int, dict[str, str], bytes]:
        return next(answers, 200), {}, b"ok"

    receiver.answer = answer
    seen = await signed_in(browser, server, "/sandbox/console/webhooks")
    page = seen.page
    await assert_accessible(page)
    await page.get_by_label("URL").fill(receiver.url)
    # The events are checkboxes, every event ticked by default; a box ticks from the keyboard.
    await expect(page.get_by_role("checkbox", name="Every event *")).to_be_checked()
    failed_box = page.get_by_role("checkbox", name="message.failed", exact=True)
    await failed_box.focus()
    await page.keyboard.press("Space")
    await expect(failed_box).to_be_checked()
    await page.get_by_role("button", name="Add the endpoint").click()
    secret = page.locator("#new-secret")
    await expect(secret).to_contain_text("whsec_")
    await assert_accessible(page)

    await page.get_by_role("button", name="Send a test event").click()
    log = page.locator("#deliveries")
    # The log refreshes by itself until the delivery is settled: refused once, given up.
    await expect(log.locator(".status").first).to_have_text("failed")
    await expect(log).to_contain_text("HTTP 500")
    await assert_accessible(page)

    await page.get_by_role("button", name="Replay failed deliveries").click()
    await expect(page.get_by_role("status").first).to_contain_text(
        "1 failed delivery is due again now."
    )
    await expect(log.locator(".status").first).to_have_text("delivered")
    await expect(log).to_contain_text("HTTP 200")
    assert [r.status for r in receiver.requests] == [500, 200]
    seen.assert_clean()
    await seen.close()


async def test_copy_a_domain_record(server: Server, browser: Browser) -> None:
    seen = await signed_in(browser, server, "/console/domains")
    await seen.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = seen.page
    await assert_accessible(page)
    await page.get_by_label("Domain").fill("example.com")
    await page.get_by_role("button", name="Add the domain").click()
    await expect(page.get_by_role("heading", name="example.com")).to_be_visible()
    button = page.get_by_role("button", name="Copy the name of the spf record")
    await button.click()
    await expect(button).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == "example.com"
    await assert_accessible(page)
    await page.get_by_role("button", name="Verify now").click()
    # No DNS server publishes example.com's new key: it stays pending, or DNS is
    # unreachable from here and the page says so.
    await expect(page.locator("main")).to_contain_text("pending")
    seen.assert_clean()
    await seen.close()


async def test_the_other_pages_are_accessible_and_fit_a_phone(
    server: Server, browser: Browser
) -> None:
    token = server.login()
    made = server.api(
        "POST",
        "/api/v4/sms/bulk",
        token,
        {"recipients": [{"to": "+393331234567"}], "body": "Hi", "name": "Spring"},
    )
    assert made.status_code == 202, made.text
    batch_id = made.json()["id"]

    seen = await signed_in(browser, server, "/sandbox/console/batches", width=390, height=800)
    page = seen.page
    paths = [
        "/sandbox/console/providers",
        "/sandbox/console/providers/new",
        "/sandbox/console/domains",
        "/sandbox/console/domains/dom_sandbox",
        "/sandbox/console/webhooks",
        "/sandbox/console/batches",
        f"/sandbox/console/batches/{batch_id}",
        "/sandbox/console/templates",
        "/sandbox/console/contacts",
    ]
    for path in paths:
        await seen.open(path)
        await expect(page.locator("main h1")).to_be_visible()
        # Nothing wider than the phone's screen: wide tables scroll in their card.
        wide = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert wide <= 0, f"{path} is {wide}px wider than the screen"
        # The navigation wraps rather than scrolls: the current page's link is on screen.
        current = page.locator("nav.pages a[aria-current=page]")
        await expect(current).to_have_count(1)
        box = await current.bounding_box()
        assert box is not None, path
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"{path}: nav link at {box}"
        await assert_accessible(page)

    await seen.open(f"/sandbox/console/batches/{batch_id}")
    await expect(page.locator("#batch-status")).to_have_text("completed")
    await expect(page.locator("#batch-done")).to_have_text("1 of 1")

    # A CSV file uploaded from the browser, and its report.
    await seen.open("/sandbox/console/contacts")
    await page.get_by_label("File (required)").set_input_files(
        files=[
            {
                "name": "people.csv",
                "mimeType": "text/csv",
                "buffer": b"phone,name\n+393331234567,Ada\nnope,Bob\n",
            }
        ]
    )
    await page.get_by_role("button", name="Import").click()
    report = page.locator("#import-report")
    await expect(report).to_contain_text("2 rows read")
    await expect(report).to_contain_text("1 created")
    await expect(report).to_contain_text("invalid_phone_number")
    await expect(page.get_by_role("region", name="Contacts")).to_contain_text("Ada")
    await assert_accessible(page)
    seen.assert_clean()
    await seen.close()
