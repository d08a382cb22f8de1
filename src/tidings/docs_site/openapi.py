"""The OpenAPI 3.0.3 document served at ``/openapi.json``.

FastAPI generates OpenAPI 3.1; the product publishes 3.0.3 (design section 5) because
many client generators and gateways still only read 3.0. This module holds:

- :func:`convert_to_openapi_30`, a pure function that walks the document *structurally*
  (paths, operations, parameters, bodies, responses, headers, callbacks, components) and
  hands every Schema Object to :func:`~tidings.docs_site.schema30.convert_schema`. The
  walk knows where schemas are, so a model property that happens to be called
  ``examples`` or ``const`` is left alone, and Parameter/Media Type ``examples`` maps
  (valid in 3.0) are kept while schema-level ``examples`` lists become ``example``.
- :func:`with_bearer_scheme` and :func:`with_servers`, which add what the product
  contract says every consumer needs (the JWT scheme; production and sandbox servers).
- :func:`openapi_document`, which builds the converted document once per app and caches
  it on ``app.state``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tidings.docs_site.schema30 import convert_schema
from tidings.docs_site.urls import SiteRoots
from tidings.http.json_body import documented_schemas

OPENAPI_VERSION = "3.0.3"
BEARER_SCHEME_NAME = "bearerAuth"
_STATE_KEY = "docs_site_openapi"

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# 3.1-only top-level fields; webhooks are kept as Redoc's `x-webhooks` extension.
_DROPPED_ROOT_KEYS = frozenset({"openapi", "$schema", "$id", "jsonSchemaDialect", "webhooks"})
_COMPONENT_KEYS_30 = frozenset(
    {
        "schemas", "responses", "parameters", "examples", "requestBodies", "headers",
        "securitySchemes", "links", "callbacks",
    }
)  # fmt: skip
_BEARER_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A token from `POST /api/v4/auth/token`, sent as "
    "`Authorization: Bearer <token>`. A token works only in the environment "
    "(production or sandbox) that issued it.",
}

Obj = dict[str, Any]


def _ref_or(convert: Callable[[Obj], Obj]) -> Callable[[Any], Any]:
    # Reference Objects in 3.0 are exactly {"$ref": ...}: 3.1's summary/description
    # siblings are not allowed there.
    def visit(obj: Any) -> Any:
        if not isinstance(obj, Mapping):
            return copy.deepcopy(obj)
        if "$ref" in obj:
            return {"$ref": obj["$ref"]}
        return convert(dict(obj))

    return visit


def _each(convert: Callable[[Any], Any], mapping: Any) -> Any:
    if not isinstance(mapping, Mapping):
        return copy.deepcopy(mapping)
    return {key: convert(value) for key, value in mapping.items()}


def _fields(obj: Obj, converters: Mapping[str, Callable[[Any], Any]]) -> Obj:
    return {
        key: converters[key](value) if key in converters else copy.deepcopy(value)
        for key, value in obj.items()
    }


def _media_type(obj: Obj) -> Obj:
    return _fields(
        obj,
        {
            "schema": convert_schema,
            "encoding": lambda enc: _each(
                lambda e: _fields(dict(e), {"headers": lambda h: _each(_header, h)}), enc
            ),
        },
    )


def _content(content: Any) -> Any:
    return _each(_ref_or(_media_type), content)


def _parameter_like(obj: Obj) -> Obj:
    return _fields(obj, {"schema": convert_schema, "content": _content})


_header = _ref_or(_parameter_like)
_parameter = _ref_or(_parameter_like)
_request_body = _ref_or(lambda obj: _fields(obj, {"content": _content}))
_response = _ref_or(
    lambda obj: _fields(obj, {"content": _content, "headers": lambda h: _each(_header, h)})
)


def _operation(obj: Obj) -> Obj:
    out = _fields(
        obj,
        {
            "parameters": lambda ps: [_parameter(p) for p in ps],
            "requestBody": _request_body,
            "responses": lambda rs: _each(_response, rs),
            "callbacks": lambda cbs: _each(_ref_or(lambda cb: _each(_path_item, cb)), cbs),
        },
    )
    # 3.1 made `responses` optional; 3.0 requires at least one.
    out.setdefault("responses", {"default": {"description": "Any answer."}})
    return out


def _path_item(obj: Any) -> Any:
    if not isinstance(obj, Mapping):
        return copy.deepcopy(obj)
    converters: dict[str, Callable[[Any], Any]] = {
        method: lambda op: _operation(dict(op)) for method in _METHODS
    }
    converters["parameters"] = lambda ps: [_parameter(p) for p in ps]
    return _fields(dict(obj), converters)


def _components(obj: Obj) -> Obj:
    kept = {k: v for k, v in obj.items() if k in _COMPONENT_KEYS_30 or k.startswith("x-")}
    out = _fields(
        kept,
        {
            "schemas": lambda ss: _each(convert_schema, ss),
            "responses": lambda rs: _each(_response, rs),
            "parameters": lambda ps: _each(_parameter, ps),
            "requestBodies": lambda bs: _each(_request_body, bs),
            "headers": lambda hs: _each(_header, hs),
            "callbacks": lambda cbs: _each(_ref_or(lambda cb: _each(_path_item, cb)), cbs),
        },
    )
    schemes = out.get("securitySchemes")
    if isinstance(schemes, dict):
        # mutualTLS is 3.1-only; 3.0 has no way to say it.
        out["securitySchemes"] = {
            name: scheme
            for name, scheme in schemes.items()
            if not (isinstance(scheme, Mapping) and scheme.get("type") == "mutualTLS")
        }
    return out


def _info(obj: Obj) -> Obj:
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k != "summary"}
    if isinstance(out.get("license"), dict):
        out["license"].pop("identifier", None)  # 3.1-only (SPDX id)
    return out


def convert_to_openapi_30(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A valid OpenAPI 3.0.3 document equivalent to the 3.1 document ``doc``.

    ``doc`` is not modified. See :mod:`tidings.docs_site.schema30` for the schema rules.
    """
    rest = {k: v for k, v in doc.items() if k not in _DROPPED_ROOT_KEYS}
    out: Obj = {"openapi": OPENAPI_VERSION}
    out.update(
        _fields(
            rest,
            {
                "info": lambda info: _info(dict(info)),
                "paths": lambda paths: _each(_path_item, paths),
                "components": lambda comps: _components(dict(comps)),
            },
        )
    )
    out.setdefault("paths", {})  # optional in 3.1, required in 3.0
    if isinstance(doc.get("webhooks"), Mapping) and doc["webhooks"]:
        out["x-webhooks"] = _each(_path_item, doc["webhooks"])
    return out


def _rename_security(requirements: Any, old: str, new: str) -> Any:
    if not isinstance(requirements, list):
        return requirements
    return [
        {(new if name == old else name): scopes for name, scopes in req.items()}
        if isinstance(req, Mapping)
        else req
        for req in requirements
    ]


def with_bearer_scheme(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with the JWT bearer scheme as ``components.securitySchemes.bearerAuth``.

    Operation-level ``security`` stays the routes' business. When the routes use
    FastAPI's ``HTTPBearer`` (which registers itself as ``HTTPBearer``), that one scheme
    is renamed to ``bearerAuth`` everywhere, so Swagger UI's Authorize dialog shows one
    bearer scheme and the route declarations keep pointing at it.
    """
    out = copy.deepcopy(dict(doc))
    components = out.setdefault("components", {})
    schemes: Obj = components.setdefault("securitySchemes", {})
    if BEARER_SCHEME_NAME in schemes:
        schemes[BEARER_SCHEME_NAME] = {**_BEARER_SCHEME, **schemes[BEARER_SCHEME_NAME]}
        return out
    bearers = [
        name
        for name, scheme in schemes.items()
        if isinstance(scheme, Mapping)
        and scheme.get("type") == "http"
        and str(scheme.get("scheme", "")).lower() == "bearer"
    ]
    if len(bearers) != 1:
        schemes[BEARER_SCHEME_NAME] = dict(_BEARER_SCHEME)
        return out
    old = bearers[0]
    schemes[BEARER_SCHEME_NAME] = {**_BEARER_SCHEME, **schemes.pop(old)}
    out["security"] = _rename_security(out.get("security"), old, BEARER_SCHEME_NAME)
    if out["security"] is None:
        del out["security"]
    for group in ("paths", "x-webhooks"):
        for item in (out.get(group) or {}).values():
            for method in _METHODS:
                operation = item.get(method) if isinstance(item, Mapping) else None
                if isinstance(operation, dict) and "security" in operation:
                    operation["security"] = _rename_security(
                        operation["security"], old, BEARER_SCHEME_NAME
                    )
    return out


def with_servers(
    doc: Mapping[str, Any], roots: SiteRoots, production_providers: str | None = None
) -> dict[str, Any]:
    """A shallow copy of ``doc`` whose ``servers`` list both environments.

    Swagger UI sends "Try it out" to the first server, so the sandbox comes first:
    trying the API there sends nothing and costs nothing. ``production_providers``
    says what production can really send (see :mod:`.deployment`). URLs are
    root-relative: valid in 3.0 (relative to where the document is served) and right
    whatever Host the deployment is reached by.
    """
    sandbox = {
        "url": roots.sandbox_root or "/",
        "description": "Sandbox: simulated providers, no credits, magic test recipients",
    }
    if roots.production_root is None:
        servers = [sandbox]
    else:
        providers = production_providers or "the providers configured per account"
        production = {
            "url": roots.production_root or "/",
            "description": f"Production: real credits; {providers}",
        }
        servers = [sandbox, production]
    out: Obj = {k: doc[k] for k in ("openapi", "info") if k in doc}
    out["servers"] = servers
    out.update((k, v) for k, v in doc.items() if k not in out)
    return out


def build_openapi_30(app: FastAPI, *, title: str, version: str, description: str) -> Obj:
    """Generate ``app``'s OpenAPI 3.0.3 document (no servers; see :func:`with_servers`)."""
    raw = get_openapi(
        title=title,
        version=version,
        description=description,
        summary=app.summary,
        routes=app.routes,
        webhooks=app.webhooks.routes,
        tags=app.openapi_tags,
        terms_of_service=app.terms_of_service,
        contact=app.contact,
        license_info=app.license_info,
        separate_input_output_schemas=app.separate_input_output_schemas,
        external_docs=app.openapi_external_docs,
    )
    schemas = raw.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in documented_schemas().items():
        schemas.setdefault(name, schema)
    return with_bearer_scheme(convert_to_openapi_30(raw))


def openapi_document(app: FastAPI, *, title: str, version: str, description: str) -> Obj:
    """The cached 3.0.3 document of ``app``, built on first use.

    Built lazily because routers are still being included after ``install_docs`` runs;
    by the first request the route table is complete. Callers must not mutate it.
    """
    doc: Obj | None = getattr(app.state, _STATE_KEY, None)
    if doc is None:
        doc = build_openapi_30(app, title=title, version=version, description=description)
        setattr(app.state, _STATE_KEY, doc)
    return doc
