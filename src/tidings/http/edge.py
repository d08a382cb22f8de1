"""The application's own middleware as one ASGI layer.

Tidings checks each request in ten steps, each its own middleware (outermost first):
request id, metrics, transport security, environment, rate limit, authentication
gate, body, phone reading, unexpected errors, console headers. Stacked, every request
went through ten coroutines and every answer's messages through five ``send``
wrappers, each with its own look at the scope; on a single send that was tens of
microseconds of CPU before any of the checks' own work.

:class:`EdgeMiddleware` is given those layers (as ``Middleware`` entries, outermost
first) and builds them as before, then answers an HTTP request by calling each
layer's own steps in the same order from one coroutine, with one ``send`` wrapper
that changes an answer's start as the layers' wrappers did, in their order: the
console's headers, the ``RateLimit-*`` headers, HSTS, the status for the metrics,
``X-Request-ID``. Each refusal (403, 429, 401, 413, 415, 500) gets what the layers
outside the one refusing would have added, and no more. Other scopes (websocket,
lifespan), and any list of layers other than the one it knows, go through the
stacked layers themselves.

:meth:`EdgeMiddleware.serve_direct` is the same path entered from the application's
entry for the hot send routes, which it hands to their handler directly
(:mod:`tidings.http.shortcut`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.channels.phone import reading_country
from tidings.channels.phone_reading import PhoneReadingMiddleware
from tidings.console.headers import ConsoleHeadersMiddleware, add_headers, headers_for
from tidings.http.body import BodyMiddleware
from tidings.http.callers import AuthenticationGate
from tidings.http.environment import EnvironmentMiddleware, get_route_path
from tidings.http.metrics import MetricsMiddleware, route_template
from tidings.http.ratelimit import RATE_NAMES, RateLimitMiddleware, set_raw_headers
from tidings.http.request_id import RequestIdMiddleware, assign_request_id
from tidings.http.transport import TransportSecurityMiddleware, log
from tidings.http.unexpected import UnexpectedErrorMiddleware, internal_error, log_unexpected

if TYPE_CHECKING:
    from tidings.http.shortcut import DirectTarget

# The application's handler of unexpected exceptions, as ServerErrorMiddleware calls it.
ServerErrorHandler = Callable[[Request, Exception], Awaitable[Response]]

# The layers the one-coroutine path knows, outermost first.
LAYERS: tuple[type, ...] = (
    RequestIdMiddleware,
    MetricsMiddleware,
    TransportSecurityMiddleware,
    EnvironmentMiddleware,
    RateLimitMiddleware,
    AuthenticationGate,
    BodyMiddleware,
    PhoneReadingMiddleware,
    UnexpectedErrorMiddleware,
    ConsoleHeadersMiddleware,
)
_X_REQUEST_ID = b"x-request-id"


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, layers: Sequence[Middleware]) -> None:
        self.app = app
        stacked = app
        for layer in reversed(layers):
            stacked = layer.cls(stacked, *layer.args, **layer.kwargs)
        # The layers as built: websockets and lifespan go through them.
        self.stacked = stacked
        built: list[Any] = []
        current: Any = stacked
        while current is not app:
            built.append(current)
            current = current.app
        self._direct = tuple(type(layer) for layer in built) == LAYERS
        if not self._direct:
            return
        (
            _,
            metrics,
            self._transport,
            self._environment,
            self._rate_limit,
            self._gate,
            self._body,
            self._phone,
            _,
            _,
        ) = built
        self._metrics = metrics._metrics
        self._hsts: tuple[bytes, bytes] = self._transport._hsts
        self._hsts_name = self._hsts[0]

    @property
    def direct(self) -> bool:
        """Whether HTTP requests are answered by the one-coroutine path."""
        return self._direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._direct:
            await self.stacked(scope, receive, send)
            return
        await self._serve(scope, receive, send, None, None)

    async def serve_direct(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        target: DirectTarget,
        server_error: ServerErrorHandler,
    ) -> None:
        """Answer an HTTP request called from the application's entry, past the
        layers outside this one (:mod:`tidings.http.shortcut`): the same steps, then
        ``target`` when the request reached its route's path (else the layers inside,
        as ever); an exception escaping goes to ``server_error`` (its answer sent
        unless one started) and is raised again, as ``ServerErrorMiddleware`` does."""
        await self._serve(scope, receive, send, target, server_error)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        target: DirectTarget | None,
        server_error: ServerErrorHandler | None,
    ) -> None:
        request_id = assign_request_id(scope)
        request_id_raw = request_id.encode("latin-1")
        started = time.perf_counter()
        status = 500
        # What the answer's start gets, set as the request passes each layer.
        rate_headers: list[tuple[bytes, bytes]] | None = None
        hsts = False
        console: dict[str, str] | None = None
        answered = False  # an answer started

        async def send_on(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                if console is not None:
                    add_headers(message, console)
                answered = True
                if rate_headers is not None:
                    set_raw_headers(message, rate_headers, RATE_NAMES)
                if hsts:
                    headers = list(message.get("headers", ()))
                    # A route that sets its own policy (e.g. max-age=0) wins.
                    if not any(name.lower() == self._hsts_name for name, _ in headers):
                        headers.append(self._hsts)
                    message["headers"] = headers
                status = message["status"]
                _set_request_id(message, request_id_raw)
            await send(message)

        try:
            try:
                transport = self._transport
                secure, allowed = transport._resolve(scope)
                if not allowed and scope["path"] not in transport._open_paths:
                    log.debug("refused plain %s from %s", "http", scope.get("client"))
                    await transport._refuse_http(scope, receive, send_on)
                    return
                hsts = secure
                self._environment.apply(scope)
                rate_headers_now, refusal = await self._rate_limit.admit(scope)
                if refusal is not None:
                    await refusal(scope, receive, send_on)
                    return
                rate_headers = rate_headers_now
                refusal = self._gate.refusal(scope)
                if refusal is not None:
                    await refusal(scope, receive, send_on)
                    return
                replay, refused = await self._body.take(scope, receive)
                if refused is not None:
                    await refused(scope, receive, send_on)
                    return
                if replay is None:  # the client went away
                    return
                with reading_country(await self._phone.country_for(scope)):
                    route_path = get_route_path(scope)
                    console = headers_for(route_path)
                    inner = self.app
                    if target is not None and route_path == target.path:
                        inner = target
                    try:
                        await inner(scope, replay, send_on)
                    except Exception:
                        log_unexpected(scope)
                        if answered:
                            raise
                        # Answered outside the console's headers: a problem, not a page.
                        console = None
                        await internal_error(scope)(scope, receive, send_on)
            finally:
                self._metrics.record(
                    route_template(scope), scope["method"], status, time.perf_counter() - started
                )
        except Exception as exc:
            # From the application's entry: what ServerErrorMiddleware does outside.
            if server_error is None:
                raise
            # Called even when an answer started (it logs), answering only if none did.
            response = await server_error(Request(scope), exc)
            if not answered:
                await response(scope, receive, send)
            raise


def _set_request_id(message: Message, value: bytes) -> None:
    """``MutableHeaders(scope=message)["X-Request-ID"] = value``, as the request id's
    own middleware sets it."""
    headers: list[tuple[bytes, bytes]] = list(message["headers"])
    message["headers"] = headers
    found = [index for index, (name, _) in enumerate(headers) if name == _X_REQUEST_ID]
    for index in reversed(found[1:]):
        del headers[index]
    if found:
        headers[found[0]] = (_X_REQUEST_ID, value)
    else:
        headers.append((_X_REQUEST_ID, value))
