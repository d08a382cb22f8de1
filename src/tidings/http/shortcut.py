"""The hot send routes answered from the application's entry, past FastAPI's layers.

A request to ``POST /api/v4/sms/send`` went through FastAPI's ``__call__`` (with its
telemetry check), Starlette's, ``ServerErrorMiddleware``, ``ExceptionTelemetry
Middleware``, ``AppBodyLimitMiddleware``, then Tidings' own checks (one layer,
:class:`~tidings.http.edge.EdgeMiddleware`), then ``ExceptionMiddleware``,
``AsyncExitStackMiddleware``, the router (which matched the included routers' routes
twice over) and ``request_response``, before the route's handler; each message of the
answer passed four ``send`` wrappers. For a send that was 30-40 us of CPU.

:class:`TidingsAPI` is a FastAPI application that answers the exact method and path
of each :class:`~tidings.api.direct_route.DirectRoute` it can call directly (in both
environments) from its entry: Tidings' checks as ever (the edge layer's own steps),
then the handler, with what those layers would have done and no more:

- the scope's keys that Tidings and Starlette's request read (``app``, ``router``,
  ``route``, ``endpoint``, ``path_params``, ``starlette.exception_handlers``);
- an exception from the handler goes to the application's exception handlers as
  ``ExceptionMiddleware`` would give it (problem+json for ``HTTPException``, request
  validation errors, Tidings' own problems); any other to the edge's 500 problem;
- an exception escaping the edge goes to the application's 500 handler, as
  ``ServerErrorMiddleware`` would give it, and is raised again.

The shortcut is taken only where those layers do nothing else: FastAPI's own
telemetry off, no body size limit of FastAPI's (application, inclusion or route), no
``root_path`` set on the application, no debug pages, the middleware stack as
:func:`create_app <tidings.app.create_app>` builds it, and no route before the hot
one that could match the same method and path. Anything else, and every other
request (404 and 405 included), goes through FastAPI as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Host
from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.api.direct_route import DirectRoute, plan
from tidings.core.environments import SANDBOX_PREFIX
from tidings.http.edge import EdgeMiddleware, ServerErrorHandler

if TYPE_CHECKING:
    from fastapi.routing import RouteContext

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
# Where FastAPI keeps a request's telemetry (ExceptionTelemetryMiddleware reads it).
_FASTAPI_TELEMETRY = "fastapi.telemetry"
ErrorHandler = Callable[[Request, Exception], Coroutine[Any, Any, Response | None]]
# ExceptionMiddleware's handlers: by exception class, and by HTTPException status.
ExceptionHandlers = tuple[Mapping[Any, Any], Mapping[int, Any]]


class DirectTarget:
    """One hot route: its handler called as ``request_response`` inside
    ``ExceptionMiddleware`` would call it, with the scope's keys the router sets."""

    def __init__(self, route: DirectRoute, router: ASGIApp, handlers: ExceptionHandlers) -> None:
        self.route = route
        self.path = route.path
        self._endpoint = route.endpoint
        self._handler: Handler = route.get_route_handler()
        self._router = router
        self._handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["starlette.exception_handlers"] = self._handlers
        if "router" not in scope:
            scope["router"] = self._router
        scope["endpoint"] = self._endpoint
        scope["path_params"] = {}
        scope["route"] = self.route
        started = False

        async def sender(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        request = Request(scope, receive, sender)
        try:
            response = await self._handler(request)
            await response(scope, receive, sender)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            if started:
                raise RuntimeError(
                    "Caught handled exception, but response already started."
                ) from exc
            answer = await handler(request, exc)
            if answer is not None:
                await answer(scope, receive, sender)
            # As Starlette does: a reused exception would gather tracebacks.
            exc.__traceback__ = None

    def _handler_for(self, exc: Exception) -> ErrorHandler | None:
        by_class, by_status = self._handlers
        if isinstance(exc, HTTPException):
            found = by_status.get(exc.status_code)
            if found is not None:
                return found  # type: ignore[no-any-return]
        for cls in type(exc).__mro__:
            if cls in by_class:
                return by_class[cls]  # type: ignore[no-any-return]
        return None


class TidingsAPI(FastAPI):
    """A FastAPI application answering its hot direct routes from its entry (see the
    module's docstring). ``direct_dispatch = False`` sends every request through
    FastAPI's layers (the tests compare the two)."""

    direct_dispatch = True
    _edge: EdgeMiddleware | None = None
    _server_error: ServerErrorHandler | None = None
    _targets: dict[tuple[str, str], DirectTarget] | None = None
    _targets_for = -1  # the number of top-level routes the targets were found among

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        self._edge, self._server_error, self._targets = None, None, None
        found = _known_stack(self, stack)
        if found is not None:
            self._edge, self._server_error = found
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._target_for(scope) if scope["type"] == "http" else None
        if target is None:
            await super().__call__(scope, receive, send)
            return
        assert self._edge is not None and self._server_error is not None
        scope["app"] = self
        await self._edge.serve_direct(scope, receive, send, target, self._server_error)

    def _target_for(self, scope: Scope) -> DirectTarget | None:
        if self._edge is None or not self.direct_dispatch or not self._edge.direct:
            return None
        if self._targets is None or self._targets_for != len(self.router.routes):
            self._targets_for = len(self.router.routes)
            self._targets = direct_targets(self, self._edge)
        target = self._targets.get((scope["method"], scope["path"]))
        if (
            target is None
            or scope.get("root_path")
            or MAX_BODY_SIZE_SCOPE_KEY in scope
            or _FASTAPI_TELEMETRY in scope  # followed by an application outside
            or _native_telemetry_enabled(self)
        ):
            return None
        return target


def _native_telemetry_enabled(app: FastAPI) -> bool:
    """Whether FastAPI's own telemetry follows this request (then FastAPI's layers
    must see it: they name the route in its span).

    FastAPI-private: ``FastAPI.__call__`` asks ``app._native_telemetry.enabled()``
    (FastAPI 0.165); tests/http/test_shortcut.py fails if that changes. Unknown, it
    counts as on, and the request takes FastAPI's way."""
    telemetry = getattr(app, "_native_telemetry", None)
    enabled = getattr(telemetry, "enabled", None)
    return True if enabled is None else bool(enabled())


def _exception_handlers(middleware: ExceptionMiddleware) -> ExceptionHandlers:
    """The handlers ``ExceptionMiddleware`` puts in the scope for the routes.

    Starlette-private: its ``_exception_handlers`` and ``_status_handlers``
    (Starlette 1.10); tests/http/test_shortcut.py fails if they change."""
    return middleware._exception_handlers, middleware._status_handlers


# The layers of FastAPI's stack (0.165) with the edge layer among them, outermost
# first, by name: FastAPI's own modules for the second and third are private. With
# any other list (another FastAPI, more middleware) the shortcut is not taken.
KNOWN_LAYERS = (
    "ServerErrorMiddleware",
    "ExceptionTelemetryMiddleware",
    "AppBodyLimitMiddleware",
    "EdgeMiddleware",
    "ExceptionMiddleware",
    "AsyncExitStackMiddleware",
)


def _known_stack(app: FastAPI, stack: ASGIApp) -> tuple[EdgeMiddleware, ServerErrorHandler] | None:
    """The edge layer and the 500 handler, when the stack is FastAPI's layers around
    the edge layer and nothing else, none of them doing more than passing on."""
    layers: list[Any] = []
    current: Any = stack
    while current is not app.router and len(layers) < len(KNOWN_LAYERS):
        layers.append(current)
        current = getattr(current, "app", None)
    if current is not app.router or tuple(type(layer).__name__ for layer in layers) != (
        KNOWN_LAYERS
    ):
        return None
    server_error, _, body_limit, edge, exceptions, _ = layers
    if (
        not isinstance(server_error, ServerErrorMiddleware)
        or not isinstance(edge, EdgeMiddleware)
        or not isinstance(exceptions, ExceptionMiddleware)
        or server_error.debug
        or not inspect.iscoroutinefunction(server_error.handler)
        or app.max_body_size is not None
        or body_limit.app is not edge  # a body limit's own layers between them
        or app.root_path
        or not edge.direct
        or app.router.middleware_stack != app.router.app
    ):
        return None
    return edge, server_error.handler


def direct_targets(app: FastAPI, edge: EdgeMiddleware) -> dict[tuple[str, str], DirectTarget]:
    """The hot routes by method and request path (production's and the sandbox's):
    each exact path of a DirectRoute whose endpoint it calls directly, where no route
    before it could match the same method and path."""
    exception_middleware = edge.app
    assert isinstance(exception_middleware, ExceptionMiddleware)
    handlers = _exception_handlers(exception_middleware)
    targets: dict[tuple[str, str], DirectTarget] = {}
    earlier: list[RouteContext] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if _callable_directly(context):
            assert isinstance(route, DirectRoute)
            path = route.path
            for method in sorted(context.methods or ()):
                if _shadowed(earlier, method, path):
                    continue
                target = DirectTarget(route, app.router, handlers)
                for request_path in (path, SANDBOX_PREFIX + path):
                    targets.setdefault((method, request_path), target)
        earlier.append(context)
    return targets


def _callable_directly(context: RouteContext) -> bool:
    route = context.original_route
    return (
        isinstance(route, DirectRoute)
        and context.path == route.path
        and not route.param_convertors
        and context.max_body_size is None
        and context.dependencies == route.dependencies
        and plan(route.dependant) is not None
    )


def _shadowed(earlier: list[RouteContext], method: str, path: str) -> bool:
    """Whether a route matched before this one could take ``method path``."""
    for context in earlier:
        if isinstance(context.original_route, Host):
            return True  # matched by the Host header: not known from the path
        pattern = getattr(context, "path_regex", None)
        if pattern is None:
            return True
        methods = context.methods
        if pattern.match(path) and (not methods or method in methods):
            return True
    return False
