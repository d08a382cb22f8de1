"""The smtp kind's tests: a fake relay (TLS by a trustme CA, AUTH, DSN), a loopback
DNS server, and an application whose email domains are checked against it, whose
return paths are on ``bounces.test`` and whose bounce listener runs on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.fakes.dns import FakeDns
from tests.fakes.smtp import PASSWORD, USERNAME, FakeRelay, relay_certificates
from tests.providers.helpers import FAST, app_running, production_token
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer
from tidings.providers.registry import KindRegistry
from tidings.providers.simulator import SIMULATOR
from tidings.providers.smtp import SMTP
from tidings.settings import Settings

BOUNCES = "bounces.test"
DOMAIN = "example.com"


@pytest.fixture
async def dns_server() -> AsyncIterator[FakeDns]:
    server = FakeDns()
    await server.start()
    yield server
    server.stop()


@pytest.fixture
def relay_pipelining() -> bool:
    """Whether the relay offers PIPELINING (as real relays do); the modules that test
    every reply class override this to run each case both ways."""
    return True


@pytest.fixture
async def relay(tmp_path: Path, relay_pipelining: bool) -> AsyncIterator[FakeRelay]:
    ca_file, context = relay_certificates(tmp_path)
    fake = FakeRelay(ca_file, pipelining=relay_pipelining)
    await fake.start(context)
    yield fake
    await fake.stop()


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None], dns_server: FakeDns) -> Settings:
    return make_settings(
        data_dir,
        sqlite_url,
        **FAST,
        email={"bounce_domain": BOUNCES, "recheck_seconds": 0},
        inbound_smtp={"host": "127.0.0.1", "port": 0},
        dns={"nameservers": dns_server.nameservers},
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with app_running(settings, kinds=KindRegistry([SIMULATOR, SMTP])) as application:
        yield application


def relay_config(relay: FakeRelay, **overrides: Any) -> dict[str, Any]:
    return {
        "host": "localhost",
        "port": relay.port,
        "security": "starttls",
        "username": USERNAME,
        "password": PASSWORD,
        "tlsCaFile": str(relay.ca_file),
        "timeoutSeconds": 5,
        **overrides,
    }


def publish(dns_server: FakeDns, domain: dict[str, Any]) -> None:
    for record in domain["records"]:
        dns_server.zone[(record["name"], record["type"])] = [record["value"]]


async def verified_domain(
    client: httpx.AsyncClient, token: str, dns_server: FakeDns, name: str = DOMAIN
) -> dict[str, Any]:
    created = await client.post(
        "/api/v4/email/domains", json={"domain": name}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text
    publish(dns_server, created.json())
    verified = await client.post(f"/api/v4/email/domains/{name}/verify", headers=bearer(token))
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "verified", verified.json()
    return dict(verified.json())


@pytest.fixture
async def ready(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, relay: FakeRelay, dns_server: FakeDns
) -> dict[str, Any]:
    """A production token, a verified example.com and an smtp provider on the relay."""
    token = await production_token(app, client, user)
    domain = await verified_domain(client, token, dns_server)
    provider_id = await add_provider(
        app, user.account_id, "email", "smtp", config=relay_config(relay, maxConnections=1)
    )
    return {"token": token, "domain": domain, "provider": provider_id}
