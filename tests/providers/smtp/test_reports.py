"""Reports arriving at the bounce listener over SMTP, for a message sent through the
relay: a DSN's success delivers it, a hard bounce makes it undelivered and suppressed
(email.bounced), a complaint at fbl@ suppresses (email.complained), a delay and an
out-of-office change nothing, and an address whose VERP signature does not match is
refused at RCPT."""

from __future__ import annotations

import base64
from typing import Any

import aiosmtplib
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.reports import arf, deliver, dsn, out_of_office
from tests.fakes.smtp import FakeRelay
from tests.providers.helpers import events, eventually
from tests.providers.smtp.conftest import BOUNCES
from tests.providers.smtp.test_replies import outbox_types
from tests.providers.smtp.test_send import send_email
from tests.support.messages import wait_for
from tests.support.users import bearer
from tidings.providers.models import InboxEvent


async def listener_port(app: FastAPI) -> int:
    listener = app.state.ctx.runtime.email.listener
    assert listener is not None
    await listener.ready.wait()
    assert listener.port is not None
    return int(listener.port)


async def sent_through_relay(
    client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay, to: str
) -> tuple[str, bytes, str]:
    """Send one email; its id, the MIME the relay took and its return path."""
    sent = await send_email(client, ready["token"], to=to)
    await wait_for(client, ready["token"], sent["id"], {"sent"}, base="")
    received = [item for item in await relay.wait_for(1) if to in item.rcpt_tos]
    return sent["id"], received[-1].data, received[-1].mail_from


async def test_a_dsn_success_delivers_the_message(
    app: FastAPI, client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    message_id, _, verp = await sent_through_relay(client, ready, relay, "bob@example.org")
    report = dsn(
        recipient="bob@example.org", action="delivered", status="2.0.0", envelope_id=message_id
    )
    await deliver(await listener_port(app), verp, report)
    await wait_for(client, ready["token"], message_id, {"delivered"}, base="")


async def test_a_dsn_hard_bounce_suppresses_and_tells_the_webhooks(
    app: FastAPI, client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    message_id, _, verp = await sent_through_relay(client, ready, relay, "gone@example.org")
    port = await listener_port(app)
    delayed = dsn(
        recipient="gone@example.org", action="delayed", status="4.4.1", envelope_id=message_id
    )
    await deliver(port, verp, delayed)
    await deliver(port, verp, out_of_office(to=verp))
    failed = dsn(
        recipient="gone@example.org", action="failed", status="5.1.1", envelope_id=message_id
    )
    await deliver(port, verp, failed)
    done = await wait_for(client, ready["token"], message_id, {"undelivered"}, base="")
    assert done["error"]["code"] == "bounced"
    assert "5.1.1" in done["error"]["message"]
    assert [event.detail["status"] for event in await events(app, message_id, "delayed")] == [
        "4.4.1"
    ]
    assert "email.bounced" in await outbox_types(app, message_id)
    again = await client.post(
        "/api/v4/email/send",
        json={"to": "gone@example.org", "from": "news@example.com", "subject": "x", "text": "x"},
        headers=bearer(ready["token"]),
    )
    assert again.json()["code"] == "recipient_suppressed"


async def test_a_policy_bounce_is_undelivered_but_not_suppressed(
    app: FastAPI, client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    message_id, _, verp = await sent_through_relay(client, ready, relay, "strict@example.org")
    report = dsn(
        recipient="strict@example.org", action="failed", status="5.7.1", envelope_id=message_id
    )
    await deliver(await listener_port(app), verp, report)
    done = await wait_for(client, ready["token"], message_id, {"undelivered"}, base="")
    assert done["error"]["code"] == "policy_refused"
    again = await send_email(client, ready["token"], to="strict@example.org")
    assert again["status"] in ("queued", "sent")


async def test_a_complaint_at_the_feedback_loop_address_suppresses(
    app: FastAPI, client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    message_id, original, _ = await sent_through_relay(client, ready, relay, "angry@example.org")
    report = arf(original=original, recipient="angry@example.org")
    await deliver(await listener_port(app), f"fbl@{BOUNCES}", report)

    async def seen() -> bool:
        return "email.complained" in await outbox_types(app, message_id)

    await eventually(seen, "the complaint is applied")
    again = await client.post(
        "/api/v4/email/send",
        json={"to": "angry@example.org", "from": "news@example.com", "subject": "x", "text": "x"},
        headers=bearer(ready["token"]),
    )
    assert again.json()["code"] == "recipient_suppressed"


async def test_a_forged_return_path_is_refused_at_rcpt(
    app: FastAPI, client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    message_id, _, verp = await sent_through_relay(client, ready, relay, "victim@example.org")
    local, _, domain = verp.partition("@")
    forged = f"{local[:-1]}{'a' if local[-1] != 'a' else 'b'}@{domain}"
    report = dsn(
        recipient="victim@example.org", action="failed", status="5.1.1", envelope_id=message_id
    )
    port = await listener_port(app)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await deliver(port, forged, report)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await deliver(port, f"postmaster@{BOUNCES}", report)
    listener = app.state.ctx.runtime.email.listener
    assert listener.handler.stored == 0
    shown = await client.get(f"/api/v4/messages/{message_id}", headers=bearer(ready["token"]))
    assert shown.json()["status"] == "sent"


async def test_a_report_is_committed_before_the_listener_answers(
    app: FastAPI, client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    """What makes a crash after ``250`` harmless: by the time the remote MTA reads
    ``250`` the raw report is a committed inbox row, readable from another
    connection, whatever the processor has done with it since."""
    message_id, _, verp = await sent_through_relay(client, ready, relay, "late@example.org")
    report = dsn(
        recipient="late@example.org", action="failed", status="5.1.1", envelope_id=message_id
    )
    await deliver(await listener_port(app), verp, report)
    engine = create_async_engine(app.state.ctx.settings.effective_database_url)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(InboxEvent.payload).where(InboxEvent.provider_id == ready["provider"])
                )
            ).all()
    finally:
        await engine.dispose()
    mails = [row[0] for row in rows if row[0]["type"] == "mail"]
    assert [mail["messageId"] for mail in mails] == [message_id]
    assert base64.b64decode(mails[0]["mail"]) == report
