"""The documentation pages in a real browser, against the real server.

``tidings serve`` runs in a subprocess on a fresh data directory; headless Chromium
opens the landing page, Swagger UI at ``/docs`` and the sandbox's Swagger UI at
``/sandbox/docs``. Swagger UI must render the API's operations from the OpenAPI
document of its own environment, and no page may make a request to any host but the
server's own (no CDN, no validator.swagger.io, no fonts): every request is recorded, and
any to another host is also aborted so the test never reaches the internet.

Needs Debian's Chromium at /usr/bin/chromium: skipped with a message without it, except
under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Request, Route, async_playwright

from tests.support.databases import require_or_skip
from tests.support.processes import TIDINGS, cli_env, free_port, stop, wait_ready

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000
EXPECTED_OPERATIONS = {
    ("POST", "/api/v4/auth/token"),
    ("POST", "/api/v4/sms/send"),
    ("GET", "/api/v4/account"),
}
# Swagger UI's operation rows: (METHOD, path); it puts zero-width spaces in shown paths.
OPERATIONS_JS = """
els => els.map(el => [
    (el.querySelector('.opblock-summary-method')?.textContent || '').trim().toUpperCase(),
    (el.querySelector('.opblock-summary-path')?.getAttribute('data-path')
        || el.querySelector('.opblock-summary-path')?.textContent || '')
        .replace(/\\u200b/g, '').trim(),
])
"""

pytestmark = pytest.mark.browser


@dataclass
class Visit:
    """What a page did while it loaded: every request, and what went wrong."""

    requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@asynccontextmanager
async def serve(tmp_path: Path) -> AsyncIterator[str]:
    """``tidings serve`` on a free port and a fresh data directory; its base URL."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*TIDINGS, "serve", "--port", str(port)],
            env=cli_env(tmp_path / "data"),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(base, process, timeout=60)
        except (RuntimeError, TimeoutError) as error:
            raise AssertionError(f"{error}; server log:\n{log.read_text()}") from error
        yield base
    finally:
        stop(process)


async def open_page(browser: Browser, url: str, own_host: str) -> tuple[Page, Visit]:
    """Open ``url`` in a fresh context, recording requests and aborting foreign ones."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    visit = Visit()

    async def only_own_host(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own_host:
            await route.continue_()
        else:
            await route.abort()

    def on_request(request: Request) -> None:
        visit.requests.append(request.url)

    await context.route("**/*", only_own_host)
    page.on("request", on_request)
    page.on("pageerror", lambda error: visit.page_errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            visit.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on(
        "requestfailed",
        lambda request: visit.failed.append(f"{request.url}: {request.failure}"),
    )
    answer = await page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
    assert answer is not None and answer.status == 200, url
    return page, visit


def assert_only_own_host(visit: Visit, own_host: str) -> None:
    network = [url for url in visit.requests if urlsplit(url).scheme not in ("data", "blob")]
    assert network, "the page made no request at all"
    foreign = [url for url in network if urlsplit(url).netloc != own_host]
    assert not foreign, f"requests to other hosts than {own_host}: {foreign}"
    assert all(urlsplit(url).scheme == "http" for url in network), network
    assert not visit.page_errors, visit.page_errors
    blocked = [text for text in visit.console_errors if "Content Security Policy" in text]
    assert not blocked, blocked
    assert not visit.failed, visit.failed


async def rendered_operations(page: Page) -> set[tuple[str, str]]:
    await page.wait_for_selector(".opblock", state="visible", timeout=TIMEOUT_MS)
    await page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)
    rows = await page.eval_on_selector_all(".opblock", OPERATIONS_JS)
    return {(str(method), str(path)) for method, path in rows}


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def test_docs_pages_render_and_load_nothing_from_other_hosts(tmp_path: Path) -> None:
    require_or_skip(os.path.exists(CHROMIUM), "Chromium")
    async with serve(tmp_path) as base, chromium() as browser:
        own_host = urlsplit(base).netloc

        # Swagger UI for production: the operations, from /openapi.json.
        page, visit = await open_page(browser, f"{base}/docs", own_host)
        operations = await rendered_operations(page)
        assert not EXPECTED_OPERATIONS - operations, sorted(operations)
        screenshot = tmp_path / "docs.png"  # kept with the test's tmp dir, for a look
        await page.screenshot(path=str(screenshot), full_page=True, timeout=TIMEOUT_MS)
        assert screenshot.stat().st_size > 10_000
        assert f"{base}/openapi.json" in visit.requests
        assert f"{base}/sandbox/openapi.json" not in visit.requests
        assert_only_own_host(visit, own_host)
        servers = await page.eval_on_selector_all(
            ".servers select option", "els => els.map(el => el.value)"
        )
        # The sandbox is offered first: "Try it out" there sends nothing.
        assert servers == ["/sandbox", "/"], servers
        await page.context.close()

        # The sandbox's Swagger UI: the same operations, from /sandbox/openapi.json, and
        # "Try it out" goes to the sandbox first.
        page, visit = await open_page(browser, f"{base}/sandbox/docs", own_host)
        operations = await rendered_operations(page)
        assert not EXPECTED_OPERATIONS - operations, sorted(operations)
        specs = [url for url in visit.requests if url.endswith("/openapi.json")]
        assert specs == [f"{base}/sandbox/openapi.json"], specs
        servers = await page.eval_on_selector_all(
            ".servers select option", "els => els.map(el => el.value)"
        )
        assert servers[:1] == ["/sandbox"], servers
        assert_only_own_host(visit, own_host)
        await page.context.close()

        # The landing page: this deployment's base URLs, nothing from elsewhere.
        page, visit = await open_page(browser, f"{base}/", own_host)
        await page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)
        assert "Tidings" in await page.title()
        text = await page.inner_text("body", timeout=TIMEOUT_MS)
        assert f"{base}/sandbox/api/v4/auth/token" in text
        assert await page.locator('a[href="/docs"]').count() >= 1
        assert_only_own_host(visit, own_host)
        await page.context.close()
