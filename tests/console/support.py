"""Signing in to the console from a test's HTTP client, as a browser would."""

from __future__ import annotations

import re

import httpx

from tests.support.users import TestUser

_TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def form_token(page: str) -> str:
    found = _TOKEN.search(page)
    assert found, "the page has no form with a csrf field"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, user: TestUser, *, base: str = "", password: str | None = None
) -> httpx.Response:
    """Open the sign-in form (which sets its cookie) and post it; the answer."""
    form = await client.get(f"{base}/console/sign-in")
    assert form.status_code == 200, form.text
    return await client.post(
        f"{base}/console/sign-in",
        data={
            "csrf": form_token(form.text),
            "username": user.username,
            "password": user.password if password is None else password,
        },
    )


async def signed_in_token(client: httpx.AsyncClient, base: str = "") -> str:
    """The CSRF token of the signed-in session, read from a page's sign-out form."""
    page = await client.get(f"{base}/console")
    assert page.status_code == 200, page.text
    return form_token(page.text)
