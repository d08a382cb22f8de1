"""The public documentation of a Tidings deployment, installed by :func:`install_docs`.

Routes, none of them in the OpenAPI document:

=====================  =======================================================
``GET /``              landing page and quick start (:mod:`.landing`)
``GET /docs``          Swagger UI (:mod:`.swagger`)
``GET /openapi.json``  the OpenAPI 3.0.3 document (:mod:`.openapi`)
``/docs/assets/...``   swagger-ui's files from ``swagger_ui_bundle`` (allowlist)
``/docs/static/...``   this package's ``static/`` (Swagger init, copy buttons)
=====================  =======================================================

Every URL in these pages is built from the request's ``root_path``, so the same app
serves them under the ``/sandbox`` prefix too; nothing is loaded from a CDN.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tidings.docs_site.deployment import ProductionProviders, production_providers
from tidings.docs_site.landing import landing_endpoint
from tidings.docs_site.openapi import convert_to_openapi_30, openapi_document, with_servers
from tidings.docs_site.swagger import (
    ASSETS_PATH,
    STATIC_PATH,
    package_static,
    swagger_assets,
    swagger_endpoint,
)
from tidings.docs_site.urls import site_roots

__all__ = ["convert_to_openapi_30", "install_docs", "openapi_document"]

log = logging.getLogger("tidings.docs")


async def _production_providers(request: Request) -> ProductionProviders | None:
    ctx = getattr(request.app.state, "ctx", None)  # absent in apps made only for docs tests
    if ctx is None:
        return None
    try:
        return await production_providers(ctx.sessions)
    except SQLAlchemyError:
        # The documentation never fails with the database (not migrated yet, or down):
        # it then says providers are configured per account, and nothing more.
        log.warning("could not read the configured providers for the docs", exc_info=True)
        return None


def install_docs(app: FastAPI, *, title: str, version: str, description: str) -> None:
    """Serve the landing page, Swagger UI and OpenAPI 3.0.3 document of ``app``.

    Call it on an app created with ``openapi_url=None, docs_url=None, redoc_url=None``.
    The document is generated on the first request (when every router is included) and
    cached on ``app.state``; only its ``servers`` list depends on the request.
    """

    async def openapi_json(request: Request) -> Response:
        doc = openapi_document(app, title=title, version=version, description=description)
        providers = await _production_providers(request)
        note = providers.sentence() if providers is not None else None
        return JSONResponse(with_servers(doc, site_roots(request.scope), note))

    app.add_route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)
    app.add_route("/docs", swagger_endpoint(title), methods=["GET"], include_in_schema=False)
    app.add_route(
        "/",
        landing_endpoint(title=title, version=version, providers=_production_providers),
        methods=["GET"],
        include_in_schema=False,
    )
    app.mount(ASSETS_PATH, swagger_assets(), name="docs-assets")
    app.mount(STATIC_PATH, package_static(), name="docs-static")
