"""``allowedOrigins``: the sites allowed to frame a chat box (CSP ``frame-ancestors``).

An origin is ``https://host`` or ``https://host:port``, where the host may start
with ``*.`` for any subdomain (as CSP allows); plain ``http`` is accepted only for
``localhost``, ``127.0.0.1`` and ``[::1]`` (local development). Nothing else may
appear: no path, query, user or whitespace, so an origin can never add a directive
to the policy it is written into. Hosts are compared lower-case; internationalised
names must be given in their ``xn--`` form.
"""

from __future__ import annotations

import re

from tidings.core.errors import FieldError

MAX_ORIGINS = 10
_LABEL = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)"
_HOST = rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*"
_PORT = r"(?::(?:[1-9][0-9]{0,4}))?"
_HTTPS = re.compile(rf"^https://{_HOST}{_PORT}$")
_LOCAL_HTTP = re.compile(rf"^http://(?:localhost|127\.0\.0\.1|\[::1\]){_PORT}$")
_TRAILING_PORT = re.compile(r":([0-9]+)$")


def normalise_origin(value: str) -> str | None:
    """The origin in canonical form (lower case, no trailing slash), or None if invalid."""
    origin = value.strip().lower()
    if origin.endswith("/"):
        origin = origin[:-1]
    if len(origin) > 255:
        return None
    if not (_HTTPS.match(origin) or _LOCAL_HTTP.match(origin)):
        return None
    port = _TRAILING_PORT.search(origin)
    if port is not None and int(port.group(1)) > 65535:
        return None
    return origin


def check_origins(values: list[str]) -> tuple[tuple[str, ...], list[FieldError]]:
    """The normalised, de-duplicated origins, and one error per invalid entry."""
    origins: list[str] = []
    errors: list[FieldError] = []
    for index, value in enumerate(values):
        origin = normalise_origin(value)
        if origin is None:
            errors.append(
                FieldError(
                    f"allowedOrigins[{index}]",
                    "invalid_origin",
                    f"{value!r} is not an origin: use https://host[:port] (or "
                    "http://localhost, http://127.0.0.1 or http://[::1] for development), "
                    "with no path.",
                )
            )
        elif origin not in origins:
            origins.append(origin)
    return tuple(origins), errors


def frame_ancestors(origins: tuple[str, ...]) -> str:
    """The CSP directive: the given origins, or any site when none were given (the
    token in the URL is then what protects the chat)."""
    return "frame-ancestors " + (" ".join(origins) if origins else "*")
