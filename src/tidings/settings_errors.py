"""Settings that do not validate, said as sentences naming the variable to fix.

pydantic's own report ("1 validation error for Settings / rate_limit.per_minute /
Input should be a valid integer ... [type=int_parsing, ...]") speaks of fields; an
operator sets environment variables (``TIDINGS_RATE_LIMIT__PER_MINUTE``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

PREFIX = "TIDINGS_"


def variable_name(loc: tuple[Any, ...]) -> str:
    """``("rate_limit", "per_minute")`` -> ``TIDINGS_RATE_LIMIT__PER_MINUTE``."""
    parts = [str(part) for part in loc if not isinstance(part, int)]
    return PREFIX + "__".join(part.upper() for part in parts) if parts else "the settings"


def _sentence(item: Any) -> str:
    message = str(item.get("msg", "is not valid"))
    message = message.removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    # The value is never repeated: it may be a secret (TIDINGS_JWT_SECRET, a key ring).
    return f"{variable_name(tuple(item.get('loc', ())))}: {message}."


def describe(error: ValidationError) -> list[str]:
    """One sentence per setting that is wrong."""
    return [_sentence(item) for item in error.errors(include_url=False)]


def is_settings_error(error: ValidationError) -> bool:
    return error.title == "Settings"
