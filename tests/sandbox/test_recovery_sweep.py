"""After a crash, the recovery sweep resumes the reports a simulated message is owed,
visiting every candidate in turn however many are already settled."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import delete

from tests.support.messages import wait_for
from tests.support.users import TestUser, bearer, login
from tidings.channels.base import StatusReport
from tidings.core.clock import FrozenClock
from tidings.messages.models import MessageEvent
from tidings.messages.repository import MessageRepository
from tidings.sandbox.network import SandboxNetwork
from tidings.sandbox.recovery import SandboxRecovery


class Recording:
    async def report(self, reports: list[StatusReport]) -> list[StatusReport]:
        return []


async def test_sweep_reaches_a_stuck_message_behind_many_settled_ones(
    app: FastAPI, client: httpx.AsyncClient, user: TestUser
) -> None:
    token = await login(client, user)
    settled = []
    for index in range(5):
        answer = await client.post(
            "/sandbox/api/v4/sms/send",
            json={"to": f"+39333100000{index}", "body": "x"},
            headers=bearer(token),
        )
        settled.append(answer.json()["id"])
    for message_id in settled:
        await wait_for(client, token, message_id, {"delivered"})
    # A message whose receipts were lost with the process: sent, and nothing pending.
    stuck = await client.post(
        "/sandbox/api/v4/sms/send",
        json={"to": "+393331000009", "body": "x"},
        headers={**bearer(token), "Prefer": "respond-async"},
    )
    await wait_for(client, token, stuck.json()["id"], {"delivered"})
    async with app.state.ctx.sessions() as session:
        message = await MessageRepository(session).get_by_id(stuck.json()["id"])
        assert message is not None
        message.status = "sent"
        message.updated_at = message.updated_at + timedelta(seconds=1)
        await session.execute(
            delete(MessageEvent).where(
                MessageEvent.message_id == message.id, MessageEvent.status == "delivered"
            )
        )
        await session.commit()
        lost_id = message.provider_message_id
    assert lost_id is not None

    clock = FrozenClock(app.state.ctx.clock.now() + timedelta(minutes=5))
    network = SandboxNetwork(Recording(), clock, delay_seconds=60)
    recovery = SandboxRecovery(app.state.ctx.sessions, clock, network, interval=1, page_size=2)
    resumed = 0
    for _ in range(5):
        resumed += await recovery.sweep()
        if network.is_pending(lost_id):
            break
    assert network.is_pending(lost_id)
    assert resumed == 1
