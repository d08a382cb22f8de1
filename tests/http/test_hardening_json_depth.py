"""Deeply nested JSON is a 400 ``invalid_json``, never a 500 (issue 16, item 4).

Python's ``json`` module gives up with a RecursionError a thousand levels down and
pydantic's parser refuses more than about 200 levels; whichever parser a path
uses, the answer is the same 400 and nothing is logged as an error.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.support.users import TestUser, bearer, login

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 300 + b"1" + b"}" * 300


def _assert_invalid_json(answer: httpx.Response) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "invalid_json"


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR and record.name.startswith(("tidings.http", "uvicorn"))
    ]


@pytest.mark.parametrize("label", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_deep_body_to_login_under_a_lenient_label(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, label: str | None
) -> None:
    headers = {"Content-Type": label} if label else {}
    with caplog.at_level(logging.ERROR):
        answer = await client.post("/sandbox/api/v4/auth/token", content=DEEP, headers=headers)
    _assert_invalid_json(answer)
    assert not _errors_logged(caplog)


async def test_deep_body_to_login_labelled_json(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/sandbox/api/v4/auth/token", content=DEEP, headers={"Content-Type": "application/json"}
    )
    _assert_invalid_json(answer)


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/sandbox/api/v4/sms/send", "text/plain"),
        ("/sandbox/api/v4/contacts", "application/json"),
        ("/sandbox/api/v4/sms/bulk", "application/json"),
        ("/sandbox/api/v4/email/bulk", "text/plain"),
    ],
)
async def test_deep_body_with_a_token(
    client: httpx.AsyncClient,
    user: TestUser,
    caplog: pytest.LogCaptureFixture,
    path: str,
    label: str,
) -> None:
    token = await login(client, user)
    with caplog.at_level(logging.ERROR):
        answer = await client.post(
            path, content=DEEP, headers={**bearer(token), "Content-Type": label}
        )
    _assert_invalid_json(answer)
    assert not _errors_logged(caplog)


async def test_depth_limit(client: httpx.AsyncClient, user: TestUser) -> None:
    # 300 levels: within Python's recursion limit, past the depth limit of 200.
    token = await login(client, user)
    answer = await client.post(
        "/sandbox/api/v4/sms/send",
        content=DEEP_OBJECT,
        headers={**bearer(token), "Content-Type": "text/plain"},
    )
    _assert_invalid_json(answer)
    assert "deep" in answer.json()["detail"]


async def test_a_large_body_under_a_guessed_label_is_left_to_its_route(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    # Checking a bulk-sized body here would hold the event loop; the bulk route
    # parses it anyway, so what is not JSON is its 400, not this middleware's 415.
    token = await login(client, user)
    body = b'{"body":"x","recipients":[' + b"not json " * 200_000
    answer = await client.post(
        "/sandbox/api/v4/sms/bulk",
        content=body,
        headers={**bearer(token), "Content-Type": "application/x-www-form-urlencoded"},
    )
    _assert_invalid_json(answer)
