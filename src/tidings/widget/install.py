"""Adding the chat box to an application: its page, static files, API and stream."""

from __future__ import annotations

from fastapi import FastAPI

from tidings.widget.api import router as api_router
from tidings.widget.live import router as live_router
from tidings.widget.page import STATIC_PATH, static_files
from tidings.widget.page import router as page_router
from tidings.widget.templates import router as templates_router


def install_widget(app: FastAPI) -> None:
    """Serve the chat box (the token endpoint is a ``/api/v4`` router of its own)."""
    app.include_router(page_router)
    app.include_router(api_router)
    app.include_router(templates_router)
    app.include_router(live_router)
    app.mount(STATIC_PATH, static_files(), name="widget-static")
