"""Every way a bearer token can be bad answers 401 with its code and WWW-Authenticate."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.support.users import TestUser, bearer, login
from tidings.auth.tokens import TokenCodec
from tidings.core.clock import FrozenClock
from tidings.core.environments import Environment
from tidings.settings import Settings

ACCOUNT = "/sandbox/api/v4/account"
# Given as a deployment gives it (TIDINGS_JWT_SECRET), so tests can sign with it.
SIGNING_KEY = b"bad-tokens-test-signing-key-0123456789"


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    return make_settings(data_dir, sqlite_url, jwt_secret=SIGNING_KEY.decode())


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _assert_401(answer: httpx.Response, code: str) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["code"] == code
    assert answer.json()["status"] == 401


async def test_valid_token_reads_the_account(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    answer = await client.get(ACCOUNT, headers=bearer(token))
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == user.account_id
    assert body["environment"] == "sandbox"
    assert body["user"] == {"id": user.user_id, "username": user.username}


async def test_missing_header(client: httpx.AsyncClient) -> None:
    await _assert_401(await client.get(ACCOUNT), "invalid_token")


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer a.b.c"]
)
async def test_malformed(client: httpx.AsyncClient, user: TestUser, header: str) -> None:
    await _assert_401(await client.get(ACCOUNT, headers={"Authorization": header}), "invalid_token")


async def test_tampered_signature(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    await _assert_401(
        await client.get(ACCOUNT, headers=bearer(f"{head}.{payload}.{flipped}")), "invalid_token"
    )


async def test_tampered_payload(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["acc"] = "acc_someone_else"
    forged = f"{head}.{_b64(claims)}.{signature}"
    await _assert_401(await client.get(ACCOUNT, headers=bearer(forged)), "invalid_token")


async def test_alg_none(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    claims = jwt.decode(token, options={"verify_signature": False})
    unsigned = f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(claims)}."
    await _assert_401(await client.get(ACCOUNT, headers=bearer(unsigned)), "invalid_token")


async def test_other_key_same_claims(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, b"x" * 32, algorithm="HS256", headers={"typ": "at+jwt"})
    await _assert_401(await client.get(ACCOUNT, headers=bearer(forged)), "invalid_token")


async def test_expired(app: FastAPI, client: httpx.AsyncClient, user: TestUser) -> None:
    ctx = app.state.ctx
    past = FrozenClock(ctx.clock.now() - timedelta(hours=3))
    codec = TokenCodec(
        SIGNING_KEY,
        issuer=ctx.settings.jwt_issuer,
        audience=ctx.settings.jwt_audience,
        clock=past,
    )
    token, _ = codec.issue(
        user_id=user.user_id,
        account_id=user.account_id,
        environment=Environment.SANDBOX,
        lifetime=3600,
    )
    await _assert_401(await client.get(ACCOUNT, headers=bearer(token)), "token_expired")


async def test_revoked(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    other = await login(client, user)
    revoked = await client.post("/sandbox/api/v4/auth/revoke", headers=bearer(token))
    assert revoked.status_code == 200
    await _assert_401(await client.get(ACCOUNT, headers=bearer(token)), "invalid_token")
    # Revoking one token leaves the others valid.
    assert (await client.get(ACCOUNT, headers=bearer(other))).status_code == 200


async def test_other_environment(client: httpx.AsyncClient, user: TestUser) -> None:
    sandbox_token = await login(client, user, base="/sandbox")
    await _assert_401(
        await client.get("/api/v4/account", headers=bearer(sandbox_token)), "wrong_environment"
    )
    production_token = await login(client, user, base="")
    await _assert_401(
        await client.get(ACCOUNT, headers=bearer(production_token)), "wrong_environment"
    )
    assert (await client.get("/api/v4/account", headers=bearer(production_token))).json()[
        "environment"
    ] == "production"


async def test_token_of_another_audience(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    ctx = app.state.ctx
    codec = TokenCodec(
        SIGNING_KEY, issuer=ctx.settings.jwt_issuer, audience="other-api", clock=ctx.clock
    )
    token, _ = codec.issue(
        user_id=user.user_id,
        account_id=user.account_id,
        environment=Environment.SANDBOX,
        lifetime=600,
    )
    await _assert_401(await client.get(ACCOUNT, headers=bearer(token)), "invalid_token")


async def test_token_without_required_claim(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user)
    claims = jwt.decode(token, options={"verify_signature": False})
    del claims["jti"]
    forged = jwt.encode(claims, SIGNING_KEY, algorithm="HS256", headers={"typ": "at+jwt"})
    await _assert_401(await client.get(ACCOUNT, headers=bearer(forged)), "invalid_token")
