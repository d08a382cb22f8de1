"""The base of every request and answer body: camelCase on the wire.

Request bodies are :class:`ApiRequest`: a field the model does not know answers 422
naming it (as Stripe does), so a typo (``"text"`` for ``"body"``) is reported as what
it is rather than as a missing field. Every field the v4 contract and its quick-start
examples send is known (tests/firstcontact/test_request_bodies.py holds them), so
contract clients are unaffected. Answer models keep ignoring extra keys: they are
built from stored rows, which may carry more.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(value: Any) -> bool:
    """Whether text (or text in a list or dict) holds an unpaired UTF-16 surrogate."""
    return _has_lone_surrogate(value)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, list | tuple):
        if value and isinstance(value[0], BaseModel):
            # Models check their own fields (or, like bulk recipients, are checked
            # where they are used): a list of 100,000 is not walked twice.
            return False
        return any(_has_lone_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    return False


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _no_lone_surrogates(cls, value: Any) -> Any:
        # JSON may carry "\ud800"; no channel can encode it, so refuse it up front.
        if _has_lone_surrogate(value):
            raise ValueError("text contains an unpaired UTF-16 surrogate")
        return value


class ApiRequest(ApiModel):
    """A request body (or a part of one): unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
