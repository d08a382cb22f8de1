"""Routes called without FastAPI's per-request dependency resolution.

For every request FastAPI walks the route's dependency tree (here: the context, the
bearer scheme, the principal, the body), checks each for a cache entry and scopes,
and collects the values and errors; on a single send that walk cost more CPU than
the rest of the route's own code. A :class:`DirectRoute` is declared as any route
(the same signature, so FastAPI builds the same OpenAPI document from it), but once
built it calls its endpoint directly with the values FastAPI would have given:

- the body model, parsed by :func:`tidings.http.json_body.parse_json_body`, which
  answers as FastAPI's own body handling does (the same 400 and 422 problems);
- the principal, by the same :func:`tidings.api.deps.get_principal` code, so the
  same 401s in the same order (the principal before the body);
- the request and the application context.

A route whose endpoint takes anything else (path, query or header parameters, other
dependencies, a session, or those its router was included with), or is not declared
to answer with a ``Response`` (which FastAPI passes on as it is), is handled by
FastAPI as usual: the shortcut applies only where it is exact.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, get_type_hints

import fastapi.routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from tidings.api.deps import Principal, _bearer, get_context, get_principal
from tidings.http.callers import verified_caller
from tidings.http.json_body import parse_json_body

# How a parameter's value is found: by a function of the request.
Finder = Callable[[Request], Awaitable[Any]]


async def _context(request: Request) -> Any:
    return request.app.state.ctx


async def _principal(request: Request) -> Any:
    caller = verified_caller(request.scope)
    if isinstance(caller, Principal):
        # The rate limiter verified this request's bearer token: the bearer scheme
        # reads the same first Authorization header, finds the token there too, and
        # get_principal answers with this caller. Parsing it again into FastAPI's
        # credentials model cost several microseconds.
        return caller
    credentials = await _bearer(request)
    return await get_principal(request, credentials, request.app.state.ctx)


async def _request(request: Request) -> Request:
    return request


def _body_finder(model: type[BaseModel]) -> Finder:
    async def find(request: Request) -> BaseModel:
        return parse_json_body(model, await request.body())

    return find


def _answers_with_response(endpoint: Callable[..., Any]) -> bool:
    try:
        answer = get_type_hints(endpoint).get("return")
    except Exception:  # an annotation that does not resolve: leave it to FastAPI
        return False
    return isinstance(answer, type) and issubclass(answer, Response)


def plan(dependant: Dependant) -> list[tuple[str, Finder]] | None:
    """How to find each of the endpoint's arguments, in FastAPI's order (its
    dependencies, then the body); None when FastAPI has to do it."""
    if (
        dependant.call is None
        or not inspect.iscoroutinefunction(dependant.call)
        or not _answers_with_response(dependant.call)
        or dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or len(dependant.body_params) > 1
    ):
        return None
    found: list[tuple[str, Finder]] = []
    for sub in dependant.dependencies:
        if sub.name is None:
            return None
        if sub.call is get_context:
            found.append((sub.name, _context))
        elif sub.call is get_principal:
            found.append((sub.name, _principal))
        else:
            return None
    if dependant.request_param_name is not None:
        found.append((dependant.request_param_name, _request))
    for field in dependant.body_params:
        model = field.field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        found.append((field.name, _body_finder(model)))
    return found


def included_dependant(route: APIRoute) -> Dependant:
    """What FastAPI resolves for ``route`` where its handler is being built: with the
    dependencies its router was included with (``include_router(dependencies=...)``).

    FastAPI-private (0.165): an included route's handler is built while
    ``fastapi.routing._effective_route_context_var`` names the inclusion, as
    ``APIRoute.get_route_handler`` reads it; tests/http/test_direct_route_includes.py fails if
    that changes."""
    variable = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = variable.get() if variable is not None else None
    if context is not None and context.original_route is route and context.dependant:
        dependant: Dependant = context.dependant
        return dependant
    return route.dependant


class DirectRoute(APIRoute):
    """An APIRoute whose endpoint is called with its arguments found directly, when
    :func:`plan` can find them all (see the module's docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        finders = plan(included_dependant(self))
        if finders is None:
            return super().get_route_handler()
        endpoint = self.dependant.call
        assert endpoint is not None

        async def handler(request: Request) -> Response:
            arguments = {name: await find(request) for name, find in finders}
            answer: Response = await endpoint(**arguments)
            return answer

        return handler
