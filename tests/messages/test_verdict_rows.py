"""On SQLite, verdicts read the rows of messages no request waits for narrowed to the
columns their recording uses (``verdicts.VERDICT_KEYS``) when no webhook endpoint is
enabled, and whole rows otherwise: the messages are stored alike (sent, retried,
failed, a late acceptance), and a request waiting for a message, even one that began
waiting once the rows were read, gets the answer the API shows for it. (PostgreSQL's
verdict reads its rows its own way: tests/messages/test_verdict_writes.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from tests.conftest import make_settings
from tests.support.messages import queued_sends
from tests.support.users import bearer
from tidings.core.clock import SystemClock
from tidings.messages import queue
from tidings.messages.models import Message
from tidings.messages.verdicts import Verdict, VerdictWriter
from tidings.messages.waiters import VerdictWaiters
from tidings.providers.base import ProviderRef
from tidings.providers.errors import PermanentDeliveryError, RetryableDeliveryError

SMS = "/sandbox/api/v4/sms/send"
PROVIDER = "prv_verdictrows"


class WaitersJoiningLate(VerdictWaiters):
    """Waiters of which one request begins waiting for ``late`` once the verdict has
    read its rows (after the first time it is asked about)."""

    def __init__(self, late: str) -> None:
        super().__init__()
        self._late = late
        self._asked = False

    def waiting(self, message_id: str) -> bool:
        if message_id == self._late:
            joined, self._asked = self._asked, True
            return joined
        return super().waiting(message_id)


@pytest.fixture
async def queued(
    data_dir: Path, sqlite_url: tuple[str, str | None]
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, str, list[str]]]:
    """An API process that does not dispatch, with five queued messages."""
    async with queued_sends(make_settings(data_dir, sqlite_url, dispatch=False), 5) as found:
        yield found


async def test_verdicts_store_the_same_and_answer_whole_messages(
    queued: tuple[FastAPI, httpx.AsyncClient, str, list[str]],
) -> None:
    app, http, token, ids = queued
    ctx = app.state.ctx
    waited, joining, retried, refused, taken_over = ids
    async with ctx.sessions() as session:
        await queue.lease(session, ids, owner="w:1", until=datetime.now(UTC) + timedelta(minutes=5))
        await session.execute(
            update(Message).where(Message.id == taken_over).values(lease_owner="w:2")
        )
        await session.commit()
    waiters = WaitersJoiningLate(joining)
    waiters.register(waited)
    writer = VerdictWriter(
        clock=SystemClock(), settings=ctx.settings.delivery, waiters=waiters, worker="w"
    )

    def accepted(message_id: str, external_id: str) -> Verdict:
        refs = (ProviderRef(external_id),)
        return Verdict(message_id, "w:1", provider="sandbox", provider_id=PROVIDER, refs=refs)

    batch = [
        accepted(waited, "ext-1"),
        accepted(joining, "ext-2"),
        Verdict(
            retried,
            "w:1",
            provider="sandbox",
            provider_id=PROVIDER,
            error=RetryableDeliveryError("provider_timeout", "No answer."),
        ),
        Verdict(
            refused,
            "w:1",
            provider="sandbox",
            provider_id=PROVIDER,
            error=PermanentDeliveryError("invalid_number", "No such number."),
        ),
        accepted(taken_over, "ext-5"),
    ]
    async with ctx.sessions() as session:
        settled = await writer.apply(session, batch)
        await session.commit()

    assert sorted(settled) == sorted([waited, joining, refused])
    assert settled[refused] is None
    for message_id in (waited, joining):
        shown = await http.get(f"/sandbox/api/v4/messages/{message_id}", headers=bearer(token))
        assert settled[message_id] == shown.json()
    async with ctx.sessions() as session:
        stored = {
            message.id: message
            for message in await session.scalars(select(Message).where(Message.id.in_(ids)))
        }
    for message_id in (waited, joining):
        message = stored[message_id]
        assert (message.status, message.provider_id, message.lease_owner) == (
            "sent",
            PROVIDER,
            None,
        )
        assert message.next_attempt_at is None
    assert stored[waited].provider_message_id == "ext-1"
    assert (stored[retried].status, stored[retried].error_code) == ("queued", "provider_timeout")
    assert stored[retried].next_attempt_at is not None and stored[retried].lease_owner is None
    assert (stored[refused].status, stored[refused].error_code) == ("failed", "invalid_number")
    # The status machine takes a late "sent" (naming the provider's id): the message
    # leaves the queue with it.
    late = stored[taken_over]
    assert (late.status, late.provider_message_id, late.lease_owner) == ("sent", "ext-5", None)
