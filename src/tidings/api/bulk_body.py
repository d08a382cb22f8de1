"""Parsing a large bulk request's body without holding the event loop.

pydantic's JSON parser validates 100,000 recipients in 0.5 to 0.8 s here, in
Rust, holding the GIL throughout: in a worker thread it would stall the event
loop just as long. A large body is parsed in a thread instead by ``json.loads``
with a Python hook per object (each call into Python lets the interpreter hand
the GIL to the loop's thread), and its recipients are validated a thousand at a
time (a few ms each). The answers are those of
:func:`tidings.http.json_body.parse_json_body`: 400 ``invalid_json`` for what is
not JSON (or is nested too deeply), 422 naming each invalid field. Small bodies,
most requests, take that function's own path.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from tidings.bulk.schemas import BulkCommon, BulkRecipient
from tidings.http.json_body import parse_json_body

M = TypeVar("M", bound=BulkCommon)

# Below this size the fast parser's stall is a few ms at most.
LARGE_BODY = 256 * 1024
# Recipients validated per call: a few ms with the GIL held.
CHUNK = 1_000
# As deep as a request's JSON may go (the recipients are flat).
MAX_DEPTH = 200

_RECIPIENTS: TypeAdapter[list[BulkRecipient]] = TypeAdapter(list[BulkRecipient])


def bulk_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency giving the request's body as ``model`` (pair it with
    ``openapi_extra=documented_body(model)``)."""

    async def dependency(request: Request) -> M:
        raw = await request.body()
        if len(raw) < LARGE_BODY:
            return parse_json_body(model, raw)
        return await asyncio.to_thread(parse_large_body, model, raw)

    return dependency


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A Python function, not ``dict`` itself: calling it lets the GIL change hands.
    return dict(pairs)


def _not_json(message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": message}])


def _too_deep(value: Any, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return True
    if isinstance(value, dict):
        return any(_too_deep(item, depth + 1) for item in value.values())
    if isinstance(value, list):
        return any(_too_deep(item, depth + 1) for item in value)
    return False


def _errors(error: ValidationError, *prefix: str) -> list[dict[str, Any]]:
    return [
        {**item, "loc": ("body", *prefix, *item["loc"])} for item in error.errors(include_url=False)
    ]


def _recipient_errors(error: ValidationError, start: int) -> list[dict[str, Any]]:
    """The errors of a chunk of recipients, at their index in the whole list."""
    return [
        {**item, "loc": ("body", "recipients", start + int(item["loc"][0]), *item["loc"][1:])}
        for item in error.errors(include_url=False)
    ]


def parse_large_body(model: type[M], raw: bytes) -> M:
    """``raw`` as ``model``, or the RequestValidationError FastAPI would raise; run
    it in a worker thread."""
    try:
        decoded = json.loads(raw, object_pairs_hook=_object)
    except RecursionError:
        raise _not_json("The JSON is nested too deeply.") from None
    except ValueError:
        raise _not_json("JSON decode error") from None
    recipients = decoded.pop("recipients", None) if isinstance(decoded, dict) else None
    if _too_deep(decoded):
        raise _not_json("The JSON is nested too deeply.")
    errors: list[dict[str, Any]] = []
    checked: list[BulkRecipient] | None = None
    if isinstance(recipients, list):
        checked = []
        for start in range(0, len(recipients), CHUNK):
            try:
                checked.extend(_RECIPIENTS.validate_python(recipients[start : start + CHUNK]))
            except ValidationError as error:
                errors.extend(_recipient_errors(error, start))
    elif recipients is not None:
        assert isinstance(decoded, dict)
        decoded["recipients"] = recipients
    if checked is not None:
        assert isinstance(decoded, dict)
        decoded["recipients"] = [] if errors else checked
    try:
        parsed = model.model_validate(decoded)
    except ValidationError as error:
        errors = _errors(error) + errors
    if errors:
        raise RequestValidationError(errors)
    return parsed
