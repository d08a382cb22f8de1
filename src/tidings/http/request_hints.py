"""Words for requests that went wrong in a first-contact way: a field the body's model
does not know (with the nearest known name), a body that is missing or not an object,
a path that forgot its ``/api/v4`` prefix.

The problem handlers (:mod:`tidings.http.problems`) call these; they only describe,
the status and code stay the handlers'.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel

from tidings.http.environment import get_route_path
from tidings.http.json_body import DOCUMENTED

API_PREFIX = "/api/v4"

_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}

# What other messaging APIs call the fields this one names otherwise; spelling
# mistakes are caught by closeness instead.
_SYNONYMS = {
    "text": "body",
    "message": "body",
    "content": "body",
    "msg": "body",
    "recipient": "to",
    "phone": "to",
    "number": "to",
    "destination": "to",
    "sender": "from",
    "originator": "from",
    "user": "username",
    "email": "username",
    "pass": "password",
}


def _body_model(request: Request) -> type[BaseModel] | None:
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    if field is not None:
        annotation = field.field_info.annotation
        return annotation if _is_model(annotation) else None
    # Bodies parsed by json_body are documented by reference to their model's name.
    extra = getattr(route, "openapi_extra", None) or {}
    content = extra.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = str(content.get("schema", {}).get("$ref", ""))
    for model in DOCUMENTED:
        if ref.endswith(f"/{model.__name__}"):
            return model
    return None


def _is_model(annotation: Any) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, BaseModel)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds (through Optional, list, dict), if any."""
    if _is_model(annotation):
        return typing.cast(type[BaseModel], annotation)
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _wire_names(model: type[BaseModel]) -> dict[str, str]:
    """Every name a field is accepted under, mapped to the name documented."""
    names: dict[str, str] = {}
    for name, field in model.model_fields.items():
        shown = field.alias or name
        names[shown] = shown
        names[name] = shown
    return names


def _field(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field.annotation
    return None


def _model_at(model: type[BaseModel] | None, path: Sequence[Any]) -> type[BaseModel] | None:
    for part in path:
        if model is None:
            return None
        if isinstance(part, int):
            continue  # an index into a list: the same model holds each item
        model = _model_in(_field(model, str(part)))
    return model


def unknown_field_message(request: Request, loc: Sequence[Any]) -> str:
    """What to say about the unknown field at ``loc`` (``("body", ..., name)``)."""
    name = str(loc[-1])
    model = _model_at(_body_model(request), list(loc[1:-1]))
    if model is None:
        return f"{name!r} is not a field of this request."
    known = _wire_names(model)
    synonym = _SYNONYMS.get(name.lower())
    close = [synonym] if synonym in known else []
    close = close or difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"{name!r} is not a field of this request; did you mean {known[close[0]]!r}?"
    listed = ", ".join(sorted(set(known.values())))
    return f"{name!r} is not a field of this request, which takes: {listed}."


def whole_body_problem(error_type: str, value: Any) -> str | None:
    """A sentence for a body that is missing or not a JSON object, else None."""
    if error_type == "missing":
        return "The request has no body: send a JSON object with this request's fields."
    if error_type in ("model_type", "model_attributes_type", "dict_type"):
        kind = _JSON_TYPES.get(type(value), "not an object")
        return f"The request body must be a JSON object ({{...}}), not {kind}."
    return None


def prefixed_path(request: Request) -> str | None:
    """The path with ``/api/v4`` added, when the unprefixed one matches no route but
    the prefixed one does (``POST /whatsapp/chats/1/message``, as the seed page wrote)."""
    route_path = get_route_path(request.scope)
    if route_path.startswith(API_PREFIX + "/") or route_path == API_PREFIX:
        return None
    candidate = API_PREFIX + route_path
    for route in iter_route_contexts(request.app.routes):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(candidate):
            full = request.url.path
            # Keep what the environment took off (a /sandbox prefix) in front.
            before = full[: len(full) - len(route_path)] if full.endswith(route_path) else ""
            return before + candidate
    return None
