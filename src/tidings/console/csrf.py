"""CSRF protection: every console form carries a token bound to its session.

The token is ``HMAC(key, session id)`` with a key derived from the deployment's
signing key (label :data:`KEY_LABEL`), so it needs no storage, changes with every
session and cannot be made without the key. A POST whose ``csrf`` field (or
``X-CSRF-Token`` header, for a script) is missing or wrong is refused with 403 before
the page's code runs: take the form as :data:`CheckedFormDep`.

The sign-in form has no session yet: it is bound instead to a random value in a
short-lived cookie set with the form (:data:`PRE_SESSION_COOKIE`), so another site
cannot sign a visitor in to an account of its choosing.

The session cookie is also ``SameSite=Strict``, so another site's form would arrive
without it anyway; the token is the second, independent guard.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from tidings.console.errors import CsrfRefused

KEY_LABEL = b"tidings console csrf v1"
FIELD = "csrf"
HEADER = "x-csrf-token"
PRE_SESSION_COOKIE = "tidings_console_form"
MAX_FIELDS = 200

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
EXPIRED = (
    "The form was sent without the token of your session (it may be from an older "
    "session, or from another site). Nothing was changed. Go back, reload the page "
    "and try again."
)


def csrf_token(key: bytes, binding: str) -> str:
    digest = hmac.new(key, binding.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_matches(key: bytes, binding: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_token(key, binding).encode(), presented.encode())


class Form(dict[str, str]):
    """A posted form's fields, the first value of each; :meth:`every` gives all the
    values of a name sent more than once (a group of checkboxes)."""

    def __init__(self) -> None:
        super().__init__()
        self._every: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        self.setdefault(name, value)
        self._every.setdefault(name, []).append(value)

    def every(self, name: str) -> list[str]:
        """Every value sent under ``name``, in the form's order (none: empty)."""
        return list(self._every.get(name, ()))


async def read_form(request: Request) -> Form:
    """The ``application/x-www-form-urlencoded`` body (the only kind console forms
    send); any other body reads as an empty form, which has no token."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM_MEDIA_TYPE:
        return Form()
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        return Form()
    form = Form()
    for name, value in pairs:
        form.add(name, value)
    return form


def presented_token(request: Request, form: Form) -> str | None:
    return form.get(FIELD) or request.headers.get(HEADER)


async def checked_form(request: Request) -> Form:
    """The form of a POST from a signed-in user, its token checked (else 403)."""
    # Imported here: the session module imports this one for the token.
    from tidings.console.session import current_user

    user = await current_user(request)
    form = await read_form(request)
    if not hmac.compare_digest(user.csrf.encode(), (presented_token(request, form) or "").encode()):
        raise CsrfRefused(EXPIRED)
    return form


CheckedFormDep = Annotated[Form, Depends(checked_form)]
