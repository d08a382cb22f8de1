"""Per-account request rate limits with ``RateLimit-*`` headers on every answer.

A request from a verified caller (see :mod:`tidings.http.callers`: a live token of
this environment) counts against its account (per environment, so sandbox tests
never eat production's allowance); any other request, a revoked or foreign token
included, counts against its client address, with a lower limit. Past the limit:
429 ``rate_limited`` with ``Retry-After``. ``RateLimit-Reset`` is in seconds from
now (the IETF draft's delta form).

Tracking pixels, tracked links and one-click unsubscribes (``/t/``) are fetched by
mailbox providers from a few addresses (Gmail's image proxy, RFC 8058 POSTs), and
their signed token is the guard: they are not counted per address but against one
generous ceiling for the whole server (``tracking_per_minute``).

A chat-box token (in the ``Authorization`` header of the box's API calls, or the
``token`` query parameter of its page and stream) counts against the account that
made it, so many chat boxes behind one office's address do not share that
address's anonymous allowance. The web console's session cookie does the same for
the console's pages (which refresh themselves while a message or batch is
unfinished); its stylesheet and script are not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.core.windows import WindowCounter, WindowReading
from tidings.http.callers import CallerResolver, bearer_token
from tidings.http.environment import environment_of, get_route_path
from tidings.http.problems import problem_response
from tidings.settings import RateLimitSettings

# Networks' webhooks (/inbound/) come from a few addresses of theirs (Meta's) and
# carry their own proof (a signature); refusing them would only make them retry.
UNCOUNTED_PREFIXES = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs/assets/",
    "/widget/static/",
    "/console/static/",
    "/inbound/",
)
WIDGET_PREFIX = "/widget/"
CONSOLE_PREFIX = "/console"
TRACKING_PREFIX = "/t/"
# The counter key of the server-wide tracking ceiling.
TRACKING_KEY = "tracking"

# The account of a valid chat-box token, or None.
WidgetAccount = Callable[[str], str | None]
# The account of a request's valid console session cookie, or None.
SessionAccount = Callable[[Scope], str | None]


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: RateLimitSettings,
        counter: WindowCounter,
        callers: CallerResolver,
        widget_account: WidgetAccount | None = None,
        session_account: SessionAccount | None = None,
    ) -> None:
        self.app = app
        self._settings = settings
        self._counter = counter
        self._callers = callers
        self._widget_account = widget_account
        self._session_account = session_account

    async def _key_and_limit(self, scope: Scope, route_path: str) -> tuple[str, int]:
        if route_path.startswith(TRACKING_PREFIX):
            return TRACKING_KEY, self._settings.tracking_per_minute
        if self._widget_account is not None and route_path.startswith(WIDGET_PREFIX):
            widget_token = bearer_token(scope) or _query_token(scope)
            account = self._widget_account(widget_token) if widget_token else None
            if account is not None:
                environment = environment_of(scope).value
                return f"acct:{account}:{environment}", self._settings.per_minute
        if self._session_account is not None and route_path.startswith(CONSOLE_PREFIX):
            account = self._session_account(scope)
            if account is not None:
                environment = environment_of(scope).value
                return f"acct:{account}:{environment}", self._settings.per_minute
        caller = await self._callers(scope)
        if caller is not None:
            environment = environment_of(scope).value
            return f"acct:{caller.account_id}:{environment}", self._settings.per_minute
        client = scope.get("client")
        address = client[0] if client else "unknown"
        return f"addr:{address}", self._settings.anonymous_per_minute

    async def admit(self, scope: Scope) -> tuple[list[tuple[bytes, bytes]], Response | None]:
        """Count the request: the ``RateLimit-*`` headers of its answer (raw), and the
        429 to answer instead when it is over its limit."""
        route_path = get_route_path(scope)
        key, limit = await self._key_and_limit(scope, route_path)
        uncounted = route_path.startswith(UNCOUNTED_PREFIXES)
        reading = self._counter.peek(key, limit) if uncounted else self._counter.hit(key, limit)
        raw = _raw_headers(reading)
        # Health checks and docs assets are never refused, whatever the caller spent.
        if reading.exceeded and not uncounted:
            headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
            return raw, problem_response(
                429,
                "rate_limited",
                f"More than {limit} requests in {self._settings.window_seconds} s; "
                f"retry in {reading.reset_seconds} s.",
                headers={**headers, "Retry-After": str(reading.reset_seconds)},
            )
        return raw, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw, refusal = await self.admit(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                set_raw_headers(message, raw, RATE_NAMES)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def set_raw_headers(
    message: Message, raw: list[tuple[bytes, bytes]], names: frozenset[bytes] | None = None
) -> None:
    """Set each of ``raw`` (lower-case names) on a response's start message as
    ``MutableHeaders(scope=message)[name] = value`` does: an earlier header of the name
    is replaced where it stands (its repeats dropped), else the header is added at the
    end. ``names``: those of ``raw``, when the caller knows them."""
    headers: list[tuple[bytes, bytes]] = list(message["headers"])
    message["headers"] = headers
    names = names or frozenset(name for name, _ in raw)
    if not any(name in names for name, _ in headers):
        headers.extend(raw)
        return
    for set_name, set_value in raw:
        found = [index for index, (name, _) in enumerate(headers) if name == set_name]
        for index in reversed(found[1:]):
            del headers[index]
        if found:
            headers[found[0]] = (set_name, set_value)
        else:
            headers.append((set_name, set_value))


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


RATE_NAMES = frozenset((b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset"))


def _raw_headers(reading: WindowReading) -> list[tuple[bytes, bytes]]:
    return [
        (b"ratelimit-limit", str(reading.limit).encode("latin-1")),
        (b"ratelimit-remaining", str(reading.remaining).encode("latin-1")),
        (b"ratelimit-reset", str(reading.reset_seconds).encode("latin-1")),
    ]
