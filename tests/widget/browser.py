"""Serving the chat box for a real browser: ``tidings serve``, a host site and Chromium.

- :func:`tidings_server` runs ``tidings serve --demo`` on a free port and a fresh data
  directory, with a known JWT secret (so tests can craft an expired token) and slower
  simulated receipts (so a page shows ``sent`` before ``read``).
- :class:`HostSite` is the site that embeds the chat box: a tiny HTTP server on another
  port (so its origin differs) answering ``/?src=<url>`` with a page holding one
  ``<iframe>``.
- :func:`chromium` launches Debian's Chromium through Playwright.

Used by the browser tests and by ``python -m tests.widget.screenshot``.
"""

from __future__ import annotations

import html
import json
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from playwright.async_api import Browser, async_playwright

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
JWT_SECRET = "widget-browser-tests-secret-0123456789abcdef"


@dataclass(frozen=True)
class Server:
    base: str
    username: str
    password: str
    account_id: str
    log: Path

    def login(self) -> str:
        answer = httpx.post(
            f"{self.base}/sandbox/api/v4/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=10,
        )
        answer.raise_for_status()
        return str(answer.json()["token"])

    def user_id(self, token: str) -> str:
        claims = jwt.decode(token, options={"verify_signature": False})
        return str(claims["sub"])

    def api(self, method: str, path: str, token: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.base}/sandbox{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=20,
        )

    def chat_box(self, token: str, **body: Any) -> dict[str, Any]:
        answer = self.api("POST", "/api/v4/iframes/whatsapp/chat-box", token, body)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


@contextmanager
def tidings_server(tmp_path: Path, **env: str) -> Iterator[Server]:
    port = free_port()
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    environment = cli_env(
        data,
        TIDINGS_JWT_SECRET=JWT_SECRET,
        TIDINGS_SANDBOX__RECEIPT_DELAY_SECONDS="1.0",
        # The page, its assets and its stream carry no access token, so they count
        # against the client address; every test here comes from 127.0.0.1.
        TIDINGS_RATE_LIMIT__ANONYMOUS_PER_MINUTE="5000",
        **env,
    )
    with log.open("w") as output:
        process = subprocess.Popen(
            [*TIDINGS, "serve", "--port", str(port), "--demo"],
            env=environment,
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
        demo = json.loads((data / "demo-credentials.json").read_text())
        yield Server(base, demo["username"], demo["password"], demo["account_id"], log)
    finally:
        stop(process)


class _HostHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        src = query.get("src", ["about:blank"])[0]
        theme = query.get("bg", ["#f5f5f5"])[0]
        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Shop</title></head>"
            f"<body style='margin:0;background:{html.escape(theme)}'>"
            f'<iframe id="chat" src="{html.escape(src)}" width="360" height="640" '
            'style="border:0;display:block" title="Chat"></iframe></body></html>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HostSite:
    """A site on its own port that frames a given URL."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _HostHandler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def page_for(self, src: str, **extra: str) -> str:
        return f"{self.origin}/?{urlencode({'src': src, **extra})}"

    def __enter__(self) -> HostSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


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
