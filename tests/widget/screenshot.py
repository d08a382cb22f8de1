"""Regenerate ``docs/chat-box.png``: the chat box, framed by a site, in Chromium.

Run by hand (a test must not rewrite a committed file on every run)::

    .venv/bin/python -m tests.widget.screenshot [--theme dark] [--out docs/chat-box.png]

It starts ``tidings serve`` on a scratch data directory, writes a short sandbox
conversation, and photographs the chat box at phone size (360x640).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tests.widget.browser import TIMEOUT_MS, HostSite, Server, chromium, tidings_server

CONTACT = "+393331234567"
ROOT = Path(__file__).resolve().parents[2]


def seed(server: Server, token: str) -> None:
    """A short conversation that ends with a reply being read."""
    lines = [
        ("in", "Hi! I ordered a blue bike yesterday, order #1234."),
        ("out", "Hello Ada, thanks for writing. Let me check."),
        ("out", "Your bike left our warehouse this morning."),
        ("in", "Great, when will it arrive?"),
        ("out", "Tomorrow between 9:00 and 12:00. You'll get a message from the courier."),
        ("in", "Perfect, thank you!"),
    ]
    for direction, body in lines:
        if direction == "in":
            answer = server.api(
                "POST",
                "/api/v4/sandbox/inbound",
                token,
                {"channel": "whatsapp", "from": CONTACT, "body": body},
            )
        else:
            answer = server.api(
                "POST", f"/api/v4/whatsapp/chats/{CONTACT}/message", token, {"body": body}
            )
        answer.raise_for_status()
        time.sleep(0.05)


async def photograph(server: Server, out: Path, theme: str) -> None:
    token = server.login()
    seed(server, token)
    with HostSite() as host:
        box = server.chat_box(token, chatId=CONTACT, theme=theme, allowedOrigins=[host.origin])
        async with chromium() as browser:
            context = await browser.new_context(
                viewport={"width": 360, "height": 640}, device_scale_factor=2
            )
            page = await context.new_page()
            await page.goto(host.page_for(box["url"]), timeout=TIMEOUT_MS)
            frame = page.frame_locator("#chat")
            await frame.locator("html[data-ready=true]").wait_for(timeout=TIMEOUT_MS)
            # Every reply read (blue ticks) before the picture is taken.
            await frame.locator(".msg.out[data-status=read]").nth(2).wait_for(timeout=TIMEOUT_MS)
            await frame.locator("#reply").fill("You're welcome!")
            await page.locator("#chat").screenshot(path=str(out), timeout=TIMEOUT_MS)
            await context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "chat-box.png")
    parser.add_argument("--theme", choices=["light", "dark"], default="light")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, tidings_server(Path(scratch)) as server:
        asyncio.run(photograph(server, args.out, args.theme))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
