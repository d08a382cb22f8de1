"""The seed's quick start for real: a contact writes in through Meta's webhook (the
window opens, ``message.received`` fires), ``POST /api/v4/whatsapp/chats/{id}/message``
reaches the Graph fake as a valid text message, and ``sent``, ``delivered``, ``read``
come back as Meta's signed status webhooks and become Tidings events, in order."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from tests.fakes.graph_api import GraphApi
from tests.providers.helpers import eventually, read
from tests.providers.whatsapp_cloud.conftest import Business, outbox
from tests.support.users import bearer
from tidings.messages.models import MessageEvent

CONTACT = "+393331234567"


async def test_seed_send_reaches_graph_and_statuses_come_back_in_order(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    account = business.user.account_id
    inbound_wamid = await graph.contact_writes(CONTACT, "Hi! Is my order on its way?")

    async def received() -> bool:
        return any(e.type == "message.received" for e in await outbox(app, account))

    await eventually(received, "message.received")
    event = next(e for e in await outbox(app, account) if e.type == "message.received")
    assert event.payload["from"] == CONTACT
    assert event.payload["body"] == "Hi! Is my order on its way?"
    assert event.payload["providerMessageId"] == inbound_wamid

    answer = await client.post(
        f"/api/v4/whatsapp/chats/{CONTACT}/message",
        json={"body": "Hello!"},
        headers=bearer(business.token),
    )
    assert answer.status_code in (200, 202), answer.text
    message_id = answer.json()["id"]

    async def read_back() -> bool:
        return bool((await read(client, business.token, message_id))["status"] == "read")

    await eventually(read_back, "read")
    assert graph.sent() == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CONTACT.removeprefix("+"),
            "type": "text",
            "biz_opaque_callback_data": message_id,
            "text": {"body": "Hello!", "preview_url": False},
        }
    ]
    sends = [r for r in graph.requests if r.path.endswith("/messages")]
    assert sends[0].headers["authorization"] == f"Bearer {graph.access_token}"
    message = await read(client, business.token, message_id)
    assert message["providerId"] == business.provider_id
    assert message["providerMessageId"].startswith("wamid.")
    await graph.settled()
    ours = [e.type for e in await outbox(app, account) if e.subject_id == message_id]
    assert ours == ["message.queued", "message.sent", "message.delivered", "message.read"]
    # Meta's pricing of each status is kept in that status's event.
    async with app.state.ctx.sessions() as session:
        details = list(
            await session.scalars(
                select(MessageEvent.detail).where(
                    MessageEvent.message_id == message_id,
                    MessageEvent.status.in_(("delivered", "read")),
                )
            )
        )
    assert details and all(d and d["pricing"]["pricing_model"] == "PMP" for d in details)
    assert graph.webhook_answers and all(code == 200 for code in graph.webhook_answers)
