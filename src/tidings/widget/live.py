"""``GET /widget/api/stream?token=...``: the chat's changes as Server-Sent Events.

Delivery may run in another process (scale-out mode), so the stream reads the
database rather than listening in memory: every ``poll_interval_seconds`` it reads
the chat's newest :data:`WATCHED` messages and sends each one that is new or whose
status changed since it last looked. Comparing states, rather than following a
timestamp cursor, catches every change whatever order transactions commit in and
whatever time a provider put on its receipt.

Events (``data`` is JSON):

- ``message``: one message (the shape of :class:`~tidings.widget.views.WidgetMessage`);
  its ``id:`` line is the newest message id the stream has sent, which the browser
  hands back as ``Last-Event-ID`` when it reconnects.
- ``window``: the 24-hour window, when it opens or closes.
- ``reset``: more messages arrived while disconnected than the stream resends; the
  page reloads its history.
- ``expired``: the token ran out; the stream ends, and a reconnect is refused (401).

On every (re)connection the stream first sends the watched messages as they are now,
so a page misses nothing between loading its history and opening the stream; the
page replaces what it has by id. The stream never outlives its token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from tidings.api.deps import ContextDep
from tidings.context import AppContext
from tidings.messages.conversations import ConversationRepository
from tidings.widget.access import QueryWidgetDep
from tidings.widget.page import API_PATH
from tidings.widget.tokens import WidgetClaims
from tidings.widget.views import WidgetMessage, WindowState, widget_message, window_state

router = APIRouter(prefix=API_PATH, include_in_schema=False)

WATCHED = 50
RECONNECT_MS = 2000


def sse(event: str, data: object, event_id: str | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    # json.dumps never emits a raw newline, so the data is always one line.
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


class ChatWatch:
    """The watched messages of one chat as last sent, and what changed since."""

    def __init__(self, ctx: AppContext, claims: WidgetClaims) -> None:
        self._ctx = ctx
        self._claims = claims
        self._seen: dict[str, tuple[str, str | None]] = {}
        self.newest_id: str | None = None

    async def changes(self) -> tuple[list[WidgetMessage], bool]:
        """Messages new or changed since the last call (oldest first), and whether the
        window may have moved (a new inbound message arrived)."""
        async with self._ctx.sessions() as session:
            rows = await ConversationRepository(session).messages(
                self._claims.account_id,
                self._claims.environment,
                self._claims.contact,
                limit=WATCHED,
                after=None,
            )
        changed: list[WidgetMessage] = []
        arrived = []
        for row in reversed(rows[:WATCHED]):
            state = (row.status, row.error_code)
            if self._seen.get(row.id) == state:
                continue
            if row.id not in self._seen and row.direction == "inbound":
                arrived.append(row)
            self._seen[row.id] = state
            changed.append(widget_message(row))
        if arrived:
            # Shown now: the contact sees their messages read (in the background).
            self._ctx.runtime.read_marks.shown(arrived)
        inbound = bool(arrived)
        if rows:
            newest = rows[0].id
            self.newest_id = max(newest, self.newest_id or newest)
        # Forget what fell out of the watched set, so memory stays bounded.
        if len(self._seen) > 4 * WATCHED:
            keep = {row.id for row in rows}
            self._seen = {key: value for key, value in self._seen.items() if key in keep}
        return changed, inbound

    def oldest_watched(self) -> str | None:
        return min(self._seen) if self._seen else None

    @property
    def full(self) -> bool:
        return len(self._seen) >= WATCHED


async def chat_events(
    ctx: AppContext, claims: WidgetClaims, last_event_id: str | None
) -> AsyncIterator[str]:
    settings = ctx.settings.widget
    loop = asyncio.get_running_loop()
    watch = ChatWatch(ctx, claims)
    yield f"retry: {RECONNECT_MS}\n\n"
    window = await window_state(ctx, claims)
    yield sse("window", window.model_dump(mode="json", by_alias=True))
    changed, _ = await watch.changes()
    oldest = watch.oldest_watched()
    if last_event_id and watch.full and oldest is not None and last_event_id < oldest:
        yield sse("reset", {"reason": "More messages arrived than the stream resends."})
    for message in changed:
        yield sse("message", message.model_dump(mode="json", by_alias=True), watch.newest_id)
    last_sent = loop.time()
    while True:
        now = ctx.clock.now()
        remaining = (claims.expires_at - now).total_seconds()
        if remaining <= 0:
            yield sse("expired", {"detail": "This chat box has expired."})
            return
        await asyncio.sleep(min(settings.poll_interval_seconds, remaining))
        changed, inbound = await watch.changes()
        for message in changed:
            yield sse("message", message.model_dump(mode="json", by_alias=True), watch.newest_id)
            last_sent = loop.time()
        window_moved = inbound or (
            window.open and window.expires_at is not None and window.expires_at <= ctx.clock.now()
        )
        if window_moved:
            fresh = await window_state(ctx, claims)
            if fresh != window:
                window = fresh
                yield sse("window", _dump(window))
                last_sent = loop.time()
        if loop.time() - last_sent >= settings.keepalive_seconds:
            yield ": keep-alive\n\n"
            last_sent = loop.time()


def _dump(window: WindowState) -> dict[str, object]:
    return window.model_dump(mode="json", by_alias=True)


@router.get("/stream")
async def stream(
    claims: QueryWidgetDep,
    ctx: ContextDep,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    return StreamingResponse(
        chat_events(ctx, claims, last_event_id),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-store",
            # Proxies such as nginx would otherwise hold events back in a buffer.
            "X-Accel-Buffering": "no",
        },
    )
