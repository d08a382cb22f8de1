"""Regenerate the README's pictures in the suite's browser (Chromium via Playwright):
``docs/landing.png`` (the landing page's first screen) and ``docs/chat-box.png``.

Run by hand after changing the pages (a test must not rewrite committed files; the
freshness test in test_screenshots.py says when they are out of date)::

    .venv/bin/python -m tests.firstcontact.screenshots
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from tests.widget.browser import TIMEOUT_MS, Server, chromium, tidings_server
from tests.widget.screenshot import photograph

ROOT = Path(__file__).resolve().parents[2]
LANDING = ROOT / "docs" / "landing.png"
CHAT_BOX = ROOT / "docs" / "chat-box.png"


async def photograph_landing(server: Server, out: Path) -> None:
    async with chromium() as browser:
        context = await browser.new_context(
            viewport={"width": 1280, "height": 900}, device_scale_factor=1
        )
        page = await context.new_page()
        await page.goto(f"{server.base}/", timeout=TIMEOUT_MS)
        await page.locator("h1").first.wait_for(timeout=TIMEOUT_MS)
        await page.screenshot(path=str(out), timeout=TIMEOUT_MS)
        await context.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch, tidings_server(Path(scratch)) as server:
        asyncio.run(photograph_landing(server, LANDING))
        asyncio.run(photograph(server, CHAT_BOX, "light"))
    print(f"wrote {LANDING} and {CHAT_BOX}")


if __name__ == "__main__":
    main()
