"""Each class of the relay's replies, met on a real socket: 4xx retried, 5.1.1 at RCPT
a hard bounce (undelivered, suppressed, email.bounced), other 5xx failed with the
reply text, 535 credentials refused (the provider failing, the message waiting)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.fakes.dns import FakeDns
from tests.fakes.smtp import FakeRelay
from tests.providers.helpers import events, eventually, production_token, provider
from tests.providers.smtp.conftest import relay_config, verified_domain
from tests.providers.smtp.test_send import send_email
from tests.support.messages import wait_for
from tests.support.providers import add_provider
from tests.support.users import TestUser, bearer
from tidings.messages.models import OutboxEvent


@pytest.fixture(params=[True, False], ids=["pipelined", "one-at-a-time"])
def relay_pipelining(request: pytest.FixtureRequest) -> bool:
    """Every case here with a relay that offers PIPELINING and with one that does not."""
    return bool(request.param)


async def outbox_types(app: FastAPI, message_id: str) -> list[str]:
    async with app.state.ctx.sessions() as session:
        found = await session.scalars(
            select(OutboxEvent.type).where(OutboxEvent.subject_id == message_id)
        )
        return list(found)


async def test_a_temporary_refusal_is_retried(
    app: FastAPI, client: httpx.AsyncClient, ready: dict[str, Any]
) -> None:
    sent = await send_email(client, ready["token"], to="defer@example.org")
    done = await wait_for(client, ready["token"], sent["id"], {"failed"}, base="")
    assert done["attempts"] == 4
    retries = await events(app, sent["id"], "retry")
    assert retries[0].detail["error"]["code"] == "relay_deferred"
    # Later attempts may also meet the provider's circuit, opened by these refusals.
    assert {event.detail["error"]["code"] for event in retries} <= {
        "relay_deferred",
        "provider_unavailable",
    }
    assert "451 4.2.0" in retries[0].detail["error"]["message"]


async def test_an_unknown_mailbox_is_a_hard_bounce(
    app: FastAPI, client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    sent = await send_email(client, ready["token"], to="unknown@example.org")
    done = await wait_for(client, ready["token"], sent["id"], {"undelivered"}, base="")
    assert done["error"]["code"] == "bounced"
    assert "550 5.1.1" in done["error"]["message"]
    assert done["attempts"] == 1
    assert "email.bounced" in await outbox_types(app, sent["id"])
    again = await client.post(
        "/api/v4/email/send",
        json={"to": "unknown@example.org", "from": "news@example.com", "subject": "x", "text": "x"},
        headers=bearer(ready["token"]),
    )
    assert again.status_code == 422
    assert again.json()["code"] == "recipient_suppressed"
    assert relay.received == []


async def test_a_policy_refusal_fails_with_the_reply_text(
    client: httpx.AsyncClient, ready: dict[str, Any]
) -> None:
    sent = await send_email(client, ready["token"], to="policy@example.org")
    done = await wait_for(client, ready["token"], sent["id"], {"failed"}, base="")
    assert done["error"]["code"] == "relay_rejected"
    assert done["error"]["message"] == "554 5.7.1 Message refused by policy"
    assert done["attempts"] == 1


async def test_refused_credentials_mark_the_provider_failing(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: TestUser,
    relay: FakeRelay,
    dns_server: FakeDns,
) -> None:
    token = await production_token(app, client, user)
    await verified_domain(client, token, dns_server)
    wrong = await add_provider(
        app, user.account_id, "email", "smtp", config=relay_config(relay, password="wrong")
    )
    good = await add_provider(
        app, user.account_id, "email", "smtp", config=relay_config(relay), priority=2
    )
    sent = await send_email(client, token)

    async def failing() -> bool:
        shown = await provider(client, token, wrong)
        return bool(shown["health"] == "failing")

    await eventually(failing, "the provider is failing")
    shown = await provider(client, token, wrong)
    assert shown["lastError"]["code"] == "credentials_refused"
    assert shown["config"]["password"] == "********"
    # The message moved on to the working provider without spending an attempt.
    done = await wait_for(client, token, sent["id"], {"sent"}, base="")
    assert done["providerId"] == good
    assert done["attempts"] == 1


async def test_a_relay_with_an_untrusted_certificate_is_refused(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser, ready: dict[str, Any], relay: FakeRelay
) -> None:
    untrusted = await add_provider(
        app, user.account_id, "email", "smtp", config=relay_config(relay, tlsCaFile=None)
    )
    answer = await client.post(
        f"/api/v4/providers/{untrusted}/check", headers=bearer(ready["token"])
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] is False
    assert "could not be verified" in answer.json()["detail"]
    checked = await client.post(
        f"/api/v4/providers/{ready['provider']}/check", headers=bearer(ready["token"])
    )
    assert checked.json()["ok"] is True, checked.json()
