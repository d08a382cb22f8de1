"""The console in a real browser: ``tidings serve`` (the chat box's harness), Chromium,
and what a test checks on every page.

- :func:`console_server` is :func:`tests.widget.browser.tidings_server` (``tidings
  serve --demo`` on a free port, a fresh data directory, simulated receipts a second
  apart, so a page shows ``sent`` before ``delivered``), with a second account and user
  made by the ``tidings`` command for the tests that look across accounts.
- :class:`ConsoleVisit` is one browser context, signed in through the form, which
  records every script error and every message the browser logs (a policy violation
  is logged as ``Refused to ...``), for :meth:`ConsoleVisit.assert_clean`.
- :func:`accessibility_violations` runs axe-core (the copy inside
  ``axe-playwright-python``, nothing fetched) on the current page and returns the
  serious and critical violations.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page

from tests.support.processes import cli_env, run_cli
from tests.widget.browser import TIMEOUT_MS, Server, tidings_server

OTHER_USERNAME = "grace@example.com"
OTHER_PASSWORD = "another correct horse battery"
SEVERE = frozenset({"serious", "critical"})
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ConsoleServer:
    """The running server, its demo user, and a user of another account."""

    server: Server
    other_username: str
    other_password: str
    other_account_id: str

    @property
    def base(self) -> str:
        return self.server.base


@contextmanager
def console_server(tmp_path: Path) -> Iterator[ConsoleServer]:
    with tidings_server(tmp_path) as server:
        env = cli_env(tmp_path / "data")
        made = run_cli(["accounts", "create", "Other account"], env)
        assert made.returncode == 0, made.stderr
        account_id = made.stdout.strip()
        user = run_cli(
            [
                "users",
                "create",
                "--account",
                account_id,
                "--username",
                OTHER_USERNAME,
                "--password-stdin",
            ],
            env,
            stdin=OTHER_PASSWORD + "\n",
        )
        assert user.returncode == 0, user.stderr
        yield ConsoleServer(server, OTHER_USERNAME, OTHER_PASSWORD, account_id)


class ConsoleVisit:
    """One browser context on the console, and what went wrong in it."""

    def __init__(self, context: BrowserContext, page: Page, base: str) -> None:
        self.context = context
        self.page = page
        self.base = base
        self.errors: list[str] = []
        self.console: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: self.console.append(message.text))

    async def open(self, path: str) -> Page:
        await self.page.goto(self.base + path, wait_until="load")
        return self.page

    async def sign_in(self, username: str, password: str, *, path: str = "/console") -> None:
        await self.open(path)
        await self.page.get_by_label("Username").fill(username)
        await self.page.get_by_label("Password").fill(password)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.locator("form.who").wait_for()

    def assert_clean(self) -> None:
        """No script error, and nothing refused by the Content-Security-Policy."""
        assert not self.errors, self.errors
        refused = [line for line in self.console if "Content Security Policy" in line]
        assert not refused, refused

    async def close(self) -> None:
        await self.context.close()


async def visit(
    browser: Browser, base: str, *, width: int = 1000, height: int = 800
) -> ConsoleVisit:
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    return ConsoleVisit(context, page, base)


async def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on ``page``, each with its nodes."""
    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [v for v in violations if v.get("impact") in SEVERE]


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node.get("target")) for node in v.get("nodes", []))
        for v in violations
    )


def screenshot_path(name: str) -> Path:
    """Where the suite keeps a picture the README shows (rewritten on every run)."""
    return ROOT / "docs" / name


def browser_required() -> bool:
    return os.path.exists("/usr/bin/chromium")
