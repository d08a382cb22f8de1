"""Sandbox and production: the /sandbox prefix, sandbox hosts, and data separation."""

from __future__ import annotations

import httpx
import pytest

from tests.support.databases import migrate_to_head
from tests.support.users import TestUser, bearer, create_test_user, login
from tidings.app import create_app
from tidings.settings import Settings


async def test_prefix_serves_the_sandbox(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user, base="/sandbox")
    answer = await client.get("/sandbox/api/v4/account", headers=bearer(token))
    assert answer.json()["environment"] == "sandbox"


async def test_plain_path_is_production(client: httpx.AsyncClient, user: TestUser) -> None:
    token = await login(client, user, base="")
    answer = await client.get("/api/v4/account", headers=bearer(token))
    assert answer.json()["environment"] == "production"


async def test_sandbox_host(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"sandbox_hosts": ["sandbox.example.com"]}))
    await migrate_to_head(app)
    user = await create_test_user(app)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox.example.com:8000"
    ) as client:
        token = await login(client, user, base="")
        answer = await client.get("/api/v4/account", headers=bearer(token))
        assert answer.json()["environment"] == "sandbox"
        other = await client.get("http://api.example.com/api/v4/account", headers=bearer(token))
        assert other.status_code == 401 and other.json()["code"] == "wrong_environment"
    await app.state.ctx.engine.dispose()


def test_sandbox_hosts_from_a_comma_separated_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_SANDBOX_HOSTS", "sandbox.example.com, sandbox.local")
    assert Settings().sandbox_hosts == ["sandbox.example.com", "sandbox.local"]
