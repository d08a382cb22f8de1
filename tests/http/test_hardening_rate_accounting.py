"""Who a request is counted against (issue 16, items 8 and 11).

Only a verified caller (a live token of this environment) spends its account's
allowance; anything else is counted against the client's address. Tracking
pixels, tracked links and one-click unsubscribes are not counted per address
(mailbox providers fetch them from a few addresses; the signed token in the URL
is the guard) but against one generous ceiling for the whole server.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.db import migrate
from tidings.settings import RateLimitSettings, Settings

GOOGLE_IMAGE_PROXY = ("66.249.84.1", 1)


async def _app(settings: Settings, **limits: int) -> FastAPI:
    app = create_app(settings.model_copy(update={"rate_limit": RateLimitSettings(**limits)}))
    await migrate.upgrade(app.state.ctx.engine)
    return app


def _client(app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 1)) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=client)
    return httpx.AsyncClient(transport=transport, base_url="https://127.0.0.1")


async def test_revoked_token_does_not_spend_the_account(settings: Settings) -> None:
    app = await _app(settings, per_minute=5, anonymous_per_minute=100)
    user = await create_test_user(app)
    async with _client(app) as client:
        revoked = await login(client, user)
        valid = await login(client, user)
        assert (
            await client.post("/sandbox/api/v4/auth/revoke", headers=bearer(revoked))
        ).status_code == 200
        refused = [
            (await client.get("/sandbox/api/v4/account", headers=bearer(revoked))).status_code
            for _ in range(10)
        ]
        assert refused == [401] * 10
        answer = await client.get("/sandbox/api/v4/account", headers=bearer(valid))
    # One revoke and this request: 2 of 5 spent, not 12.
    assert answer.status_code == 200
    assert answer.headers["ratelimit-remaining"] == "3"
    await app.state.ctx.engine.dispose()


async def test_token_of_the_other_environment_does_not_spend_the_account(
    settings: Settings,
) -> None:
    app = await _app(settings, per_minute=5, anonymous_per_minute=100)
    user = await create_test_user(app)
    async with _client(app) as client:
        sandbox_token = await login(client, user)
        refused = [
            (await client.get("/api/v4/account", headers=bearer(sandbox_token))).status_code
            for _ in range(10)
        ]
        assert refused == [401] * 10
        answer = await client.get("/sandbox/api/v4/account", headers=bearer(sandbox_token))
    assert answer.status_code == 200
    assert answer.headers["ratelimit-remaining"] == "4"
    await app.state.ctx.engine.dispose()


async def test_unverified_tokens_count_against_the_address(settings: Settings) -> None:
    app = await _app(settings, per_minute=100, anonymous_per_minute=3)
    user = await create_test_user(app)
    async with _client(app) as client:
        token = await login(client, user)  # the address's first request
        await client.post("/sandbox/api/v4/auth/revoke", headers=bearer(token))
        codes = [
            (await client.get("/sandbox/api/v4/account", headers=bearer(token))).status_code
            for _ in range(3)
        ]
    assert codes == [401, 401, 429]
    await app.state.ctx.engine.dispose()


async def test_tracking_and_unsubscribe_are_not_limited_per_address(settings: Settings) -> None:
    app = await _app(settings, anonymous_per_minute=10, tracking_per_minute=10_000)
    async with _client(app, GOOGLE_IMAGE_PROXY) as client:
        codes: set[int] = set()
        for _ in range(15):
            codes.add((await client.get("/t/o/whatever.token.gif")).status_code)
            codes.add((await client.get("/t/c/whatever.token")).status_code)
            codes.add(
                (
                    await client.post("/t/u/whatever.token", data={"List-Unsubscribe": "One-Click"})
                ).status_code
            )
            codes.add((await client.get("/sandbox/t/o/whatever.token.gif")).status_code)
        # The token is the guard (a forged one is a 404), not the address's allowance.
        assert codes == {404}
        # Anything else from that address still counts against it.
        assert (await client.get("/api/v4/nothing")).status_code == 404
    await app.state.ctx.engine.dispose()


async def test_tracking_has_a_global_ceiling(settings: Settings) -> None:
    app = await _app(settings, anonymous_per_minute=100, tracking_per_minute=5)
    codes = []
    for number in range(7):
        async with _client(app, (f"192.0.2.{number}", 1)) as client:
            codes.append((await client.get("/t/o/whatever.token.gif")).status_code)
    assert codes == [404] * 5 + [429, 429]
    await app.state.ctx.engine.dispose()
