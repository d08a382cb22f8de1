"""The status machine never moves a status backwards; receipts out of order or twice."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from tests.support.messages import statuses_of, wait_for
from tests.support.users import TestUser, bearer, login
from tidings.messages.status import FINAL, TERMINAL, Status, applies
from tidings.providers.base import RawReport

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


async def _report(app: FastAPI, message: dict[str, object], status: Status, key: str) -> None:
    """A receipt, stored in the inbox as the simulated network stores its own."""
    await app.state.ctx.runtime.inbox.store(
        str(message["providerId"]),
        [
            RawReport(
                dedupe_key=key,
                payload={
                    "id": message["providerMessageId"],
                    "status": status.value,
                    "at": datetime.now(UTC).isoformat(),
                },
            )
        ],
    )


async def test_late_and_duplicate_receipts(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    message = await _sent_message(client, token)
    # The same receipt twice under other keys (a network repeating itself with new
    # ids), then late ones: the status machine drops them all.
    await _report(app, message, Status.READ, "late-1")
    await _report(app, message, Status.READ, "late-2")
    await _report(app, message, Status.DELIVERED, "late-3")
    await _report(app, message, Status.SENT, "late-4")
    final = await wait_for(client, token, str(message["id"]), {"read"})
    assert final["status"] == "read"
    assert statuses_of(final) == ["queued", "sent", "delivered", "read"]
    # The duplicate read was dropped; the late delivered and sent were already seen.
    assert [e["status"] for e in final["events"]].count("read") == 1


async def test_read_skipping_delivered(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    answer = await client.post(
        "/sandbox/api/v4/sms/send", json={"to": "+15550000003", "body": "x"}, headers=bearer(token)
    )
    body = answer.json()
    assert body["status"] == "sent"
    await _report(app, body, Status.READ, "skip")
    final = await wait_for(client, token, body["id"], {"read"})
    assert final["status"] == "read"
