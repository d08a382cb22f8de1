"""The sending domains API against a DNS server on loopback: the records to publish
(split for 255-byte strings), pending, verified, then failing when a record is
changed or a stale extra one appears (with what DNS holds instead and a
domain.updated event); keys sealed at rest; production sends from an unverified
domain never leave unsigned; the sandbox's domain is simulated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.fakes.dns import FakeDns
from tests.fakes.smtp import FakeRelay
from tests.providers.helpers import production_token
from tests.providers.smtp.conftest import BOUNCES, publish, relay_config, verified_domain
from tests.providers.smtp.test_send import send_email
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer, login
from tidings.core.environments import Environment
from tidings.core.errors import Unprocessable
from tidings.core.ids import new_id
from tidings.domains.models import EmailDomain
from tidings.domains.sending import refuse_unverified_sender
from tidings.messages.models import OutboxEvent
from tidings.providers.base import OutboundMessage
from tidings.providers.errors import PermanentDeliveryError


def by_purpose(domain: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {record["purpose"]: record for record in domain["records"]}


async def test_records_pending_verified_then_failing(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, dns_server: FakeDns
) -> None:
    token = await production_token(app, client, user)
    answer = await client.post(
        "/api/v4/email/domains", json={"domain": "Example.COM"}, headers=bearer(token)
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["id"].startswith("dom_")
    assert created["domain"] == "example.com"
    assert created["status"] == "pending"
    records = by_purpose(created)
    assert set(records) == {"dkim", "dkim-ed25519", "spf", "dmarc", "return-path"}
    dkim = records["dkim"]
    assert dkim["type"] == "TXT"
    assert dkim["name"].endswith("-rsa._domainkey.example.com")
    assert dkim["value"].startswith("v=DKIM1; k=rsa; p=")
    assert "".join(dkim["strings"]) == dkim["value"]
    assert all(len(piece) <= 255 for piece in dkim["strings"]) and len(dkim["strings"]) > 1
    assert records["dkim-ed25519"]["value"].startswith("v=DKIM1; k=ed25519; p=")
    assert records["return-path"] == {
        "purpose": "return-path",
        "type": "MX",
        "name": BOUNCES,
        "value": f"10 {BOUNCES}",
        "status": "pending",
    }
    assert "PRIVATE" not in answer.text

    pending = await client.post("/api/v4/email/domains/example.com/verify", headers=bearer(token))
    assert pending.json()["status"] == "pending"
    assert by_purpose(pending.json())["dkim"]["found"] == []

    publish(dns_server, created)
    verified = await client.post(
        f"/api/v4/email/domains/{created['id']}/verify", headers=bearer(token)
    )
    assert verified.json()["status"] == "verified"
    assert {r["status"] for r in verified.json()["records"]} == {"verified"}

    # A stale key beside ours, and a second SPF record: reported, not passed.
    name = dkim["name"]
    dns_server.zone[(name, "TXT")] = [dkim["value"], "v=DKIM1; k=rsa; p=MIIBstale"]
    dns_server.zone[("example.com", "TXT")] = ["v=spf1 mx ~all", "v=spf1 -all"]
    failing = await client.post("/api/v4/email/domains/example.com/verify", headers=bearer(token))
    shown = failing.json()
    assert shown["status"] == "failing"
    assert by_purpose(shown)["dkim"]["status"] == "failing"
    assert "v=DKIM1; k=rsa; p=MIIBstale" in by_purpose(shown)["dkim"]["found"]
    assert by_purpose(shown)["spf"]["status"] == "failing"
    assert "more than one SPF" in by_purpose(shown)["spf"]["problem"]
    assert by_purpose(shown)["dmarc"]["status"] == "verified"
    async with app.state.ctx.sessions() as session:
        updates = list(
            await session.scalars(
                select(OutboxEvent)
                .where(
                    OutboxEvent.subject_id == created["id"], OutboxEvent.type == "domain.updated"
                )
                .order_by(OutboxEvent.id)
            )
        )
    # One when it became verified, one when records started failing.
    assert [update.payload["status"] for update in updates] == ["verified", "failing"]
    assert sorted(updates[-1].payload["failing"]) == ["dkim", "spf"]

    listed = await client.get("/api/v4/email/domains", headers=bearer(token))
    assert [item["domain"] for item in listed.json()["data"]] == ["example.com"]
    duplicate = await client.post(
        "/api/v4/email/domains", json={"domain": "example.com"}, headers=bearer(token)
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "domain_exists"
    deleted = await client.delete("/api/v4/email/domains/example.com", headers=bearer(token))
    assert deleted.status_code == 204
    gone = await client.get("/api/v4/email/domains/example.com", headers=bearer(token))
    assert gone.status_code == 404


async def test_keys_are_sealed_at_rest(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await production_token(app, client, user)
    await client.post(
        "/api/v4/email/domains", json={"domain": "sealed.example"}, headers=bearer(token)
    )
    async with app.state.ctx.sessions() as session:
        row = await session.scalar(
            select(EmailDomain).where(EmailDomain.domain == "sealed.example")
        )
    assert row is not None
    assert set(row.secrets) == {"rsa", "ed25519"}
    assert "PRIVATE KEY" not in row.secrets["rsa"]
    assert "PRIVATE KEY" in app.state.ctx.key_ring.open(row.secrets["rsa"])


async def test_a_bad_domain_name_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await production_token(app, client, user)
    answer = await client.post(
        "/api/v4/email/domains", json={"domain": "not a domain"}, headers=bearer(token)
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["code"] == "invalid_domain"


async def test_an_unverified_sender_is_refused_when_a_provider_signs(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, relay: FakeRelay
) -> None:
    token = await production_token(app, client, user)
    await add_provider(app, user.account_id, "email")  # the simulator signs nothing
    accepted = await send_email(client, token)
    assert accepted["status"] in ("queued", "sent", "delivered")
    await add_provider(
        app, user.account_id, "email", "smtp", config=relay_config(relay), priority=2
    )
    single = await client.post(
        "/api/v4/email/send",
        json={"to": "bob@example.org", "from": "news@example.com", "subject": "x", "text": "x"},
        headers=bearer(token),
    )
    assert single.status_code == 422, single.text
    assert single.json()["code"] == "sender_not_verified"
    assert single.json()["errors"][0]["field"] == "from"
    bulk = await client.post(
        "/api/v4/email/bulk",
        json={
            "from": "news@example.com",
            "subject": "x",
            "text": "x",
            "recipients": [{"to": "bob@example.org"}],
        },
        headers=bearer(token),
    )
    assert bulk.status_code == 422, bulk.text
    assert bulk.json()["code"] == "sender_not_verified"
    assert relay.received == []


async def test_the_outbound_service_never_signs_for_an_unverified_domain(
    app: FastAPI, user: TestUser
) -> None:
    """The last line, for a message accepted before its domain was deleted: it fails
    for good instead of leaving unsigned."""
    outbound = app.state.ctx.runtime.email.outbound
    content = {
        "from": "news@example.com",
        "to": ["bob@example.org"],
        "subject": "x",
        "text": "x",
        "tags": [],
        "tracking": {},
    }
    message = OutboundMessage(
        id=new_id("msg"),
        account_id=user.account_id,
        environment=Environment.PRODUCTION,
        channel="email",
        to="bob@example.org",
        sender="news@example.com",
        body="x",
        content=content,
        attempt=1,
    )
    with pytest.raises(PermanentDeliveryError) as refused:
        await outbound.prepare(message, date=datetime.now(UTC))
    assert refused.value.code == "sender_not_verified"


async def test_the_sandbox_answers_its_simulated_domain(
    client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    listed = await client.get("/sandbox/api/v4/email/domains", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"][0]["domain"] == "sandbox.test"
    assert listed.json()["data"][0]["status"] == "verified"
    refused = await client.post(
        "/sandbox/api/v4/email/domains", json={"domain": "example.com"}, headers=bearer(token)
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "sandbox_is_simulated"


async def test_the_send_rule_refuses_an_unverified_sender_in_production(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, dns_server: FakeDns
) -> None:
    token = await production_token(app, client, user)
    async with app.state.ctx.sessions() as session:
        with pytest.raises(Unprocessable) as refused:
            await refuse_unverified_sender(
                session, user.account_id, Environment.PRODUCTION, "News <news@example.com>"
            )
        assert refused.value.code == "sender_not_verified"
        assert refused.value.errors[0].field == "from"
        # The sandbox sends from anything.
        await refuse_unverified_sender(
            session, user.account_id, Environment.SANDBOX, "news@example.com"
        )
    await verified_domain(client, token, dns_server)
    async with app.state.ctx.sessions() as session:
        await refuse_unverified_sender(
            session, user.account_id, Environment.PRODUCTION, "News <news@EXAMPLE.com>"
        )
        with pytest.raises(Unprocessable):
            await refuse_unverified_sender(
                session, user.account_id, Environment.PRODUCTION, "news@other.example"
            )


async def test_the_periodic_check_finds_a_record_that_started_failing(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, dns_server: FakeDns
) -> None:
    token = await production_token(app, client, user)
    domain = await verified_domain(client, token, dns_server)
    service = app.state.ctx.runtime.email.domains
    assert await service.recheck_all() == 0
    dmarc = by_purpose(domain)["dmarc"]
    dns_server.zone[(dmarc["name"], "TXT")] = ["v=DMARC1; rua=mailto:x@example.com"]
    assert await service.recheck_all() == 0  # still verified: DKIM decides the status
    shown = (await client.get("/api/v4/email/domains/example.com", headers=bearer(token))).json()
    assert shown["status"] == "verified"
    assert by_purpose(shown)["dmarc"]["status"] == "failing"
    assert by_purpose(shown)["dmarc"]["problem"] == "the DMARC record has no p= policy"
    del dns_server.zone[(by_purpose(domain)["dkim"]["name"], "TXT")]
    assert await service.recheck_all() == 1
    shown = (await client.get("/api/v4/email/domains/example.com", headers=bearer(token))).json()
    assert shown["status"] == "failing"
    assert by_purpose(shown)["dkim"]["status"] == "failing"
