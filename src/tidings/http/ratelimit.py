"""Per-account request rate limits with ``RateLimit-*`` headers on every answer.

A request with a valid bearer token counts against its account (per environment,
so sandbox tests never eat production's allowance); any other request counts
against its client address, with a lower limit. Past the limit: 429
``rate_limited`` with ``Retry-After``. ``RateLimit-Reset`` is in seconds from now
(the IETF draft's delta form).

The token is decoded here once; the claims (or the reason they are bad) are left
in the request state for the authentication dependency, which still checks
revocation and the environment. A chat-box token (in the ``Authorization``
header of the box's API calls, or the ``token`` query parameter of its page and
stream) counts against the account that made it, so many chat boxes behind one
office's address do not share that address's anonymous allowance.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.auth.tokens import TokenCodec
from tidings.core.errors import Unauthorized
from tidings.core.windows import FixedWindowCounter, WindowReading
from tidings.http.environment import environment_of, get_route_path
from tidings.http.problems import problem_response
from tidings.settings import RateLimitSettings

UNCOUNTED_PREFIXES = ("/healthz", "/readyz", "/metrics", "/docs/assets/", "/widget/static/")
WIDGET_PREFIX = "/widget/"

# The account of a valid chat-box token, or None.
WidgetAccount = Callable[[str], str | None]


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            header: str = value.decode("latin-1")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""
    return None


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: RateLimitSettings,
        counter: FixedWindowCounter,
        tokens: TokenCodec,
        widget_account: WidgetAccount | None = None,
    ) -> None:
        self.app = app
        self._settings = settings
        self._counter = counter
        self._tokens = tokens
        self._widget_account = widget_account

    def _key_and_limit(self, scope: Scope) -> tuple[str, int]:
        state = scope.setdefault("state", {})
        token = bearer_token(scope)
        if self._widget_account is not None and get_route_path(scope).startswith(WIDGET_PREFIX):
            widget_token = token or _query_token(scope)
            account = self._widget_account(widget_token) if widget_token else None
            if account is not None:
                environment = environment_of(scope).value
                return f"acct:{account}:{environment}", self._settings.per_minute
        if token:
            try:
                claims = self._tokens.decode(token)
            except Unauthorized as error:
                state["token_error"] = error
            else:
                state["token_claims"] = claims
                environment = environment_of(scope).value
                return f"acct:{claims.account_id}:{environment}", self._settings.per_minute
        client = scope.get("client")
        address = client[0] if client else "unknown"
        return f"addr:{address}", self._settings.anonymous_per_minute

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key, limit = self._key_and_limit(scope)
        uncounted = get_route_path(scope).startswith(UNCOUNTED_PREFIXES)
        reading = self._counter.peek(key, limit) if uncounted else self._counter.hit(key, limit)
        headers = _headers(reading)
        # Health checks and docs assets are never refused, whatever the caller spent.
        if reading.exceeded and not uncounted:
            response = problem_response(
                429,
                "rate_limited",
                f"More than {limit} requests in {self._settings.window_seconds} s; "
                f"retry in {reading.reset_seconds} s.",
                headers={**headers, "Retry-After": str(reading.reset_seconds)},
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                mutable = MutableHeaders(scope=message)
                for name, value in headers.items():
                    mutable[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


def _headers(reading: WindowReading) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(reading.limit),
        "RateLimit-Remaining": str(reading.remaining),
        "RateLimit-Reset": str(reading.reset_seconds),
    }
