"""A request that needs a caller is refused before its body is read (issue 16, item 2).

The client here has sent only the first bytes of a huge body and never sends the
rest: the server must still answer, so it cannot have waited for (let alone
parsed) the body before deciding that the caller is not authenticated.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.users import TestUser, bearer, login

BULK = "/sandbox/api/v4/sms/bulk"
HUGE = str(60 * 1_048_576).encode()


async def _partial_body_answer(
    app: FastAPI, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[list[dict[str, Any]], int]:
    """Send the headers of a 60 MB request and its first bytes, then stall forever;
    the answer (the ASGI messages sent) and how often the body was asked for."""
    reads = 0
    stalled = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads == 1:
            first = b'{"body":"x","recipients":['
            return {"type": "http.request", "body": first, "more_body": True}
        await stalled.wait()  # the rest of the body never comes
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", HUGE),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    # A hang guard, not a timing assertion: today's code waits for the body forever.
    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    return sent, reads


def _status(sent: list[dict[str, Any]]) -> int:
    return int(sent[0]["status"])


def _header(sent: list[dict[str, Any]], name: bytes) -> bytes | None:
    return dict(sent[0]["headers"]).get(name)


async def test_no_token_answers_401_before_the_body(app: FastAPI) -> None:
    sent, reads = await _partial_body_answer(app, BULK, [])
    assert _status(sent) == 401
    assert reads <= 1
    # The unread rest of the body is not worth keeping the connection for.
    assert _header(sent, b"connection") == b"close"


async def test_bad_token_answers_401_before_the_body(app: FastAPI) -> None:
    sent, _ = await _partial_body_answer(app, BULK, [(b"authorization", b"Bearer not.a.jwt")])
    assert _status(sent) == 401


async def test_revoked_token_answers_401_before_the_body(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    revoked = await client.post("/sandbox/api/v4/auth/revoke", headers=bearer(token))
    assert revoked.status_code == 200
    authorization = (b"authorization", f"Bearer {token}".encode())
    sent, _ = await _partial_body_answer(app, BULK, [authorization])
    assert _status(sent) == 401


async def test_token_of_the_other_environment_answers_401_before_the_body(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    sandbox_token = await login(client, user)
    sent, _ = await _partial_body_answer(
        app, "/api/v4/sms/bulk", [(b"authorization", f"Bearer {sandbox_token}".encode())]
    )
    assert _status(sent) == 401
    body = b"".join(message.get("body", b"") for message in sent[1:])
    assert b"wrong_environment" in body


async def test_valid_token_has_its_body_read(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    answer = await client.post(
        BULK,
        json={"recipients": [{"to": "+393331234000"}], "body": "hi"},
        headers=bearer(token),
    )
    assert answer.status_code in (200, 202), answer.text


@pytest.mark.parametrize("path", ["/api/v4/nothing-here", "/sandbox/api/v4/account"])
async def test_routes_without_a_body_answer_as_before(client: httpx.AsyncClient, path: str) -> None:
    # Unknown paths stay 404 and wrong methods 405, whoever asks.
    answer = await client.post(path, content=b"{}")
    assert answer.status_code in (404, 405)


async def test_login_reads_its_body_without_a_token(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    assert await login(client, user)
