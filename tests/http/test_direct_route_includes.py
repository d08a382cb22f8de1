"""A direct route whose router is included with dependencies of its own runs them, as
FastAPI does (its handler is then FastAPI's); included without, it stays direct."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts

from tidings.api.direct_route import DirectRoute, included_dependant, plan
from tidings.api.sms import router as sms_router

calls: list[str] = []


def counted() -> None:
    calls.append("dependency")


async def endpoint(request: Request) -> JSONResponse:
    calls.append("endpoint")
    return JSONResponse({})


async def called(app: FastAPI) -> list[str]:
    calls.clear()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/x")).status_code == 200
    return list(calls)


async def test_the_inclusion_dependencies_run_as_fastapi_runs_them() -> None:
    answers = []
    for route_class in (DirectRoute, None):
        router = APIRouter(route_class=route_class) if route_class else APIRouter()
        router.add_api_route("/x", endpoint, methods=["POST"])
        app = FastAPI()
        app.include_router(router, dependencies=[Depends(counted)])
        answers.append(await called(app))
    assert answers[0] == answers[1] == ["dependency", "endpoint"]


async def test_included_without_dependencies_it_is_direct() -> None:
    router = APIRouter(route_class=DirectRoute)
    router.add_api_route("/x", endpoint, methods=["POST"])
    (route,) = router.routes
    assert isinstance(route, DirectRoute)
    assert included_dependant(route) is route.dependant  # outside any inclusion
    app = FastAPI()
    app.include_router(router)
    assert await called(app) == ["endpoint"]


def test_the_sms_send_stays_direct_where_the_app_includes_it() -> None:
    """FastAPI-private: the inclusion is seen while the handler is built (see
    direct_route.included_dependant)."""
    seen: list[bool] = []

    class Watching(DirectRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            seen.append(included_dependant(self) is not self.dependant)
            seen.append(plan(included_dependant(self)) is not None)
            return super().get_route_handler()

    router = APIRouter(prefix="/api/v4/sms", route_class=Watching)
    for route in sms_router.routes:
        if getattr(route, "path", "") == "/api/v4/sms/send":
            router.add_api_route("/send", route.endpoint, methods=["POST"])  # type: ignore[attr-defined]
    app = FastAPI()
    app.include_router(router)
    seen.clear()
    list(iter_route_contexts(app.routes))  # builds the inclusion's handlers
    assert seen == [True, True]
