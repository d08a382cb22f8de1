"""The console's Content-Security-Policy and other headers, on every kind of answer."""

from __future__ import annotations

import httpx

from tests.console.support import sign_in
from tests.support.users import TestUser
from tidings.console.headers import CONTENT_SECURITY_POLICY


def _policy(answer: httpx.Response) -> dict[str, str]:
    directives = answer.headers["content-security-policy"].split(";")
    return {d.strip().split(" ", 1)[0]: d.strip().partition(" ")[2] for d in directives}


async def test_pages_errors_and_redirects_carry_the_policy(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    answers = [
        await client.get("/console/sign-in"),
        await client.get("/sandbox/console"),  # the redirect to sign in
    ]
    await sign_in(client, user)
    answers += [
        await client.get("/console"),
        await client.get("/sandbox/console/messages"),
        await client.get("/console/no-such-page"),
    ]
    for answer in answers:
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        policy = _policy(answer)
        assert policy["script-src"] == "'self'"
        assert policy["style-src"] == "'self'"
        assert policy["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert answers[-1].status_code == 404


async def test_pages_have_no_inline_script_or_style(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    await sign_in(client, user)
    for path in ("/console", "/console/messages", "/sandbox/console"):
        page = (await client.get(path)).text
        assert "<script>" not in page
        assert "<style" not in page
        assert " style=" not in page
        assert " on" + "click=" not in page


async def test_static_files_are_served_from_the_package(client: httpx.AsyncClient) -> None:
    for name, media in (("console.css", "text/css"), ("console.js", "text/javascript")):
        for base in ("", "/sandbox"):
            answer = await client.get(f"{base}/console/static/{name}")
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith(media)
            assert answer.headers["x-content-type-options"] == "nosniff"
    assert (await client.get("/console/static/base.html")).status_code == 404
    assert (await client.get("/console/static/../session.py")).status_code == 404
