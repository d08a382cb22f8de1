"""Every error the server can produce is problem+json with a stable code."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.support.users import TestUser

TOKEN = "/sandbox/api/v4/auth/token"


def _assert_problem(answer: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] == "about:blank" and body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


async def test_unknown_route(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.get("/api/v4/nothing-here"), 404, "not_found")
    _assert_problem(await client.get("/sandbox/api/v4/nothing-here"), 404, "not_found")


async def test_wrong_method(client: httpx.AsyncClient) -> None:
    answer = await client.delete(TOKEN)
    _assert_problem(answer, 405, "method_not_allowed")
    assert "POST" in answer.headers["allow"]


@pytest.mark.parametrize("body", [b"{", b'{"username": }', b"\xff\xfe"])
async def test_malformed_json(client: httpx.AsyncClient, body: bytes) -> None:
    answer = await client.post(TOKEN, content=body, headers={"Content-Type": "application/json"})
    _assert_problem(answer, 400, "invalid_json")


async def test_plain_text_label_with_json_is_read(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    body = f'{{"username":"{user.username}","password":"{user.password}"}}'
    answer = await client.post(
        TOKEN, content=body, headers={"Content-Type": "text/plain;charset=UTF-8"}
    )
    assert answer.status_code == 200


async def test_no_label_with_json_is_read(client: httpx.AsyncClient, user: TestUser) -> None:
    body = f'{{"username":"{user.username}","password":"{user.password}"}}'.encode()
    answer = await client.post(TOKEN, content=body)
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"username=ada&password=x"),
        ("application/x-www-form-urlencoded", b"username=ada&password=x"),
        ("application/xml", b"<token/>"),
        ("multipart/form-data; boundary=x", b"--x--"),
    ],
)
async def test_not_json(client: httpx.AsyncClient, content_type: str, body: bytes) -> None:
    answer = await client.post(TOKEN, content=body, headers={"Content-Type": content_type})
    _assert_problem(answer, 415, "unsupported_media_type")


async def test_oversized_body(client: httpx.AsyncClient) -> None:
    big = b'{"username": "' + b"a" * 2_000_000 + b'", "password": "x"}'
    _assert_problem(
        await client.post(TOKEN, content=big, headers={"Content-Type": "application/json"}),
        413,
        "payload_too_large",
    )


async def test_oversized_chunked_body(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"a" * 65536

    answer = await client.post(
        TOKEN, content=chunks(), headers={"Content-Type": "application/json"}
    )
    _assert_problem(answer, 413, "payload_too_large")


async def test_validation_lists_fields(client: httpx.AsyncClient) -> None:
    answer = await client.post(TOKEN, json={"username": "", "expiresIn": "soon"})
    body = _assert_problem(answer, 422, "validation_failed")
    fields = {error["field"] for error in body["errors"]}  # type: ignore[attr-defined]
    assert fields == {"username", "password", "expiresIn"}
    for error in body["errors"]:  # type: ignore[attr-defined]
        assert error["code"] and error["message"]


async def test_json_that_is_not_an_object(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.post(TOKEN, json=[1, 2]), 422, "validation_failed")


async def test_unexpected_error_hides_internals(app: FastAPI, client: httpx.AsyncClient) -> None:
    async def explode() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_api_route("/api/v4/explode", explode)
    answer = await client.get("/api/v4/explode", headers={"X-Request-ID": "req-42"})
    body = _assert_problem(answer, 500, "internal_error")
    assert "hunter2" not in answer.text and "Traceback" not in answer.text
    assert body["requestId"] == "req-42"
    assert answer.headers["x-request-id"] == "req-42"
    assert "ratelimit-limit" in answer.headers


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    hostile = await client.get("/healthz", headers={"X-Request-ID": "a b<script>"})
    assert hostile.headers["x-request-id"] != "a b<script>"
