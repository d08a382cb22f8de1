"""The hot send routes answered from the application's entry (tidings.http.shortcut)
answer as FastAPI's layers do: the same statuses, headers in the same order, bodies,
logs and metrics, for answers and refusals in both environments; the handler sees
the same scope; what the shortcut reads of FastAPI's and Starlette's insides is
still there; and it is taken only where it is exact."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from opentelemetry.trace import NoOpTracer, NoOpTracerProvider, Tracer, TracerProvider
from pydantic import Field
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware

from tests.conftest import make_settings
from tests.http.test_edge import Answer, call
from tests.support.databases import migrate_to_head
from tests.support.users import PASSWORD, create_test_user
from tidings.api.deps import PrincipalDep
from tidings.api.direct_route import DirectRoute
from tidings.app import create_app
from tidings.core.errors import Forbidden, PaymentRequired
from tidings.http.schemas import ApiRequest
from tidings.http.shortcut import (
    _FASTAPI_TELEMETRY,
    KNOWN_LAYERS,
    TidingsAPI,
    _exception_handlers,
    _native_telemetry_enabled,
    direct_targets,
)

_RANDOM = re.compile(rb"[0-9a-f]{32}")
_RANDOM_TEXT = re.compile(r"[0-9a-f]{32}")
SEND = "/api/v4/sms/send"
JSON = [(b"content-type", b"application/json")]
# What FastAPI's layers put in the scope that nothing on a direct route reads: the
# router's matching state (FastAPI-private) and the exit stacks that close the
# dependencies with yield and uploaded files (a direct route has neither).
LEFT_OUT = {
    "fastapi",
    "fastapi_middleware_astack",
    "fastapi_inner_astack",
    "fastapi_function_astack",
}


class ProbeBody(ApiRequest):
    to: str = Field(min_length=1, max_length=32)


def probe_router(seen: list[dict[str, Any]]) -> APIRouter:
    """Direct routes that show their scope, or raise what a handler may raise."""
    router = APIRouter(prefix="/api/v4/probe", route_class=DirectRoute)

    async def scope(body: ProbeBody, request: Request, principal: PrincipalDep) -> JSONResponse:
        seen.append(dict(request.scope))
        return JSONResponse({"to": body.to, "account": principal.account_id})

    async def boom(request: Request) -> JSONResponse:
        raise RuntimeError("boom")

    async def conflict(request: Request) -> JSONResponse:
        raise HTTPException(409, "Taken.")

    async def unpaid(request: Request) -> JSONResponse:
        raise PaymentRequired("No credits left.")

    async def forbidden(request: Request) -> JSONResponse:
        raise Forbidden("Not yours.")

    async def late(request: Request) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            yield b"first"
            raise RuntimeError("late boom")

        return StreamingResponse(parts())

    router.add_api_route("/scope", scope, methods=["POST"])
    for name, endpoint in [
        ("boom", boom),
        ("conflict", conflict),
        ("unpaid", unpaid),
        ("forbidden", forbidden),
        ("late", late),
    ]:
        router.add_api_route(f"/{name}", endpoint, methods=["POST"])
    return router


def make_app(folder: Path, seen: list[dict[str, Any]]) -> TidingsAPI:
    folder.mkdir()
    settings = make_settings(
        folder,
        (f"sqlite+aiosqlite:///{folder / 'tidings.db'}", None),
        rate_limit={"per_minute": 45},
    )
    app = create_app(settings)
    assert isinstance(app, TidingsAPI)
    app.include_router(probe_router(seen))
    return app


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[tuple[TidingsAPI, TidingsAPI]]:
    direct = make_app(tmp_path / "direct", [])
    usual = make_app(tmp_path / "usual", [])
    usual.direct_dispatch = False
    yield direct, usual


def comparable(answer: Answer, *, varying: bool = False) -> Answer:
    """An answer without what differs from run to run: random ids, the seconds to a
    window's end, and (``varying``) a message's ids and times (its keys stay)."""
    status, headers, body = answer
    shown = [
        (name, b"~" if name in (b"ratelimit-reset", b"retry-after") else value)
        for name, value in headers
        if not (varying and name == b"content-length")
    ]
    shown = [(name, _RANDOM.sub(b"~", value)) for name, value in shown]
    text = re.sub(rb"retry in \d+ s", b"retry in ~ s", _RANDOM.sub(b"~", body))
    if varying:
        text = json.dumps(sorted(json.loads(body))).encode()
    return status, shown, text


async def scenario(app: TidingsAPI, caplog: pytest.LogCaptureFixture) -> list[Any]:
    """Every answer, log line and metric of a fixed sequence of requests."""
    await migrate_to_head(app)
    answers: list[Any] = []
    async with app.router.lifespan_context(app):
        caplog.clear()
        user = await create_test_user(app)
        login = json.dumps({"username": user.username, "password": PASSWORD}).encode()
        tokens = {}
        for base in ("/sandbox", ""):
            status, _, token_body = await call(
                app, "POST", f"{base}/api/v4/auth/token", JSON, login
            )
            assert status == 200
            tokens[base] = [
                (b"authorization", b"Bearer " + json.loads(token_body)["token"].encode())
            ]
        send = json.dumps({"to": "+393331234567", "body": "Your code is 123456"}).encode()

        async def keep(
            method: str,
            path: str,
            headers: list[tuple[bytes, bytes]],
            body: bytes = b"",
            **extra: Any,
        ) -> None:
            answer = await call(app, method, path, headers, body, **extra)
            answers.append(comparable(answer, varying=answer[0] in (200, 202) and SEND in path))

        for base in ("/sandbox", ""):
            auth = JSON + tokens[base]
            path = base + SEND
            await keep("POST", path, auth, send)  # 200 (sandbox), 402 (production: no credits)
            await keep("POST", path, [*auth, (b"prefer", b"respond-async")], send)
            await keep("POST", path, tokens[base], send)  # unlabelled JSON
            await keep("POST", path, JSON, send)  # 401: no token
            await keep("POST", path, [*JSON, (b"authorization", b"Bearer nope")], send)
            await keep("POST", path, auth, b"{")  # 400
            await keep("POST", path, auth, b"[" * 300)  # 400: too deep
            await keep("POST", path, auth, b"{}")  # 422
            await keep("POST", path, auth, b'{"to": "+393331234567", "bdy": "x"}')  # 422
            await keep("POST", path, [(b"content-type", b"text/csv"), *tokens[base]], send)  # 415
            await keep("POST", path, [*auth, (b"content-length", b"999999999")])  # 413
            await keep("POST", path, auth, send, client=("10.0.0.9", 1))  # 403: plain HTTP
            await keep("GET", path, tokens[base])  # 405
            await keep("POST", path + "/", auth, send)  # 307 to the path without it
            await keep("POST", path + "x", auth, send)  # 404
            for name in ("conflict", "unpaid", "forbidden", "boom"):
                await keep("POST", f"{base}/api/v4/probe/{name}", auth)
            with pytest.raises(RuntimeError, match="late boom"):
                await call(app, "POST", f"{base}/api/v4/probe/late", auth)
        for _ in range(50):  # past the account's limit: 429
            await keep("POST", "/sandbox" + SEND, JSON + tokens["/sandbox"], b"{}")
        answers.append(
            [
                (record.name, record.levelname, _RANDOM_TEXT.sub("~", record.getMessage()))
                for record in caplog.records
                if record.name.startswith("tidings")
            ]
        )
        _, _, metrics = await call(app, "GET", "/metrics")
        answers.append(
            sorted(
                line
                for line in metrics.decode().splitlines()
                if line.startswith("tidings_http_requests_total") and "/metrics" not in line
            )
        )
    return answers


async def test_the_shortcut_answers_as_fastapi_layers(
    apps: tuple[TidingsAPI, TidingsAPI], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    direct = await scenario(apps[0], caplog)
    usual = await scenario(apps[1], caplog)
    assert len(direct) == len(usual)
    for got, expected in zip(direct, usual, strict=True):
        assert got == expected
    statuses = {answer[0] for answer in direct[:-2]}
    assert {200, 202, 307, 400, 401, 402, 403, 404, 405, 409, 413, 415, 422, 429, 500} <= statuses
    assert direct[-2], "the 500s are logged"
    assert ("POST", "/sandbox" + SEND) in (apps[0]._targets or {})
    assert apps[1]._targets is None


async def test_the_shortcut_is_taken_for_the_sends_only(
    apps: tuple[TidingsAPI, TidingsAPI],
) -> None:
    direct, _ = apps
    await migrate_to_head(direct)
    async with direct.router.lifespan_context(direct):
        await call(direct, "GET", "/healthz")  # builds the stack
        assert direct._edge is not None
        targets = direct_targets(direct, direct._edge)
        taken = {key: target.route.path for key, target in targets.items()}
    for base in ("", "/sandbox"):
        assert taken[("POST", base + SEND)] == SEND
        assert taken[("POST", f"{base}/api/v4/probe/boom")] == "/api/v4/probe/boom"
        assert ("GET", base + SEND) not in taken
    assert all(
        path.startswith(
            ("/api/v4/sms/", "/sandbox/api/v4/sms/", "/api/v4/probe/", "/sandbox/api/v4/probe/")
        )
        for _, path in taken
    )


async def test_the_handler_sees_the_scope_fastapi_gives_it(tmp_path: Path) -> None:
    scopes: dict[str, dict[str, Any]] = {}
    for name in ("direct", "usual"):
        seen: list[dict[str, Any]] = []
        app = make_app(tmp_path / name, seen)
        app.direct_dispatch = name == "direct"
        await migrate_to_head(app)
        async with app.router.lifespan_context(app):
            user = await create_test_user(app)
            login = json.dumps({"username": user.username, "password": PASSWORD}).encode()
            _, _, token = await call(app, "POST", "/sandbox/api/v4/auth/token", JSON, login)
            auth = [(b"authorization", b"Bearer " + json.loads(token)["token"].encode())]
            status, _, _ = await call(
                app, "POST", "/sandbox/api/v4/probe/scope", JSON + auth, b'{"to": "+1"}'
            )
            assert status == 200
            edge = app._edge
            assert edge is not None and isinstance(edge.app, ExceptionMiddleware)
            handlers = _exception_handlers(edge.app)
        (scope,) = seen
        route = scope["route"]
        # The objects themselves: the app, its router, the route and its endpoint, and
        # ExceptionMiddleware's own handlers.
        assert scope["app"] is app
        assert scope["router"] is app.router
        assert isinstance(route, DirectRoute) and route.path == "/api/v4/probe/scope"
        assert scope["endpoint"] is route.endpoint
        assert scope["path_params"] == {}
        assert scope["starlette.exception_handlers"] == handlers
        scopes[name] = scope
    direct, usual = scopes["direct"], scopes["usual"]
    # If FastAPI puts more (or other) keys in the scope, this says so.
    assert set(usual) - set(direct) == LEFT_OUT
    assert set(direct) <= set(usual)
    plain = {"app", "router", "route", "endpoint", "starlette.exception_handlers", "headers"}
    for key in set(direct) - plain:
        assert type(direct[key]) is type(usual[key]), key
        if key not in ("state",):
            assert direct[key] == usual[key], key
    assert set(direct["state"]) == set(usual["state"])


async def broken_read(
    app: TidingsAPI, caplog: pytest.LogCaptureFixture
) -> tuple[list[MutableMapping[str, Any]], list[tuple[str, str, str]]]:
    """A send whose body cannot be read (the connection broke): what is sent, and
    logged, before the exception comes out."""
    sent: list[MutableMapping[str, Any]] = []
    await migrate_to_head(app)
    async with app.router.lifespan_context(app):
        # A caller the rate limiter verifies, then the body's read fails.
        user = await create_test_user(app)
        login = json.dumps({"username": user.username, "password": PASSWORD}).encode()
        _, _, token = await call(app, "POST", "/sandbox/api/v4/auth/token", JSON, login)
        bearer = b"Bearer " + json.loads(token)["token"].encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/sandbox" + SEND,
            "raw_path": b"/sandbox" + SEND.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"x-request-id", b"req-1"),
                (b"authorization", bearer),
                *JSON,
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }

        async def receive() -> dict[str, Any]:
            raise OSError("the connection broke")

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        caplog.clear()
        with pytest.raises(OSError, match="the connection broke"):
            await app(scope, receive, send)
    return sent, [(r.name, r.levelname, r.getMessage()) for r in caplog.records]


async def test_an_exception_before_any_answer_goes_to_the_500_handler(
    apps: tuple[TidingsAPI, TidingsAPI], caplog: pytest.LogCaptureFixture
) -> None:
    """As ServerErrorMiddleware does: the application's 500 problem, then raised."""
    direct = await broken_read(apps[0], caplog)
    usual = await broken_read(apps[1], caplog)
    assert direct == usual
    start, body = direct[0]
    assert start["status"] == 500
    assert json.loads(body["body"])["requestId"] == "req-1"
    assert direct[1], "logged"


async def test_fastapi_telemetry_is_seen() -> None:
    """FastAPI-private: the check its own __call__ makes, and the scope key where it
    keeps a request's telemetry (see shortcut.py)."""
    assert _native_telemetry_enabled(FastAPI()) is False
    traced = FastAPI(telemetry={"tracer_provider": NoOpTracerProvider()})
    assert _native_telemetry_enabled(traced) is True
    keys: list[bool] = []

    async def seen(request: Request) -> JSONResponse:
        keys.append(_FASTAPI_TELEMETRY in request.scope)
        return JSONResponse({})

    class QuietTracerProvider(TracerProvider):
        """Traces followed (by FastAPI), written nowhere."""

        def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
            return NoOpTracer()

    traced = FastAPI(telemetry={"tracer_provider": QuietTracerProvider()})
    traced.add_api_route("/seen", seen)
    transport = httpx.ASGITransport(app=traced)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/seen")).status_code == 200
    assert keys == [True]


async def test_the_stack_is_fastapi_layers_around_the_edge(
    apps: tuple[TidingsAPI, TidingsAPI],
) -> None:
    """If FastAPI builds its stack otherwise, this says so (the shortcut is off)."""
    app = apps[0]
    stack = app.build_middleware_stack()
    names = []
    current: Any = stack
    while current is not app.router:
        names.append(type(current).__name__)
        current = current.app
    assert tuple(names) == KNOWN_LAYERS
    assert app._edge is not None


async def test_a_request_followed_by_an_outer_application_keeps_fastapi_way(
    apps: tuple[TidingsAPI, TidingsAPI],
) -> None:
    app = apps[0]
    app.build_middleware_stack()
    scope = {"type": "http", "method": "POST", "path": SEND}
    assert app._target_for(scope) is not None
    assert app._target_for({**scope, _FASTAPI_TELEMETRY: object()}) is None
    assert app._target_for({**scope, "root_path": "/mounted"}) is None
    assert app._target_for({**scope, "starlette.max_body_size": 10}) is None


async def test_fastapi_telemetry_on_takes_fastapi_way(tmp_path: Path) -> None:
    app = make_app(tmp_path / "traced", [])
    app._telemetry["tracer_provider"] = NoOpTracerProvider()
    assert _native_telemetry_enabled(app)
    await migrate_to_head(app)
    async with app.router.lifespan_context(app):
        await call(app, "GET", "/healthz")
        assert app._target_for({"type": "http", "method": "POST", "path": SEND}) is None


async def test_a_route_matched_before_a_send_keeps_fastapi_way(tmp_path: Path) -> None:
    app = make_app(tmp_path / "shadowed", [])

    async def anything(request: Request) -> JSONResponse:
        return JSONResponse({})

    router = APIRouter(route_class=DirectRoute)
    router.add_api_route("/api/v4/sms/{what}", anything, methods=["POST"])
    app.include_router(router)
    # Matched first: moved to the front of the application's routes.
    app.router.routes.insert(0, app.router.routes.pop())
    await migrate_to_head(app)
    async with app.router.lifespan_context(app):
        await call(app, "GET", "/healthz")
        assert app._edge is not None
        targets = direct_targets(app, app._edge)
    assert ("POST", SEND) not in targets
    assert ("POST", "/api/v4/probe/boom") in targets


async def test_routes_added_later_are_found(tmp_path: Path) -> None:
    app = make_app(tmp_path / "later", [])
    await migrate_to_head(app)
    async with app.router.lifespan_context(app):
        await call(app, "GET", "/healthz")
        assert app._target_for({"type": "http", "method": "POST", "path": "/api/v4/later"}) is None

        async def later(request: Request) -> JSONResponse:
            return JSONResponse({})

        app.router.add_api_route(
            "/api/v4/later", later, methods=["POST"], route_class_override=DirectRoute
        )
        assert (
            app._target_for({"type": "http", "method": "POST", "path": "/api/v4/later"}) is not None
        )


def test_the_openapi_document_is_fastapi_own() -> None:
    assert TidingsAPI.openapi is FastAPI.openapi
