"""``/console/messages``: the account's messages in this environment, newest first.

Filters by channel, status, direction, recipient, batch and time, as
``GET /api/v4/messages`` does (the same repository query); the search box takes a
message id (opening it) or a recipient. Pages go on by the API's cursor.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tidings.api.deps import SessionDep
from tidings.console.filters import (
    CHANNELS,
    DIRECTIONS,
    PAGE_SIZE,
    STATUSES,
    message_query,
    time_field,
)
from tidings.console.paths import CONSOLE, page_links
from tidings.console.rendering import render
from tidings.console.session import ConsoleUserDep
from tidings.core.pagination import next_cursor
from tidings.messages.repository import MessageRepository

router = APIRouter(prefix=f"{CONSOLE}/messages", include_in_schema=False)

MESSAGE_ID_PREFIX = "msg_"


@router.get("")
async def messages_page(request: Request, user: ConsoleUserDep, session: SessionDep) -> Response:
    asked = message_query(request.query_params)
    repo = MessageRepository(session)
    not_found = None
    if asked.search.startswith(MESSAGE_ID_PREFIX):
        found = await repo.get(user.account_id, user.environment, asked.search)
        if found is not None:
            return RedirectResponse(
                page_links(request).to(f"/messages/{found.id}"), status_code=303
            )
        not_found = asked.search
    elif asked.search:
        # Anything else searched for is a recipient.
        asked = replace(asked, to=asked.search, search="")
    rows = await repo.page(
        user.account_id,
        user.environment,
        asked.filters(),
        limit=PAGE_SIZE,
        after=asked.after or None,
    )
    shown, cursor = next_cursor(rows, PAGE_SIZE)
    return render(
        request,
        "messages.html",
        user=user,
        asked=asked,
        messages=[] if not_found else shown,
        not_found=not_found,
        older=cursor,
        channels=CHANNELS,
        statuses=STATUSES,
        directions=DIRECTIONS,
        since_field=time_field(asked.since),
        until_field=time_field(asked.until),
    )
