"""``GET /widget/whatsapp/chat-box?token=...``: the chat box page, and its static files.

The page is ``static/chat-box.html`` with a few values filled in (all escaped): the
theme, the contact, and the root the script builds its API URLs from (it keeps the
``/sandbox`` prefix). The script reads the token from the page's own query string, so
nothing runs inline and the policy can be ``script-src 'self'``.

``frame-ancestors`` comes from the token's ``allowedOrigins``; a token made without
them may be framed by any site, and then the token is the only secret. A token that is
expired, forged, of another environment or otherwise unusable gets a notice page (401)
instead of the chat, with the same policy.
"""

from __future__ import annotations

import os
from functools import cache
from html import escape
from importlib.resources import files

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from tidings.api.deps import ContextDep
from tidings.core.errors import Unauthorized
from tidings.docs_site.urls import site_roots
from tidings.widget.access import check_widget_token
from tidings.widget.origins import frame_ancestors

PAGE_PATH = "/widget/whatsapp/chat-box"
STATIC_PATH = "/widget/static"
API_PATH = "/widget/api"
STATIC_FILES = frozenset({"chat-box.css", "chat-box.js"})

router = APIRouter(include_in_schema=False)


def content_security_policy(origins: tuple[str, ...]) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            frame_ancestors(origins),
        )
    )


def page_headers(origins: tuple[str, ...]) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(origins),
        # The token is in the URL: never send it on as a Referer, never cache the page.
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


@cache
def _template(name: str) -> str:
    return files("tidings.widget").joinpath("static", name).read_text(encoding="utf-8")


def render(name: str, values: dict[str, str]) -> str:
    html = _template(name)
    for key, value in values.items():
        html = html.replace("{{" + key + "}}", escape(value))
    return html


@router.get(PAGE_PATH)
async def chat_box_page(
    request: Request, ctx: ContextDep, token: str | None = Query(default=None, max_length=4096)
) -> HTMLResponse:
    root = site_roots(request.scope).current_root
    common = {"root": root, "static": f"{root}{STATIC_PATH}"}
    try:
        if not token:
            raise Unauthorized("This chat box link has no token.")
        claims = await check_widget_token(request, ctx, token)
    except Unauthorized as error:
        expired = error.code == "token_expired"
        notice = render(
            "notice.html",
            {
                **common,
                "title": "This chat has expired" if expired else "This chat cannot be opened",
                "detail": error.detail,
                "code": error.code,
            },
        )
        # Framing an explanation is harmless, so any site may show it.
        return HTMLResponse(notice, status_code=401, headers=page_headers(()))
    page = render(
        "chat-box.html",
        {
            **common,
            "api": f"{root}{API_PATH}",
            "theme": claims.theme,
            "contact": claims.contact,
            "readonly": "true" if claims.read_only else "false",
        },
    )
    return HTMLResponse(page, headers=page_headers(claims.allowed_origins))


class _WidgetStaticFiles(StaticFiles):
    """The page's stylesheet and script only: the HTML templates are rendered, not served."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path not in STATIC_FILES:
            return "", None
        return super().lookup_path(path)


def static_files() -> StaticFiles:
    """The ASGI app serving the page's assets at :data:`STATIC_PATH`."""
    return _WidgetStaticFiles(packages=[("tidings.widget", "static")])
