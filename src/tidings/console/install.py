"""Adding the console to an application: its pages, static files and error pages
(its headers are among ``create_app``'s middleware). ``create_app`` calls
:func:`install_console` once.

A new page module adds its router to :data:`PAGE_ROUTERS` (and, if it is a top-level
page, an entry to :mod:`tidings.console.nav`).
"""

from __future__ import annotations

import os

from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles

from tidings.console.errors import install_error_pages
from tidings.console.pages import (
    batches,
    contacts,
    domains,
    message,
    messages,
    overview,
    providers,
    sign_in,
    templates,
    webhooks,
)
from tidings.console.paths import STATIC_PATH
from tidings.console.session import console_keys

PAGE_ROUTERS: tuple[APIRouter, ...] = (
    sign_in.router,
    overview.router,
    messages.router,
    message.router,
    providers.router,
    domains.router,
    webhooks.router,
    batches.router,
    templates.router,
    contacts.router,
)
STATIC_FILES = frozenset({"console.css", "console.js"})


class _ConsoleStaticFiles(StaticFiles):
    """The listed files only (a typo'd or probing path is a plain 404)."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path not in STATIC_FILES:
            return "", None
        return super().lookup_path(path)


def install_console(app: FastAPI) -> None:
    app.state.console_keys = console_keys(app.state.ctx)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount(
        STATIC_PATH,
        _ConsoleStaticFiles(packages=[("tidings.console", "static")]),
        name="console-static",
    )
    install_error_pages(app)
    # The console's headers (ConsoleHeadersMiddleware) are create_app's innermost
    # middleware layer, with the others (tidings.http.edge).
