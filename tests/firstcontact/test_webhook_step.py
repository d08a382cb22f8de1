"""The seed's webhook step (issue 17, item 3): a URL whose host does not resolve yet is
accepted, active, with a `warning`; its form and literal addresses are still checked
at creation, and every delivery checks the host again."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.users import TestUser, bearer, login

UNRESOLVABLE = "https://receiver.tidings-test.invalid/hook"  # .invalid never resolves


@pytest.mark.parametrize("base", ["/sandbox", ""])
async def test_an_unresolvable_host_is_accepted_with_a_warning(
    client: httpx.AsyncClient, user: TestUser, base: str
) -> None:
    token = await login(client, user, base=base)
    created = await client.post(
        f"{base}/api/v4/webhooks/create", headers=bearer(token), json={"url": UNRESOLVABLE}
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["status"] == "active" and hook["id"].startswith("whk_")
    assert hook["secret"].startswith("whsec_")
    assert "'receiver.tidings-test.invalid' does not resolve" in hook["warning"]
    assert "each delivery checks the URL again" in hook["warning"]


async def test_the_seed_pages_own_url_is_accepted(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    """Whether or not your-app.com resolves from this machine, the step works."""
    token = await login(client, user)
    created = await client.post(
        "/sandbox/api/v4/webhooks/create",
        headers=bearer(token),
        json={"url": "https://your-app.com/hook"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://receiver.tidings-test.invalid/hook", "must use https://"),
        ("https://10.0.0.7/hook", "is a private address"),
        ("https://169.254.169.254/latest", "a cloud metadata address"),
        ("https://user:pw@receiver.tidings-test.invalid/hook", "must not carry credentials"),
        ("ftp://receiver.tidings-test.invalid/hook", "http:// or https://"),
    ],
)
async def test_form_and_literal_addresses_are_still_refused(
    client: httpx.AsyncClient, user: TestUser, url: str, words: str
) -> None:
    token = await login(client, user, base="")
    refused = await client.post("/api/v4/webhooks/create", headers=bearer(token), json={"url": url})
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "unsafe_webhook_url"
    assert words in refused.json()["detail"]


async def test_each_delivery_checks_the_host_again(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    created = await client.post(
        "/sandbox/api/v4/webhooks/create", headers=bearer(token), json={"url": UNRESOLVABLE}
    )
    hook = created.json()["id"]
    tested = await client.post(f"/sandbox/api/v4/webhooks/{hook}/test", headers=bearer(token))
    assert tested.status_code in (200, 202), tested.text

    async def last_error() -> str | None:
        answer = await client.get(
            f"/sandbox/api/v4/webhooks/{hook}/deliveries", headers=bearer(token)
        )
        data = answer.json()["data"]
        return data[0]["lastError"] if data else None  # type: ignore[no-any-return]

    for _ in range(200):  # bounded: the first attempt runs within the poll interval
        if await last_error():
            break
        await asyncio.sleep(0.05)
    error = await last_error() or ""
    assert error.startswith("unsafe_webhook_url") and "does not resolve" in error
