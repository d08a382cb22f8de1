"""The status machine never moves a status backwards; receipts out of order or twice."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from tests.support.messages import statuses_of, wait_for
from tests.support.users import TestUser, bearer, login
from tidings.channels.base import StatusReport
from tidings.messages.status import FINAL, TERMINAL, Status, applies

PROGRESS = [Status.SCHEDULED, Status.QUEUED, Status.SENT, Status.DELIVERED, Status.READ]


@pytest.mark.parametrize(("current", "new"), list(itertools.product(Status, Status)))
def test_no_status_moves_backwards(current: Status, new: Status) -> None:
    result = applies(current, new)
    if current in TERMINAL or current == new:
        assert not result
    if current in PROGRESS and new in PROGRESS:
        assert result == (PROGRESS.index(new) > PROGRESS.index(current))
    if new == Status.RECEIVED:
        assert not result


def test_named_transitions() -> None:
    assert applies(Status.QUEUED, Status.FAILED)
    assert not applies(Status.SENT, Status.FAILED)
    assert applies(Status.SENT, Status.UNDELIVERED)
    assert not applies(Status.DELIVERED, Status.UNDELIVERED)
    assert applies(Status.SCHEDULED, Status.CANCELED)
    assert not applies(Status.SENT, Status.CANCELED)
    assert applies(Status.SENT, Status.READ)  # WhatsApp may skip "delivered"
    assert Status.DELIVERED in FINAL and Status.DELIVERED not in TERMINAL


async def _sent_message(client: httpx.AsyncClient, token: str) -> dict[str, object]:
    # +15550000003 is delivered and never read, so our own reports are the only others.
    answer = await client.post(
        "/sandbox/api/v4/whatsapp/chats/+15550000003/message",
        json={"body": "x"},
        headers=bearer(token),
    )
    return await wait_for(client, token, answer.json()["id"], {"delivered"})


async def test_late_and_duplicate_receipts(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    message = await _sent_message(client, token)
    inbound = app.state.ctx.runtime.inbound

    def report(status: Status) -> StatusReport:
        return StatusReport(
            provider="sandbox",
            provider_message_id=str(message["providerMessageId"]),
            status=status,
            at=datetime.now(UTC),
        )

    assert await inbound.report([report(Status.READ), report(Status.READ)]) == []
    assert await inbound.report([report(Status.DELIVERED), report(Status.SENT)]) == []
    final = await wait_for(client, token, str(message["id"]), {"read"})
    assert final["status"] == "read"
    assert statuses_of(final) == ["queued", "sent", "delivered", "read"]
    # The duplicate read was dropped; the late delivered and sent were already seen.
    assert [e["status"] for e in final["events"]].count("read") == 1


async def test_unknown_provider_ids_come_back(app: FastAPI) -> None:
    unknown = StatusReport(
        provider="sandbox",
        provider_message_id="nope",
        status=Status.DELIVERED,
        at=datetime.now(UTC),
    )
    assert await app.state.ctx.runtime.inbound.report([unknown]) == [unknown]


async def test_read_skipping_delivered(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    answer = await client.post(
        "/sandbox/api/v4/sms/send", json={"to": "+15550000003", "body": "x"}, headers=bearer(token)
    )
    body = answer.json()
    assert body["status"] == "sent"
    await app.state.ctx.runtime.inbound.report(
        [
            StatusReport(
                provider="sandbox",
                provider_message_id=body["providerMessageId"],
                status=Status.READ,
                at=datetime.now(UTC),
            )
        ]
    )
    final = await wait_for(client, token, body["id"], {"read"})
    assert final["status"] == "read"
