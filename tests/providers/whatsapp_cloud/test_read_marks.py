"""Blue ticks: when a chat box shows a contact's messages, Meta is told the newest one
was read (once), and nothing is marked for chats no box shows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI

from tests.fakes.graph_api import GraphApi
from tests.providers.helpers import eventually
from tests.providers.whatsapp_cloud.conftest import Business
from tests.support.users import bearer
from tidings.widget.access import widget_codec
from tidings.widget.live import chat_events

ADA = "+393331234567"
BOB = "+393339876543"


async def next_event(events: AsyncIterator[str], timeout: float = 10) -> tuple[str, Any]:
    while True:
        chunk = await asyncio.wait_for(anext(events), timeout)
        fields = dict(
            line.split(": ", 1) for line in chunk.strip().splitlines() if not line.startswith(":")
        )
        if "event" in fields:
            return fields["event"], json.loads(fields["data"])


async def test_the_chat_box_marks_what_it_shows_read(
    app: FastAPI, client: httpx.AsyncClient, graph: GraphApi, business: Business
) -> None:
    first = await graph.contact_writes(ADA, "Hello?")
    await graph.contact_writes(BOB, "Another chat")
    answer = await client.post(
        "/api/v4/iframes/whatsapp/chat-box",
        json={"chatId": ADA},
        headers=bearer(business.token),
    )
    assert answer.status_code == 200, answer.text
    token = parse_qs(urlsplit(answer.json()["url"]).query)["token"][0]
    claims = widget_codec(app.state.ctx).decode(token)
    events = chat_events(app.state.ctx, claims, None)
    shown_bodies: list[str] = []

    async def watch() -> None:
        # The page reads the stream as it comes.
        while True:
            kind, data = await next_event(events, timeout=60)
            if kind == "message":
                shown_bodies.append(data["body"])

    watching = asyncio.create_task(watch())
    try:

        async def marked(wamid: str) -> bool:
            return wamid in graph.read_marks

        # The box shows Ada's message: it is marked read; Bob's chat is not shown.
        await eventually(lambda: marked(first), "the first message marked read")
        second = await graph.contact_writes(ADA, "Anyone there?")
        await eventually(lambda: marked(second), "the new message marked read")
        assert graph.read_marks == [first, second]
        assert shown_bodies == ["Hello?", "Anyone there?"]
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await events.aclose()  # type: ignore[attr-defined]
