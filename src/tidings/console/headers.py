"""The headers of every answer under ``/console`` (and ``/sandbox/console``).

The policy allows the console's own files and nothing else: no inline script or
style (templates use classes, the script is a file), no plugin, no other origin, and
no framing by anyone (``frame-ancestors 'none'``). ``frame-src 'self'`` is there for
one thing, the sandbox's rendered emails, which are served with a policy of their own
(:data:`EMAIL_PREVIEW_POLICY`) into an ``<iframe sandbox>``.

The middleware adds them to whatever answers under the console's paths, error pages
and FastAPI's own 404/405/422 included; an answer that set its own policy keeps it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.console.paths import CONSOLE, STATIC_PATH
from tidings.http.environment import get_route_path

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)

# A rendered email is somebody's HTML: it gets a unique origin (``sandbox``), no script,
# no request to anywhere (a remote image could be a tracking pixel), its own inline
# styles, and may be framed only by the console.
EMAIL_PREVIEW_POLICY = "; ".join(
    (
        "sandbox",
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src data:",
        "font-src data:",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'self'",
    )
)

_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    # Pages show an account's data: never kept by a shared cache or the back button
    # after signing out.
    "Cache-Control": "no-store",
}
_STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
    # Revalidated with the file's ETag: a new version of the package shows at once.
    "Cache-Control": "no-cache",
}


def is_console_path(route_path: str) -> bool:
    return route_path == CONSOLE or route_path.startswith(CONSOLE + "/")


class ConsoleHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = headers_for(get_route_path(scope))
        if wanted is None:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_headers(message, wanted)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def headers_for(route_path: str) -> dict[str, str] | None:
    """The headers every answer at ``route_path`` gets (None outside the console)."""
    if not is_console_path(route_path):
        return None
    return _STATIC_HEADERS if route_path.startswith(STATIC_PATH + "/") else _PAGE_HEADERS


def add_headers(message: Message, wanted: dict[str, str]) -> None:
    """Add ``wanted`` to a response's start message, but not over its own."""
    headers = MutableHeaders(scope=message)
    for name, value in wanted.items():
        if name not in headers:
            headers[name] = value
