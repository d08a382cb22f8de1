"""Request bodies parsed by pydantic's own JSON parser, for the large ones.

FastAPI decodes a body with ``json.loads`` and then validates the Python
objects; for a bulk request of 100,000 recipients that costs about 0.9 s here,
against 0.3 s for :meth:`~pydantic.BaseModel.model_validate_json`, which
validates while it parses. :func:`json_body` is a dependency doing the latter,
with the same answers as FastAPI's own body handling (422 ``validation_failed``
naming the fields, 400 ``invalid_json``); :func:`documented_body` puts the
model in the OpenAPI document as FastAPI would.

pydantic's parser refuses an unpaired UTF-16 surrogate escape (``"\\ud800"``)
as invalid JSON, while JSON itself allows it; a body it refuses takes the slow
path (``json.loads``, then validation: truly invalid JSON is answered 400 from
there), and the model is marked so that the code
using it checks its free-text values (a bulk request rejects just the
recipient holding one).

Nesting has a limit: pydantic's parser refuses JSON nested more than
:data:`MAX_DEPTH` levels deep, and Python's ``json`` gives up with a
RecursionError about a thousand levels down. Either way the answer is 400
``invalid_json`` (:data:`TOO_DEEP` says why), never a 500: see
:func:`json_verdict`, used on bodies whose label had to be guessed, and the
problem handlers for the bodies FastAPI parses itself.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, PrivateAttr, ValidationError
from pydantic.json_schema import models_json_schema
from pydantic_core import from_json

M = TypeVar("M", bound=BaseModel)

REF_TEMPLATE = "#/components/schemas/{model}"

# pydantic's parser (jiter) refuses deeper nesting; fixed in its code.
MAX_DEPTH = 200
TOO_DEEP = f"The request body is nested more than {MAX_DEPTH} levels deep."

# Models whose schema the OpenAPI document must carry though no route declares
# them as a FastAPI body: see tidings.docs_site.openapi.
DOCUMENTED: list[type[BaseModel]] = []


class SurrogateAware(BaseModel):
    """A model parsed by :func:`json_body` tells whether its text may hold an
    unpaired surrogate (only when the fast parser refused the body for one);
    built any other way, it may."""

    _lone_surrogates_possible: bool = PrivateAttr(default=True)

    @property
    def lone_surrogates_possible(self) -> bool:
        return self._lone_surrogates_possible


def _body_errors(error: ValidationError) -> list[dict[str, Any]]:
    return [{**item, "loc": ("body", *item["loc"])} for item in error.errors(include_url=False)]


def _not_parsed(error: ValidationError) -> bool:
    # pydantic words a refused surrogate in more than one way ("lone leading
    # surrogate", "unexpected end of hex escape"): any refusal is retried.
    return any(item["type"] == "json_invalid" for item in error.errors(include_url=False))


def _too_deep(error: ValueError) -> bool:
    return "recursion limit exceeded" in str(error)


def _too_deep_error() -> RequestValidationError:
    return RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": TOO_DEEP}])


def json_verdict(raw: bytes) -> Literal["json", "not_json", "too_deep"]:
    """Whether ``raw`` is JSON, with the depth limit (for a body whose label had
    to be guessed: a parse error there means "not JSON", not "broken JSON")."""
    try:
        from_json(raw)
    except ValueError as error:
        if _too_deep(error):
            return "too_deep"
        try:  # a lone surrogate, refused by pydantic, allowed by JSON
            json.loads(raw)
        except RecursionError:
            return "too_deep"
        except ValueError:
            return "not_json"
    return "json"


def parse_json_body(model: type[M], raw: bytes) -> M:
    """``raw`` as ``model``, or the RequestValidationError FastAPI would raise."""
    if not raw.strip():
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        parsed = model.model_validate_json(raw)
    except ValidationError as error:
        if _too_deep(error):
            raise _too_deep_error() from None
        if not _not_parsed(error):
            raise RequestValidationError(_body_errors(error)) from None
        return _parse_slowly(model, raw)
    if isinstance(parsed, SurrogateAware):
        parsed._lone_surrogates_possible = False
    return parsed


def _parse_slowly(model: type[M], raw: bytes) -> M:
    try:
        decoded = json.loads(raw)
    except RecursionError:
        raise _too_deep_error() from None
    except ValueError:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error"}]
        ) from None
    try:
        return model.model_validate(decoded)
    except ValidationError as error:
        raise RequestValidationError(_body_errors(error)) from None


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency giving the request's body as ``model``; pair it with
    ``openapi_extra=documented_body(model)``."""

    async def dependency(request: Request) -> M:
        return parse_json_body(model, await request.body())

    return dependency


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose body :func:`json_body` parses."""
    if model not in DOCUMENTED:
        DOCUMENTED.append(model)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}
            },
        }
    }


def documented_schemas() -> dict[str, Any]:
    """The component schemas of every model given to :func:`documented_body`."""
    if not DOCUMENTED:
        return {}
    _, schema = models_json_schema(
        [(model, "validation") for model in DOCUMENTED], ref_template=REF_TEMPLATE
    )
    definitions: dict[str, Any] = schema.get("$defs", {})
    return definitions
