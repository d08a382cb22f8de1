"""The domains pages against a DNS server on loopback: the records with their copy
buttons, pending then verified, what DNS holds instead of a record, the sandbox's
simulated domain, scoping and CSRF."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.console.support import sign_in, signed_in_token
from tests.fakes.dns import FakeDns
from tests.support.users import TestUser, create_test_user
from tidings.core.environments import Environment
from tidings.domains.service import DomainScope
from tidings.settings import Settings


@pytest.fixture
async def dns_server() -> AsyncIterator[FakeDns]:
    server = FakeDns()
    await server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(data_dir: Path, sqlite_url: tuple[str, str | None], dns_server: FakeDns) -> Settings:
    return make_settings(
        data_dir,
        sqlite_url,
        email={"bounce_domain": "bounces.test", "recheck_seconds": 0},
        dns={"nameservers": dns_server.nameservers},
    )


async def test_records_copy_verify_and_what_dns_holds(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, dns_server: FakeDns
) -> None:
    await sign_in(client, user)
    token = await signed_in_token(client)
    made = await client.post("/console/domains", data={"csrf": token, "domain": "Example.COM"})
    assert made.status_code == 303, made.text
    page_path = made.headers["location"]
    page = await client.get(page_path)
    assert page.status_code == 200
    domain = app.state.ctx.runtime.email.domains
    row = await domain.get(DomainScope(user.account_id, Environment.PRODUCTION), "example.com")
    records = domain.out(row)["records"]
    for record in records:
        # Each name and value is on the page with a copy button carrying it.
        assert f'data-copy="{html.escape(record["name"], quote=True)}"' in page.text
        assert f'data-copy="{html.escape(record["value"], quote=True)}"' in page.text
    assert page.text.count('<span class="status pending">pending</span>') >= len(records)
    assert "Copy as strings" in page.text  # the RSA key is longer than one TXT string

    # Publish them all, SPF next to a stale one: verified, and SPF says what is wrong.
    for record in records:
        values = [record["value"]]
        if record["purpose"] == "spf":
            values.append("v=spf1 -all")
        dns_server.zone[(record["name"], record["type"])] = values
    verified = await client.post(f"{page_path}/verify", data={"csrf": token})
    assert verified.status_code == 303
    after = await client.get(verified.headers["location"])
    assert "Looked up in DNS just now: verified." in after.text
    assert "more than one SPF record" in after.text
    assert "DNS holds instead:" in after.text and "<code>v=spf1 -all</code>" in after.text

    listed = await client.get("/console/domains")
    assert "example.com" in listed.text and "verified" in listed.text


async def test_the_sandbox_domain_is_simulated(client: httpx.AsyncClient, user: TestUser) -> None:
    await sign_in(client, user, base="/sandbox")
    token = await signed_in_token(client, "/sandbox")
    listed = await client.get("/sandbox/console/domains")
    assert "sandbox.test" in listed.text and "Add a domain" not in listed.text
    page = await client.get("/sandbox/console/domains/dom_sandbox")
    assert page.status_code == 200 and "Verify now" not in page.text
    refused = await client.post("/sandbox/console/domains", data={"csrf": token, "domain": "a.com"})
    assert refused.status_code == 409 and "simulated" in refused.text


async def test_scoped_and_csrf(app: FastAPI, client: httpx.AsyncClient, user: TestUser) -> None:
    other = await create_test_user(app, "grace@example.com")
    service = app.state.ctx.runtime.email.domains
    theirs = await service.create(DomainScope(other.account_id, Environment.PRODUCTION), "b.com")
    mine = await service.create(DomainScope(user.account_id, Environment.PRODUCTION), "a.com")
    await sign_in(client, user)
    token = await signed_in_token(client)
    assert (await client.get(f"/console/domains/{mine.id}")).status_code == 200
    assert (await client.get("/console/domains/a.com")).status_code == 200
    assert (await client.get(f"/console/domains/{theirs.id}")).status_code == 404
    assert (await client.get("/console/domains/b.com")).status_code == 404
    assert (await client.get(f"/sandbox/console/domains/{mine.id}")).status_code == 404
    for action in ("/verify", "/delete"):
        answer = await client.post(f"/console/domains/{theirs.id}{action}", data={"csrf": token})
        assert answer.status_code == 404, action
    assert (await client.post(f"/console/domains/{mine.id}/delete", data={})).status_code == 403
    removed = await client.post(f"/console/domains/{mine.id}/delete", data={"csrf": token})
    assert removed.status_code == 303
    assert (await client.get(f"/console/domains/{mine.id}")).status_code == 404
