"""The middleware run as one layer (tidings.http.edge) answers as the same layers
stacked: the same statuses, headers in the same order, bodies and metrics, for
answers and for each refusal (403 plain HTTP, 429, 401, 413, 415, 500), on API,
console and operations paths."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head
from tests.support.users import PASSWORD, create_test_user
from tidings.app import create_app
from tidings.http.edge import EdgeMiddleware
from tidings.http.request_id import new_request_id

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
LOCAL = ("127.0.0.1", 50000)
_RANDOM = re.compile(rb"[0-9a-f]{32}")
_CSRF = re.compile(rb'name="csrf" value="[^"]*"')


async def call(
    app: FastAPI,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    client: tuple[str, int] = LOCAL,
) -> Answer:
    sent: list[MutableMapping[str, Any]] = []
    raw = [(b"host", b"127.0.0.1:8000"), (b"x-request-id", b"req-1"), *(headers or [])]
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw,
        "client": client,
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], [tuple(pair) for pair in start["headers"]], content  # type: ignore[misc]


def _edge(app: FastAPI) -> EdgeMiddleware:
    current: Any = app.middleware_stack
    while not isinstance(current, EdgeMiddleware):
        current = current.app
    return current


def _boom() -> None:
    raise RuntimeError("boom")


async def _late_boom() -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        yield b"first"
        raise RuntimeError("late boom")

    return StreamingResponse(parts())


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[list[FastAPI]]:
    made = []
    for name in ("one", "stacked"):
        folder = tmp_path / name
        folder.mkdir()
        settings = make_settings(
            folder,
            (f"sqlite+aiosqlite:///{folder / 'tidings.db'}", None),
            trusted_proxies=["127.0.0.2"],
            rate_limit={"anonymous_per_minute": 40},
        )
        app = create_app(settings)
        for path in ("/api/v4/boom", "/console/boom"):
            app.add_api_route(path, _boom, methods=["GET"])
        app.add_api_route("/api/v4/late-boom", _late_boom, methods=["GET"])
        made.append(app)
    yield made


async def _scenario(app: FastAPI, *, stacked: bool) -> list[Any]:
    """Every answer of a fixed sequence of requests, made comparable."""
    await migrate_to_head(app)
    answers: list[Any] = []
    async with app.router.lifespan_context(app):
        app.middleware_stack = app.build_middleware_stack()
        edge = _edge(app)
        assert edge._direct
        if stacked:
            edge._direct = False
        user = await create_test_user(app)
        login = json.dumps({"username": user.username, "password": PASSWORD}).encode()
        json_type = [(b"content-type", b"application/json")]
        status, _, token_body = await call(
            app, "POST", "/sandbox/api/v4/auth/token", json_type, login
        )
        assert status == 200
        token = json.loads(token_body)["token"].encode()
        auth = [(b"authorization", b"Bearer " + token)]
        send = json.dumps({"to": "+393331234567", "body": "Your code is 123456"}).encode()

        def keep(answer: Answer, *, varying: bool = False) -> None:
            status, headers, body = answer
            # Times to a window's end and random tokens (the console's form cookie)
            # differ from run to run.
            shown = [
                (name, b"~" if name in (b"ratelimit-reset", b"retry-after") else value)
                for name, value in headers
                if not (varying and name == b"content-length")
            ]
            shown = [(name, _RANDOM.sub(b"~", value)) for name, value in shown]
            text = re.sub(rb"retry in \d+ s", b"retry in ~ s", body)
            text = _CSRF.sub(b"~", _RANDOM.sub(b"~", text))
            if varying:  # ids and times differ: the keys stay
                text = json.dumps(sorted(json.loads(body))).encode()
            answers.append((status, shown, text))

        keep(await call(app, "GET", "/healthz"))
        keep(await call(app, "GET", "/readyz"))
        keep(await call(app, "GET", "/nowhere"))
        keep(await call(app, "GET", "/sandbox/api/v4/nowhere"))
        keep(await call(app, "DELETE", "/healthz"))
        keep(await call(app, "GET", "/healthz", [(b"x-request-id", b"bad id!")]))
        sent = await call(app, "POST", "/sandbox/api/v4/sms/send", json_type + auth, send)
        keep(sent, varying=True)
        prefer = [(b"prefer", b"respond-async")]
        keep(
            await call(app, "POST", "/sandbox/api/v4/sms/send", json_type + auth + prefer, send),
            varying=True,
        )
        keep(await call(app, "POST", "/sandbox/api/v4/sms/send", json_type, send))
        keep(await call(app, "POST", "/sandbox/api/v4/sms/send", []))
        bad = [(b"authorization", b"Bearer not-a-token")]
        keep(await call(app, "POST", "/sandbox/api/v4/sms/send", json_type + bad, send))
        keep(await call(app, "POST", "/api/v4/sms/send", json_type + auth, send))
        # Unlabelled JSON: relabelled, and sent.
        keep(await call(app, "POST", "/sandbox/api/v4/sms/send", auth, send), varying=True)
        csv = [(b"content-type", b"text/csv")]
        keep(await call(app, "POST", "/sandbox/api/v4/sms/send", csv + auth, send))
        keep(await call(app, "POST", "/sandbox/api/v4/sms/send", auth, b"not json"))
        keep(await call(app, "POST", "/sandbox/api/v4/sms/send", json_type + auth, b"{}"))
        keep(await call(app, "POST", "/sandbox/api/v4/sms/send", json_type + auth, b"[" * 300))
        huge = json_type + auth + [(b"content-length", b"999999999")]
        keep(await call(app, "POST", "/sandbox/api/v4/sms/send", huge))
        keep(await call(app, "GET", "/console"))
        keep(await call(app, "GET", "/sandbox/console/sign-in"))
        keep(await call(app, "GET", "/console/static/console.css"))
        keep(await call(app, "GET", "/console/static/nothing.js"))
        keep(await call(app, "GET", "/api/v4/boom"))
        keep(await call(app, "GET", "/console/boom"))
        with pytest.raises(RuntimeError, match="late boom"):
            await call(app, "GET", "/api/v4/late-boom")
        keep(await call(app, "GET", "/healthz", client=("10.0.0.9", 1)))
        keep(await call(app, "GET", "/sandbox/api/v4/messages", client=("10.0.0.9", 1)))
        https = [(b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"203.0.113.5")]
        keep(await call(app, "GET", "/healthz", https, client=("127.0.0.2", 1)))
        keep(await call(app, "GET", "/sandbox/api/v4/messages", https, client=("127.0.0.2", 1)))
        keep(await call(app, "GET", "/console", https, client=("127.0.0.2", 1)))
        for _ in range(45):  # past the anonymous limit
            keep(await call(app, "GET", "/sandbox/api/v4/nowhere", client=("127.0.0.3", 1)))
        for _ in range(45):  # a client behind the proxy, past it too
            keep(await call(app, "GET", "/nowhere", https, client=("127.0.0.2", 1)))
        keep(await call(app, "GET", "/healthz", client=("127.0.0.1", 2)))
        _, _, metrics = await call(app, "GET", "/metrics")
        answers.append(
            sorted(
                line
                for line in metrics.decode().splitlines()
                if line.startswith("tidings_http_requests_total")
                and "/metrics" not in line
                and "/api/v4/auth/token" not in line
            )
        )
    return answers


async def test_one_layer_answers_as_the_stacked_layers(apps: list[FastAPI]) -> None:
    one = await _scenario(apps[0], stacked=False)
    stacked = await _scenario(apps[1], stacked=True)
    assert len(one) == len(stacked)
    for got, expected in zip(one, stacked, strict=True):
        assert got == expected
    statuses = {answer[0] for answer in one[:-1]}
    assert {200, 202, 401, 403, 404, 405, 413, 415, 422, 429, 500} <= statuses


def test_a_new_request_id_is_a_version_4_uuid() -> None:
    import uuid

    for _ in range(200):
        made = new_request_id()
        parsed = uuid.UUID(made)
        assert parsed.hex == made
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_a_forked_process_makes_other_request_ids() -> None:
    import os

    new_request_id()  # the buffer holds the next ids
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(writer, new_request_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    os.close(writer)
    assert os.read(reader, 64).decode() != new_request_id()


@pytest.mark.parametrize(
    "before",
    [
        [],
        [(b"content-type", b"text/plain")],
        [(b"ratelimit-limit", b"1"), (b"x", b"y"), (b"ratelimit-limit", b"2")],
        [(b"ratelimit-reset", b"9"), (b"ratelimit-remaining", b"8")],
    ],
)
def test_rate_headers_are_set_as_mutable_headers_set_them(
    before: list[tuple[bytes, bytes]],
) -> None:
    from starlette.datastructures import MutableHeaders

    from tidings.http.ratelimit import RATE_NAMES, set_raw_headers

    raw = [(b"ratelimit-limit", b"40"), (b"ratelimit-remaining", b"39"), (b"ratelimit-reset", b"5")]
    ours: dict[str, Any] = {"type": "http.response.start", "headers": tuple(before)}
    set_raw_headers(ours, raw, RATE_NAMES)
    theirs: dict[str, Any] = {"type": "http.response.start", "headers": tuple(before)}
    mutable = MutableHeaders(scope=theirs)
    for name, value in raw:
        mutable[name.decode()] = value.decode()
    assert ours["headers"] == theirs["headers"]
