"""The token endpoint: shape of the answer, lifetimes, wrong credentials, throttling."""

from __future__ import annotations

import httpx
import jwt
import pytest
from fastapi import FastAPI

from tests.support.databases import migrate_to_head
from tests.support.users import TestUser
from tidings.app import create_app
from tidings.settings import Settings

TOKEN = "/sandbox/api/v4/auth/token"


async def test_answer_shape_and_claims(client: httpx.AsyncClient, user: TestUser) -> None:
    answer = await client.post(TOKEN, json={"username": user.username, "password": user.password})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"token", "expiresIn", "type"}
    assert body["type"] == "Bearer" and body["expiresIn"] == 3600
    header = jwt.get_unverified_header(body["token"])
    assert header == {"alg": "HS256", "typ": "at+jwt"}
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert {"sub", "acc", "env", "iat", "exp", "jti", "iss", "aud"} <= set(claims)
    assert claims["env"] == "sandbox" and claims["sub"] == user.user_id
    assert claims["exp"] - claims["iat"] == 3600


async def test_requested_lifetime(client: httpx.AsyncClient, user: TestUser) -> None:
    answer = await client.post(
        TOKEN, json={"username": user.username, "password": user.password, "expiresIn": 600}
    )
    assert answer.json()["expiresIn"] == 600


async def test_lifetime_over_the_maximum(client: httpx.AsyncClient, user: TestUser) -> None:
    answer = await client.post(
        TOKEN, json={"username": user.username, "password": user.password, "expiresIn": 10**7}
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "validation_failed"
    assert answer.json()["errors"][0]["field"] == "expiresIn"


async def test_fresh_tokens_keep_older_ones_valid(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    tokens = []
    for _ in range(2):
        answer = await client.post(
            TOKEN, json={"username": user.username, "password": user.password}
        )
        tokens.append(answer.json()["token"])
    assert tokens[0] != tokens[1]
    for token in tokens:
        answer = await client.get(
            "/sandbox/api/v4/account", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200


@pytest.mark.parametrize("username", ["ada@example.com", "nobody@example.com"])
async def test_wrong_credentials(client: httpx.AsyncClient, user: TestUser, username: str) -> None:
    answer = await client.post(TOKEN, json={"username": username, "password": "wrong password"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_credentials"
    assert "token" not in answer.text


async def test_curl_form_label_is_read_as_json(client: httpx.AsyncClient, user: TestUser) -> None:
    body = f'{{"username":"{user.username}","password":"{user.password}"}}'
    answer = await client.post(
        TOKEN, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 200, answer.text


async def test_failed_logins_are_refused_per_username(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    for _ in range(5):
        answer = await client.post(TOKEN, json={"username": user.username, "password": "nope-nope"})
        assert answer.status_code == 401
    answer = await client.post(TOKEN, json={"username": user.username, "password": user.password})
    assert answer.status_code == 429
    assert answer.json()["code"] == "rate_limited"
    assert int(answer.headers["Retry-After"]) > 0


async def test_failed_logins_are_refused_per_address(settings: Settings) -> None:
    settings = settings.model_copy(
        update={
            "login_throttle": settings.login_throttle.model_copy(
                update={"max_failures_per_address": 3}
            )
        }
    )
    app: FastAPI = create_app(settings)
    await migrate_to_head(app)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for index in range(3):
            answer = await client.post(
                TOKEN, json={"username": f"u{index}", "password": "wrong-pass"}
            )
            assert answer.status_code == 401
        answer = await client.post(TOKEN, json={"username": "fresh", "password": "wrong-pass"})
        assert answer.status_code == 429
    await app.state.ctx.engine.dispose()
