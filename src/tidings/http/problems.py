"""problem+json answers (RFC 9457) and the exception handlers that make them.

Every error answer of the server goes through :func:`problem_response`, whether
it comes from a route (an :class:`~tidings.core.errors.ApiError`), from request
validation, from routing (404/405) or from an unexpected exception (500, logged
with its trace, answered with the request id and nothing else).

A 405's ``Allow`` names the methods of every route at the path (the router only
knows the first route it tried), and a body FastAPI could not parse (deep
nesting, bytes that are not UTF-8) is 400 ``invalid_json`` like any broken JSON.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from tidings.core.errors import ApiError, FieldError
from tidings.http.environment import get_route_path
from tidings.http.json_body import TOO_DEEP
from tidings.http.request_hints import (
    prefixed_path,
    unknown_field_message,
    whole_body_problem,
)

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("tidings.http")

_DEFAULT_CODES = {
    400: "bad_request",
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


NOT_JSON = "The request body is not valid JSON."

# RFC 9110's names where Python's http module still has the older ones.
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def status_title(status: int) -> str:
    return _TITLES.get(status) or HTTPStatus(status).phrase


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": status_title(status),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if errors:
        body["errors"] = [error.as_dict() for error in errors]
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    content = json.dumps(
        problem_body(status, code, detail, errors=errors, extra=extra),
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    return Response(content, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def problem_for(error: ApiError) -> Response:
    return problem_response(
        error.status,
        error.code,
        error.detail,
        errors=error.errors,
        headers=error.headers,
        extra=error.extra,
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        source, parts = parts[0], parts[1:]
        if not parts:
            return "body" if source == "body" else source
    return ".".join(parts)


def field_errors_from_validation(
    exc: RequestValidationError, request: Request | None = None
) -> list[FieldError]:
    found: list[FieldError] = []
    for item in exc.errors():
        loc = tuple(item.get("loc", ()))
        message = str(item.get("msg", "invalid value"))
        # Pydantic prefixes custom errors with "Value error, "; the field already says it.
        message = message.removeprefix("Value error, ")
        code = str(item.get("type", "invalid"))
        if code == "extra_forbidden" and request is not None and loc:
            code, message = "unknown_field", unknown_field_message(request, loc)
        found.append(FieldError(_field_name(loc), code, message))
    return found


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_for(exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    for item in exc.errors():
        if tuple(item.get("loc", ())) == ("body",):
            whole = whole_body_problem(str(item.get("type")), item.get("input"))
            if whole is not None:
                return problem_response(422, "validation_failed", whole)
    errors = field_errors_from_validation(exc, request)
    broken = [error for error in errors if error.code == "json_invalid"]
    if broken:
        too_deep = any(error.message == TOO_DEEP for error in broken)
        return problem_response(400, "invalid_json", TOO_DEEP if too_deep else NOT_JSON)
    fields = ", ".join(sorted({error.field for error in errors}))
    unknown = sorted({error.field for error in errors if error.code == "unknown_field"})
    detail = (
        f"The request has unknown fields: {', '.join(unknown)}."
        if unknown and len(unknown) == len(errors)
        else f"The request has invalid fields: {fields}."
    )
    return problem_response(422, "validation_failed", detail, errors=errors)


def _allowed_methods(request: Request) -> str | None:
    """Every method some route at the request's path accepts, or None if none matches."""
    path = get_route_path(request.scope)
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        pattern = getattr(route, "path_regex", None)
        if route.methods and pattern is not None and pattern.match(path):
            methods.update(route.methods)
    return ", ".join(sorted(methods)) if methods else None


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _DEFAULT_CODES.get(status, "error")
    headers = dict(exc.headers or {})
    if status == 404:
        detail = f"There is nothing at {request.url.path}."
        prefixed = prefixed_path(request)
        if prefixed is not None:
            detail += f" Every API path starts with /api/v4: did you mean {prefixed}?"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}."
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    elif status == 400 and isinstance(exc.__cause__, RecursionError | ValueError):
        # FastAPI's own parsing of a JSON body failed other than by JSONDecodeError.
        too_deep = isinstance(exc.__cause__, RecursionError)
        return problem_response(400, "invalid_json", TOO_DEEP if too_deep else NOT_JSON)
    else:
        detail = str(exc.detail) if exc.detail else HTTPStatus(status).phrase
    return problem_response(status, code, detail, headers=headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    request_id = _request_id(request)
    log.error(
        "unhandled error on %s %s (request %s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    return problem_response(
        500,
        "internal_error",
        "Something went wrong on our side. Quote the request id when reporting it.",
        extra={"requestId": request_id},
        headers={"X-Request-ID": request_id} if request_id else None,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
