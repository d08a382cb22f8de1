"""Webhook URLs a hostile or careless account may give: control characters, port 0,
special-purpose addresses, private services; refusals that never reveal what a name
resolves to; a bad stored URL failing its deliveries cleanly."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from tests.conftest import make_settings
from tests.support.users import TestUser, bearer, create_test_user, login
from tests.webhooks.conftest import FAST_WEBHOOKS
from tests.webhooks.hook_receiver import Receiver
from tests.webhooks.test_webhook_delivery import deliveries, eventually
from tidings.app import create_app
from tidings.db import migrate
from tidings.settings import Settings, WebhookSettings
from tidings.webhooks import ssrf
from tidings.webhooks.models import WebhookEndpoint
from tidings.webhooks.sender import Sender

SBX = "/sandbox/api/v4/webhooks"
PROD = "/api/v4/webhooks"


@pytest.fixture
async def token(client: httpx.AsyncClient, user: TestUser) -> str:
    return await login(client, user)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/ho\x00ok",
        "http://127.0.0.1:9/hook\r\nX-Injected: 1",
        "http://127.0.0.1:9/\thook",
        "http://127.0.0.1:9/hook\x7f",
        "http://127.0.0.1:9/hook\x85",
        "http://127.0.0.1:0/hook",
        "http://127.0.0.1:00/hook",
    ],
)
async def test_control_characters_and_port_zero_are_refused(
    client: httpx.AsyncClient, token: str, url: str
) -> None:
    answer = await client.post(f"{SBX}/create", json={"url": url}, headers=bearer(token))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "unsafe_webhook_url"
    assert answer.json()["errors"][0]["field"] == "url"


SPECIAL_PURPOSE = [
    "192.0.0.8",  # IETF protocol assignments
    "192.0.0.9",  # PCP anycast: "global" to Python, special-purpose to IANA
    "192.0.0.10",
    "192.31.196.1",  # AS112-v4
    "192.52.193.1",  # AMT
    "192.88.99.1",  # deprecated 6to4 relay anycast
    "192.175.48.1",  # AS112 direct delegation
    "198.18.0.1",  # benchmarking
    "240.0.0.1",
    "255.255.255.255",
    "0.1.2.3",
    "100::1",  # discard-only
    "2001::1",  # Teredo
    "2001:1::1",
    "2001:3::1",  # AMT
    "2001:4:112::1",  # AS112-v6
    "2001:20::1",  # ORCHIDv2
    "2001:db8::1",
    "2620:4f:8000::1",  # AS112 direct delegation
    "3fff::1",  # documentation (RFC 9637)
    "5f00::1",  # SRv6 SIDs
    "64:ff9b:1::1",  # local-use NAT64
    "fec0::1",  # deprecated site-local
]


@pytest.mark.parametrize("address", SPECIAL_PURPOSE)
def test_every_special_purpose_block_counts_as_private(address: str) -> None:
    assert ssrf.refusal(ipaddress.ip_address(address), allow_private=False) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::6810:85e5"])
def test_public_addresses_stay_allowed(address: str) -> None:
    assert ssrf.refusal(ipaddress.ip_address(address), allow_private=False) is None


async def test_production_refuses_192_0_0_8(client: httpx.AsyncClient, user: TestUser) -> None:
    prod_token = await login(client, user, base="")
    answer = await client.post(
        f"{PROD}/create", json={"url": "https://192.0.0.8/hook"}, headers=bearer(prod_token)
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "unsafe_webhook_url"


def _private_off(data_dir: Path, sqlite_url: tuple[str, str | None]) -> Settings:
    return make_settings(
        data_dir,
        sqlite_url,
        webhooks={**FAST_WEBHOOKS, "allow_private_in_sandbox": False},
    )


@pytest.fixture
async def strict_app(data_dir: Path, sqlite_url: tuple[str, str | None]) -> AsyncIterator[FastAPI]:
    application = create_app(_private_off(data_dir, sqlite_url))
    await migrate.upgrade(application.state.ctx.engine)
    async with application.router.lifespan_context(application):
        yield application


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


def test_private_destinations_are_off_by_default() -> None:
    assert WebhookSettings().allow_private_in_sandbox is False
    assert WebhookSettings().allow_private_in_production is False


async def test_refusals_never_reveal_what_a_name_resolves_to(strict_app: FastAPI) -> None:
    user = await create_test_user(strict_app)
    async with _client(strict_app) as client:
        token = await login(client, user)
        for url in ("http://localhost:9/hook", "http://127.0.0.1:9/hook", "http://[::1]:9/x"):
            answer = await client.post(f"{SBX}/create", json={"url": url}, headers=bearer(token))
            assert answer.status_code == 422, answer.text
            assert answer.json()["errors"][0]["field"] == "url"
        named = await client.post(
            f"{SBX}/create", json={"url": "http://localhost:9/hook"}, headers=bearer(token)
        )
        assert "127.0.0.1" not in named.text and "::1" not in named.text
        assert "localhost" in named.json()["detail"]


async def _hook(client: httpx.AsyncClient, token: str, url: str) -> dict[str, Any]:
    answer = await client.post(f"{SBX}/create", json={"url": url}, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def test_delivery_rechecks_the_address_without_revealing_it(
    data_dir: Path, sqlite_url: tuple[str, str | None], receiver: Receiver
) -> None:
    # Created while private destinations were allowed; delivered after they are not.
    allowed = create_app(make_settings(data_dir, sqlite_url, webhooks=FAST_WEBHOOKS))
    await migrate.upgrade(allowed.state.ctx.engine)
    async with allowed.router.lifespan_context(allowed):
        user = await create_test_user(allowed)
        async with _client(allowed) as client:
            token = await login(client, user)
            hook = await _hook(client, token, f"http://localhost:{receiver.port}/hook")
    strict = create_app(_private_off(data_dir, sqlite_url))
    async with strict.router.lifespan_context(strict), _client(strict) as client:
        token = await login(client, user)
        sent = await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
        assert sent.status_code in (200, 202), sent.text
        found: list[dict[str, Any]] = []

        async def attempted() -> bool:
            found[:] = await deliveries(client, token, hook["id"])
            return bool(found and found[0]["attemptLog"])

        await _eventually_async(attempted)
    error = found[0]["attemptLog"][0]["error"]
    assert error.startswith("unsafe_webhook_url"), error
    assert "127.0.0.1" not in error and "::1" not in error
    assert receiver.requests == []


async def _eventually_async(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_a_bad_stored_url_fails_its_deliveries_cleanly(
    app: FastAPI,
    client: httpx.AsyncClient,
    token: str,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = await _hook(client, token, receiver.url)
    good = await _hook(client, token, receiver.url)
    # A row written before URLs were checked this strictly (or by hand).
    async with app.state.ctx.sessions() as session:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == bad["id"])
            .values(url=f"http://127.0.0.1:{receiver.port}/ho\x00ok")
        )
        await session.commit()
    caplog.set_level(logging.INFO)
    for hook in (bad, good):
        answer = await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
        assert answer.status_code in (200, 202), answer.text
    finished: list[dict[str, Any]] = []

    async def given_up() -> bool:
        finished[:] = await deliveries(client, token, bad["id"])
        return bool(finished and finished[0]["status"] == "failed")

    await _eventually_async(given_up, timeout=20)
    attempts = finished[0]["attemptLog"]
    assert len(attempts) == len(FAST_WEBHOOKS["retry_schedule"]) + 1  # type: ignore[arg-type]
    assert all(a["error"].startswith("unsafe_webhook_url") for a in attempts)
    await eventually(lambda: len(receiver.delivered()) == 1)
    assert not [r for r in caplog.records if r.exc_info is not None]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_answers_of_private_addresses_are_never_kept(
    client: httpx.AsyncClient, token: str, receiver: Receiver
) -> None:
    receiver.answer = lambda _request: (200, {}, b'{"internal_secret": "s3cr3t"}')
    hook = await _hook(client, token, receiver.url)
    await client.post(f"{SBX}/{hook['id']}/test", headers=bearer(token))
    logged: list[dict[str, Any]] = []

    async def delivered() -> bool:
        logged[:] = await deliveries(client, token, hook["id"])
        return bool(logged and logged[0]["status"] == "delivered")

    await _eventually_async(delivered)
    assert "s3cr3t" not in str(logged)
    assert logged[0]["attemptLog"][0]["response"] is None
    assert logged[0]["attemptLog"][0]["statusCode"] == 200


async def _post_through(address: str, answer: bytes) -> str | None:
    class Reply(httpx.AsyncBaseTransport):
        """A receiver at the wire level: every request answered 200 with ``answer``."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, stream=httpx.ByteStream(answer))

    sender = Sender(timeout=2, excerpt_bytes=16, transport=Reply())
    try:
        target = ssrf.Target("https", "hooks.example.com", 443, (address,))
        outcome = await sender.post("https://hooks.example.com/x", target, {}, b"{}")
    finally:
        await sender.close()
    assert outcome.ok
    return outcome.excerpt


async def test_answers_of_public_addresses_are_kept_in_part() -> None:
    assert await _post_through("93.184.215.14", b"accepted, thanks" * 4) == "accepted, thanks"
    assert await _post_through("10.1.2.3", b'{"internal_secret": 1}') is None
    assert await _post_through("::ffff:127.0.0.1", b'{"internal_secret": 1}') is None
