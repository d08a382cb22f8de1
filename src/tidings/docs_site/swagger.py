"""Swagger UI at ``/docs``, served entirely from local files.

A deployment may have no internet access, so nothing is fetched from a CDN:

- the swagger-ui dist vendored by ``swagger_ui_bundle`` is served at ``/docs/assets``,
  restricted to the files the page uses (the dist also ships a demo ``index.html`` whose
  initializer loads the Petstore spec from the internet);
- this package's ``static/`` (the Swagger init script and the landing page's copy
  script) is served at ``/docs/static``;
- Swagger UI's default ``validatorUrl`` (validator.swagger.io) is turned off, and
  ``queryConfigEnabled`` stays off so a crafted link cannot load a foreign spec.

The page is written here rather than with ``fastapi.openapi.docs.get_swagger_ui_html``,
whose inline ``<script>`` varies with the URL (so it cannot be allowed by a fixed hash)
and which interpolates the title without escaping. The configuration travels as a JSON
data block read by ``static/swagger-init.js``, so the CSP is ``script-src 'self'``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from html import escape
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from tidings.docs_site.urls import SiteRoots, site_roots

ASSETS_PATH = "/docs/assets"
STATIC_PATH = "/docs/static"

_SWAGGER_FILES = frozenset(
    {
        "swagger-ui-bundle.js",
        "swagger-ui-bundle.js.map",
        "swagger-ui.css",
        "swagger-ui.css.map",
        "favicon-16x16.png",
        "favicon-32x32.png",
    }
)

# Checked in Chromium with every operation, model and the Authorize dialog open and a
# "Try it out" answer shown: swagger-ui 4 sets styles only through the CSSOM (which CSP
# does not govern), so styles need no 'unsafe-inline'. Its CSS uses data: images; blob:
# is for "Try it out" answers that are files.
DOCS_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

Endpoint = Callable[[Request], Awaitable[Response]]


class _AllowlistStaticFiles(StaticFiles):
    """StaticFiles that answers 404 for every file not named in ``allowed``."""

    def __init__(self, *, directory: str, allowed: frozenset[str]) -> None:
        super().__init__(directory=directory)
        self._allowed = allowed

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path not in self._allowed:
            return "", None
        return super().lookup_path(path)


def swagger_assets() -> StaticFiles:
    """The ASGI app serving swagger-ui's dist at :data:`ASSETS_PATH`."""
    return _AllowlistStaticFiles(directory=str(Path(str(swagger_ui_path))), allowed=_SWAGGER_FILES)


def package_static() -> StaticFiles:
    """The ASGI app serving this package's ``static/`` at :data:`STATIC_PATH`."""
    return StaticFiles(packages=[("tidings.docs_site", "static")])


def _json_for_script(value: Any) -> str:
    # Inside <script type="application/json"> only "</script" could end the block;
    # escaping <, > and & keeps the JSON identical once parsed.
    return (
        json.dumps(value, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def swagger_ui_config(roots: SiteRoots) -> dict[str, Any]:
    """Swagger UI options (its JavaScript API names); functions are added by the init script."""
    return {
        "url": f"{roots.current_root}/openapi.json",
        "deepLinking": True,
        "displayRequestDuration": True,
        "docExpansion": "list",
        "filter": True,
        "showExtensions": True,
        "showCommonExtensions": True,
        "tryItOutEnabled": False,
        "persistAuthorization": False,
        "queryConfigEnabled": False,
        "validatorUrl": None,
    }


def render_swagger_page(title: str, roots: SiteRoots) -> str:
    root = escape(roots.current_root)
    assets = f"{root}{ASSETS_PATH}"
    config = _json_for_script(swagger_ui_config(roots))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · API reference</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" sizes="32x32" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script id="swagger-ui-config" type="application/json">{config}</script>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{root}{STATIC_PATH}/swagger-init.js"></script>
</body>
</html>
"""


def swagger_endpoint(title: str) -> Endpoint:
    """The ``GET /docs`` handler for an API called ``title``."""

    async def swagger_page(request: Request) -> Response:
        html = render_swagger_page(title, site_roots(request.scope))
        return HTMLResponse(html, headers={"Content-Security-Policy": DOCS_CSP})

    return swagger_page
