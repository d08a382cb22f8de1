"""Signing in and out of the console: the cookie, the throttle, CSRF, revocation."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.console.support import form_token, sign_in, signed_in_token
from tests.support.users import TestUser, bearer, login
from tidings.console.session import COOKIE, SECURE_COOKIE


async def test_a_page_without_a_session_leads_to_sign_in_and_back(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    answer = await client.get("/sandbox/console/messages?channel=sms")
    assert answer.status_code == 303
    assert answer.headers["location"] == (
        "/sandbox/console/sign-in?next=%2Fsandbox%2Fconsole%2Fmessages%3Fchannel%3Dsms"
    )
    form = await client.get(answer.headers["location"])
    signed = await client.post(
        "/sandbox/console/sign-in",
        data={
            "csrf": form_token(form.text),
            "username": user.username,
            "password": user.password,
            "next": "/sandbox/console/messages?channel=sms",
        },
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/sandbox/console/messages?channel=sms"
    assert (await client.get(signed.headers["location"])).status_code == 200


async def test_the_session_cookie_over_http(client: httpx.AsyncClient, user: TestUser) -> None:
    answer = await sign_in(client, user)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE + "="))
    flags = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/" in flags
    assert "max-age=28800" in flags
    # Plain HTTP reaches the console from loopback only; a Secure cookie would not come back.
    assert "secure" not in flags


async def test_the_session_cookie_over_https(app: FastAPI, user: TestUser) -> None:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as https:
        answer = await sign_in(https, user)
        assert answer.status_code == 303
        cookies = answer.headers.get_list("set-cookie")
        cookie = next(c for c in cookies if c.startswith(SECURE_COOKIE + "="))
        flags = [part.strip().lower() for part in cookie.split(";")[1:]]
        assert {"secure", "httponly", "samesite=strict", "path=/"} <= set(flags)
        assert not any(c.startswith(COOKIE + "=") for c in cookies)
        assert (await https.get("/console")).status_code == 200


async def test_a_wrong_password_shows_the_form_again(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    answer = await sign_in(client, user, password="not the password")
    assert answer.status_code == 401
    assert "The username or password is wrong." in answer.text
    assert not any(c.startswith(COOKIE + "=") for c in answer.headers.get_list("set-cookie"))
    assert (await client.get("/console")).status_code == 303


async def test_the_api_login_throttle_applies(client: httpx.AsyncClient, user: TestUser) -> None:
    # Five failed checks for one username from one address, then 429 before any hash.
    for _ in range(5):
        assert (await sign_in(client, user, password="guess")).status_code == 401
    refused = await sign_in(client, user)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many failed logins" in refused.text
    # The API counts the same attempts.
    api = await client.post(
        "/api/v4/auth/token", json={"username": user.username, "password": user.password}
    )
    assert api.status_code == 429


async def test_sign_in_without_the_form_token_is_refused(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await client.get("/console/sign-in")
    answer = await client.post(
        "/console/sign-in", data={"username": user.username, "password": user.password}
    )
    assert answer.status_code == 403
    assert "This form has expired" in answer.text
    forged = await client.post(
        "/console/sign-in",
        data={"csrf": "x" * 43, "username": user.username, "password": user.password},
    )
    assert forged.status_code == 403


async def test_sign_out_needs_the_token_and_ends_the_session_everywhere(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    copied = client.cookies.get(COOKIE)
    refused = await client.post("/console/sign-out", data={})
    assert refused.status_code == 403
    assert refused.headers["content-security-policy"].startswith("default-src 'none'")
    assert (await client.get("/console")).status_code == 200

    token = await signed_in_token(client)
    answer = await client.post("/console/sign-out", data={"csrf": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"
    assert (await client.get("/console")).status_code == 303
    # A copy of the cookie taken before signing out opens nothing either.
    client.cookies.set(COOKIE, copied or "")
    again = await client.get("/console")
    assert again.status_code == 303
    assert any(c.startswith(COOKIE + '=""') for c in again.headers.get_list("set-cookie"))


async def test_a_session_is_not_an_access_token_nor_the_reverse(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    session = client.cookies.get(COOKIE) or ""
    assert (await client.get("/api/v4/account", headers=bearer(session))).status_code == 401
    access = await login(client, user, base="")
    client.cookies.set(COOKIE, access)
    assert (await client.get("/console")).status_code == 303


async def test_one_session_opens_both_environments(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    production = await client.get("/console")
    sandbox = await client.get("/sandbox/console")
    assert production.status_code == sandbox.status_code == 200
    assert 'href="/sandbox/console" aria-current="page"' not in production.text
    assert 'href="/sandbox/console" aria-current="page"' in sandbox.text
    assert 'href="/console" aria-current="page"' in production.text


async def test_next_never_leads_to_another_site(client: httpx.AsyncClient, user: TestUser) -> None:
    for target in ("//evil.example/console", "https://evil.example/", "/\\evil.example"):
        client.cookies.clear()
        form = await client.get("/console/sign-in")
        answer = await client.post(
            "/console/sign-in",
            data={
                "csrf": form_token(form.text),
                "username": user.username,
                "password": user.password,
                "next": target,
            },
        )
        assert answer.headers["location"] == "/console"


async def test_a_token_of_another_session_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as other:
        await sign_in(other, user)
        foreign = await signed_in_token(other)
    assert foreign != await signed_in_token(client)
    answer = await client.post("/console/sign-out", data={"csrf": foreign})
    assert answer.status_code == 403
    assert (await client.get("/console")).status_code == 200


async def test_a_refresh_after_the_session_ended_asks_for_a_reload(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    answer = await client.get(
        "/sandbox/console/messages/msg_x/timeline", headers={"X-Console-Refresh": "1"}
    )
    assert answer.status_code == 401
    assert "location" not in answer.headers


async def test_signed_in_pages_count_against_the_account_not_the_address(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    limits = app.state.ctx.settings.rate_limit
    assert limits.per_minute != limits.anonymous_per_minute
    anonymous = await client.get("/console/sign-in")
    assert anonymous.headers["ratelimit-limit"] == str(limits.anonymous_per_minute)
    await sign_in(client, user)
    for path in ("/console", "/sandbox/console"):
        page = await client.get(path)
        assert page.status_code == 200
        assert page.headers["ratelimit-limit"] == str(limits.per_minute)
    # The console's own stylesheet and script are never counted.
    before = (await client.get("/console")).headers["ratelimit-remaining"]
    static = await client.get("/console/static/console.css")
    assert static.status_code == 200
    after = (await client.get("/console")).headers["ratelimit-remaining"]
    assert int(before) - int(after) == 1
