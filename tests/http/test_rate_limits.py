"""Per-account rate limits: headers on every answer, 429 with Retry-After past the limit."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.support.databases import migrate_to_head
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.settings import RateLimitSettings, Settings


async def _app(settings: Settings, per_minute: int, anonymous: int) -> FastAPI:
    limited = settings.model_copy(
        update={
            "rate_limit": RateLimitSettings(per_minute=per_minute, anonymous_per_minute=anonymous)
        }
    )
    app = create_app(limited)
    await migrate_to_head(app)
    return app


async def test_headers_on_every_answer(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/api/v4/unknown", "/sandbox/api/v4/account"):
        answer = await client.get(path)
        for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
            assert name in answer.headers, (path, name)


async def test_account_limit(settings: Settings) -> None:
    app = await _app(settings, per_minute=5, anonymous=100)
    user = await create_test_user(app)
    other = await create_test_user(app, "grace@example.com")
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        token = await login(client, user)
        seen = []
        for _ in range(6):
            answer = await client.get("/sandbox/api/v4/account", headers=bearer(token))
            seen.append(answer.status_code)
            remaining = int(answer.headers["ratelimit-remaining"])
        assert seen == [200] * 5 + [429]
        assert remaining == 0
        assert answer.json()["code"] == "rate_limited"
        assert int(answer.headers["retry-after"]) >= 1
        # Another account keeps its own allowance.
        other_token = await login(client, other)
        assert (
            await client.get("/sandbox/api/v4/account", headers=bearer(other_token))
        ).status_code == 200
    await app.state.ctx.engine.dispose()


async def test_anonymous_limit_by_address(settings: Settings) -> None:
    app = await _app(settings, per_minute=100, anonymous=3)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        codes = [(await client.get("/api/v4/nothing")).status_code for _ in range(4)]
        health = await client.get("/healthz")
    assert codes == [404, 404, 404, 429]
    # Health checks are never refused, whatever the address spent.
    assert health.status_code == 200 and health.headers["ratelimit-remaining"] == "0"
    await app.state.ctx.engine.dispose()
