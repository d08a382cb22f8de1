"""JSON answers written by pydantic's serializer, byte for byte as starlette's
:class:`~starlette.responses.JSONResponse` writes them.

``JSONResponse`` renders with ``json.dumps`` (compact, ``ensure_ascii=False``,
``allow_nan=False``): about 9 us for a message's answer, where pydantic-core's
``to_json`` takes under 2. The two write the same bytes for plain JSON values (text,
whole numbers, booleans, null, lists, objects with text keys; tests hold them equal)
except for floats below 1e-4 or from 1e16 on (``1e-05`` against ``0.00001``) and
what ``json.dumps`` refuses. :class:`PlainJSONResponse` checks its content first and
leaves anything else to ``JSONResponse`` itself, so every answer stays as it was.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticSerializationError, to_json
from starlette.responses import JSONResponse

_SIMPLE = frozenset((str, bool, int, type(None)))


def _plain(value: Any) -> bool:
    """Whether ``to_json`` writes ``value`` as ``json.dumps`` does."""
    kind = type(value)
    if kind in _SIMPLE:
        return True
    if kind is float:
        number: float = value
        return number == 0.0 or 1e-4 <= abs(number) < 1e16
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (type(item) not in _SIMPLE and not _plain(item)):
                return False
        return True
    if kind is list:
        return all(type(item) in _SIMPLE or _plain(item) for item in value)
    return False


class PlainJSONResponse(JSONResponse):
    """A ``JSONResponse`` (the same headers and bytes), rendered faster when it can be."""

    def render(self, content: Any) -> bytes:
        if _plain(content):
            try:
                return to_json(content)
            except PydanticSerializationError:  # a lone surrogate: json.dumps's error
                pass
        return super().render(content)
