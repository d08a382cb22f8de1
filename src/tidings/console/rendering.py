"""Rendering a page: the package's Jinja2 templates, and what every page is given.

Autoescaping is on for every template and undefined names are errors, so a value is
never written into a page unescaped (message text included: it is shown as text,
never as HTML) and a typo fails the tests instead of showing an empty cell.

Every template gets ``links`` (:class:`~tidings.console.paths.PageLinks`), ``user``
(the signed-in :class:`~tidings.console.session.ConsoleUser`, or None), ``csrf`` (the
token every ``<form method="post">`` puts in a hidden ``csrf`` field), ``nav`` (the
entries with the current one marked) and ``environment``; a page adds its own values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from tidings.console.nav import NAV
from tidings.console.paths import CONSOLE, page_links
from tidings.console.session import ConsoleUser
from tidings.http.environment import get_route_path


def when(value: datetime | None, *, seconds: bool = True) -> str:
    """A time as the console shows it: UTC, to the second."""
    if value is None:
        return "—"
    shown = value.astimezone(UTC)
    return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " UTC"


def iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


@cache
def templates() -> Environment:
    environment = Environment(
        loader=PackageLoader("tidings.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = when
    environment.filters["iso"] = iso
    return environment


def render(
    request: Request,
    template: str,
    *,
    user: ConsoleUser | None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    switch_path: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """``template`` rendered for ``request``; ``switch_path`` as in
    :func:`~tidings.console.paths.page_links`."""
    links = page_links(request, switch_path=switch_path)
    route_path = get_route_path(request.scope)
    page_path = route_path[len(CONSOLE) :] if route_path.startswith(CONSOLE) else ""
    context = {
        "links": links,
        "user": user,
        "csrf": user.csrf if user else "",
        "nav": [(entry, entry.is_current(page_path)) for entry in NAV],
        "environment": links.environment.value,
        **values,
    }
    html = templates().get_template(template).render(context)
    return HTMLResponse(html, status_code=status, headers=dict(headers or {}))
