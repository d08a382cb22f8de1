"""Who is calling, decided from the headers alone, before anything reads the body.

:class:`CallerResolver` turns the request's bearer token into a *verified* caller
(signed, unexpired, of this environment, not revoked, user enabled: the check
itself is given by the API layer) or into the :class:`Unauthorized` that says why
not, and leaves the verdict in the request's state. The rate limiter asks it
first, so only verified callers spend an account's allowance; the route's
authentication dependency finds the verdict there instead of checking again.

:class:`AuthenticationGate` then refuses a request for a route that needs a
caller when there is none, with the 401 the route would give, before the body
middleware reads a byte of the body: a 60 MB body without a token costs the
server its headers, not its body (issue 16).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.core.errors import Unauthorized
from tidings.http.environment import get_route_path
from tidings.http.problems import problem_for

NO_TOKEN = "Send 'Authorization: Bearer <token>'; get a token at /api/v4/auth/token."  # noqa: S105

_CALLER = "caller"


class Caller(Protocol):
    """What the rate limiter needs of a verified caller."""

    @property
    def account_id(self) -> str: ...


# Verifies a bearer token for the request, or raises Unauthorized.
CallerVerifier = Callable[[Scope, str], Awaitable[Caller]]
# A route that needs a caller: its path pattern (below the sandbox prefix), its methods,
# and the route itself (a refusal names it, as routing would, for the metrics).
ProtectedRoute = tuple[re.Pattern[str], frozenset[str], object]


def bearer_token(scope: Scope) -> str | None:
    """The ``Authorization: Bearer`` token; "" for another scheme, None without the header."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            header: str = value.decode("latin-1")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""
    return None


def verified_caller(scope: Scope) -> Caller | Unauthorized | None:
    """The resolver's verdict: the verified caller, why its token was refused, or
    None (no token, or the resolver did not run for this request)."""
    state = scope.get("state") or {}
    verdict: Caller | Unauthorized | None = state.get(_CALLER)
    return verdict


class CallerResolver:
    def __init__(self, verify: CallerVerifier) -> None:
        self._verify = verify

    async def __call__(self, scope: Scope) -> Caller | None:
        """The verified caller of the request (also kept in its state), or None."""
        token = bearer_token(scope)
        if not token:
            return None
        state = scope.setdefault("state", {})
        try:
            caller = await self._verify(scope, token)
        except Unauthorized as error:
            state[_CALLER] = error
            return None
        state[_CALLER] = caller
        return caller


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


class AuthenticationGate:
    """Answer 401 for a route that needs a caller, when the resolver found none,
    before the body is read. Runs inside the rate limiter, so each refusal still
    counts against the client's address."""

    def __init__(self, app: ASGIApp, *, protected: Sequence[ProtectedRoute]) -> None:
        self.app = app
        self._protected = tuple(protected)

    def _needs_caller(self, scope: Scope) -> object | None:
        """The route that needs a caller at this path and method, if any."""
        path = get_route_path(scope)
        method = scope["method"]
        for pattern, methods, route in self._protected:
            if method in methods and pattern.match(path):
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> Response | None:
        """The 401 to answer when the route needs a caller and there is none (the
        route named in the scope, for the metrics)."""
        verdict = verified_caller(scope)
        refused = verdict if isinstance(verdict, Unauthorized) else None
        route = self._needs_caller(scope) if verdict is None or refused is not None else None
        if route is None:
            return None
        scope["route"] = route
        response = problem_for(refused or Unauthorized(NO_TOKEN))
        if _has_body(scope):
            # The unread body is not worth keeping the connection for.
            response.headers["Connection"] = "close"
        return response
