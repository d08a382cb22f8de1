"""A message's other recipients (Cc, Bcc, a second To): a hard bounce of one of them,
mailed to the bounce listener or met at RCPT, is a ``bounced`` event of the message
naming that recipient, fires ``email.bounced`` and suppresses that address; the
message's status follows its first ``to`` alone, whose own bounce still counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.fakes.reports import arf, deliver, dsn
from tests.fakes.smtp import FakeRelay
from tests.providers.helpers import events, eventually
from tests.providers.smtp.conftest import BOUNCES
from tests.providers.smtp.test_replies import outbox_types
from tests.providers.smtp.test_reports import listener_port
from tests.providers.smtp.test_send import send_email
from tests.support.messages import wait_for
from tests.support.users import bearer
from tidings.messages.status import Status
from tidings.providers.smtp.mailreports import MailReport, RecipientStatus
from tidings.providers.smtp.reports import parse_report, reports_for


@pytest.fixture(params=[True, False], ids=["pipelined", "one-at-a-time"])
def relay_pipelining(request: pytest.FixtureRequest) -> bool:
    """Every case here with a relay that offers PIPELINING and with one that does not."""
    return bool(request.param)


async def suppressed(client: httpx.AsyncClient, token: str, address: str) -> bool:
    answer = await client.post(
        "/api/v4/email/send",
        json={"to": address, "from": "news@example.com", "subject": "x", "text": "x"},
        headers={**bearer(token), "Prefer": "respond-async"},
    )
    return bool(answer.status_code == 422 and answer.json()["code"] == "recipient_suppressed")


async def bounces(app: FastAPI, message_id: str) -> list[str]:
    return [str(event.detail["recipient"]) for event in await events(app, message_id, "bounced")]


async def test_a_cc_bounce_mailed_back_suppresses_the_cc_and_leaves_the_status(
    app: FastAPI, client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    token = ready["token"]
    sent = await send_email(
        client, token, to="ann@example.org", cc="Gone <gone-cc@example.org>", bcc="bcc@example.org"
    )
    await wait_for(client, token, sent["id"], {"sent"}, base="")
    [received] = await relay.wait_for(1)
    port = await listener_port(app)
    cc_bounce = dsn(
        recipient="gone-cc@example.org", action="failed", status="5.1.1", envelope_id=sent["id"]
    )
    await deliver(port, received.mail_from, cc_bounce)
    # The same bounce in other words (another MTA's notice): still one event.
    await deliver(port, received.mail_from, cc_bounce.replace(b"mx.example.net", b"mx2.example"))
    # The Bcc's delivery and delay notices change nothing.
    for action, status in (("delivered", "2.0.0"), ("delayed", "4.4.1")):
        notice = dsn(recipient="bcc@example.org", action=action, status=status, envelope_id="x")
        await deliver(port, received.mail_from, notice)

    async def cc_suppressed() -> bool:
        return await suppressed(client, token, "gone-cc@example.org")

    await eventually(cc_suppressed, "the Cc's address is suppressed")
    assert await bounces(app, sent["id"]) == ["gone-cc@example.org"]
    assert "email.bounced" in await outbox_types(app, sent["id"])
    shown = await client.get(f"/api/v4/messages/{sent['id']}", headers=bearer(token))
    assert shown.json()["status"] == "sent"
    assert shown.json()["error"] is None
    assert not await suppressed(client, token, "ann@example.org")
    assert not await suppressed(client, token, "bcc@example.org")

    # The message's own recipient bounces afterwards: that one moves the message.
    own = dsn(recipient="ann@example.org", action="failed", status="5.1.1", envelope_id="x")
    await deliver(port, received.mail_from, own)
    done = await wait_for(client, token, sent["id"], {"undelivered"}, base="")
    assert done["error"]["code"] == "bounced"
    assert sorted(await bounces(app, sent["id"])) == ["ann@example.org", "gone-cc@example.org"]
    assert await suppressed(client, token, "ann@example.org")

    listed = await client.get(
        "/api/v4/email/events",
        params={"type": "bounced", "messageId": sent["id"]},
        headers=bearer(token),
    )
    assert listed.status_code == 200, listed.text


async def test_a_cc_refused_at_rcpt_is_its_own_hard_bounce(
    app: FastAPI, client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    token = ready["token"]
    # The relay refuses "unknown" with 550 5.1.1 at RCPT, and "policy" with 5.7.1.
    sent = await send_email(
        client, token, to="kim@example.org", cc=["unknown@example.net", "policy@example.net"]
    )
    await wait_for(client, token, sent["id"], {"sent"}, base="")
    [received] = await relay.wait_for(1)
    assert received.rcpt_tos == ["kim@example.org"]

    async def cc_suppressed() -> bool:
        return await suppressed(client, token, "unknown@example.net")

    await eventually(cc_suppressed, "the refused Cc is suppressed")
    [bounce] = await events(app, sent["id"], "bounced")
    assert bounce.detail["recipient"] == "unknown@example.net"
    assert "5.1.1" in bounce.detail["error"]
    # A policy refusal is not the address's fault: not suppressed.
    assert not await suppressed(client, token, "policy@example.net")
    shown = await client.get(f"/api/v4/messages/{sent['id']}", headers=bearer(token))
    assert shown.json()["status"] == "sent"


async def test_a_complaint_naming_the_cc_suppresses_the_cc_and_leaves_the_status(
    app: FastAPI, client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    token = ready["token"]
    sent = await send_email(client, token, to="ann@example.org", cc="Carol <carol@example.org>")
    await wait_for(client, token, sent["id"], {"sent"}, base="")
    [received] = await relay.wait_for(1)
    # The Cc's mailbox provider's feedback loop (ARF, RFC 5965), at fbl@.
    report = arf(original=received.data, recipient="<Carol@example.org>")
    await deliver(await listener_port(app), f"fbl@{BOUNCES}", report)

    async def cc_suppressed() -> bool:
        return await suppressed(client, token, "carol@example.org")

    await eventually(cc_suppressed, "the Cc who complained is suppressed")
    [complaint] = await events(app, sent["id"], "complained")
    assert complaint.detail["recipient"] == "carol@example.org"
    assert "email.complained" in await outbox_types(app, sent["id"])
    assert not await suppressed(client, token, "ann@example.org")
    shown = await client.get(f"/api/v4/messages/{sent['id']}", headers=bearer(token))
    assert shown.json()["status"] == "sent"


def _report(*recipients: RecipientStatus) -> MailReport:
    return MailReport(kind="dsn", recipients=recipients)


def test_other_recipients_count_only_for_their_hard_bounces() -> None:
    at = datetime.now(UTC)
    others = ["ann@example.org", "CC@example.org", "full@example.org", "spam@example.org"]
    others.append("late@example.org")
    found = reports_for(
        _report(
            RecipientStatus("ann@example.org", "delivered", "2.0.0"),
            RecipientStatus("cc@example.org", "failed", "5.1.1", "smtp; 550 5.1.1 no such user"),
            RecipientStatus("full@example.org", "failed", "5.2.2"),
            RecipientStatus("spam@example.org", "failed", "5.7.1"),
            RecipientStatus("late@example.org", "delayed", "4.4.1"),
            RecipientStatus("stranger@example.org", "failed", "5.1.1"),
        ),
        "msg_01",
        "Ann@example.org",
        at,
        others,
    )
    assert [(r.external_id, r.status, r.event, r.recipient) for r in found] == [  # type: ignore[union-attr]
        ("msg_01:ann@example.org", Status.DELIVERED, None, None),
        ("msg_01:cc@example.org", Status.UNDELIVERED, "bounced", "cc@example.org"),
    ]


def test_a_refusal_naming_a_recipient_is_that_recipients() -> None:
    [report] = parse_report(
        {
            "type": "refusal",
            "id": "msg_01:cc@example.org",
            "recipient": "cc@example.org",
            "reply": "550 5.1.1 no",
            "status": "5.1.1",
            "at": datetime.now(UTC).isoformat(),
        }
    )
    assert report.recipient == "cc@example.org"  # type: ignore[union-attr]
    assert report.event == "bounced"  # type: ignore[union-attr]


async def test_a_deferred_first_recipient_keeps_the_message_from_the_cc_until_the_retry(
    client: httpx.AsyncClient, ready: dict[str, Any], relay: FakeRelay
) -> None:
    """The first ``to`` deferred at RCPT, its Cc taken: the message is retried and the
    Cc gets it once, with the retry. Pipelined, DATA was already accepted when the
    deferral was read: the connection is dropped before the message's end, so the
    relay discards it (one at a time, DATA is never sent)."""
    token = ready["token"]
    # "flaky" is answered 451 at its first two RCPTs, then taken.
    sent = await send_email(client, token, to="flaky@example.org", cc="ann@example.org")
    done = await wait_for(client, token, sent["id"], {"sent"}, base="")
    assert done["attempts"] == 3
    [received] = await relay.wait_for(1)
    assert received.rcpt_tos == ["flaky@example.org", "ann@example.org"]
    assert len(relay.received) == 1
