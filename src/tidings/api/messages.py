"""Message endpoints for every channel: read, list, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, Principal, PrincipalDep, SessionDep
from tidings.core.errors import Conflict, NotFound
from tidings.core.pagination import Page, PageParams, next_cursor, page_params
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.messages import status_writer
from tidings.messages.repository import MessageFilters, MessageRepository
from tidings.messages.schemas import MessageOut, message_out
from tidings.messages.status import Status

router = APIRouter(prefix="/api/v4/messages", tags=["Messages"])

MessageId = Annotated[
    str,
    Path(max_length=64, description="A message id.", examples=["msg_01JDQ3W6V2X4N8ZB7YH5K9T0RM"]),
]


async def load_message(
    session: AsyncSession, principal: Principal, message_id: str, *, channel: str | None = None
) -> MessageOut:
    repo = MessageRepository(session)
    message = await repo.get(principal.account_id, principal.environment, message_id)
    if message is None or (channel is not None and message.channel != channel):
        raise NotFound(
            f"There is no {channel or ''} message {message_id!r} here.".replace("  ", " ")
        )
    return message_out(message, await repo.events(message.id))


@router.get(
    "/{id}",
    response_model=MessageOut,
    summary="Read a message",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def get_message(id: MessageId, principal: PrincipalDep, session: SessionDep) -> MessageOut:
    """One message of any channel, with every status change and its time."""
    return await load_message(session, principal, id)


@router.get(
    "",
    response_model=Page[MessageOut],
    summary="List messages",
    responses=problem_responses(*AUTHENTICATED),
)
async def list_messages(
    principal: PrincipalDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    channel: Annotated[Literal["whatsapp", "sms", "email"] | None, Query(examples=["sms"])] = None,
    status: Annotated[Status | None, Query(examples=["delivered"])] = None,
    direction: Annotated[
        Literal["outbound", "inbound"] | None, Query(examples=["outbound"])
    ] = None,
    to: Annotated[str | None, Query(max_length=320, examples=["+393331234567"])] = None,
    batch_id: Annotated[
        str | None,
        Query(alias="batchId", max_length=64, examples=["bat_01JDQ3W6V2X4N8ZB7YH5K9T0RM"]),
    ] = None,
    since: Annotated[datetime | None, Query(examples=["2026-11-24T00:00:00Z"])] = None,
    until: Annotated[datetime | None, Query(examples=["2026-11-25T00:00:00Z"])] = None,
) -> Page[MessageOut]:
    """Newest first; filter by channel, status, direction, recipient, batch and time."""
    filters = MessageFilters(
        channel=channel,
        status=status.value if status else None,
        direction=direction,
        to=to,
        batch_id=batch_id,
        since=since,
        until=until,
    )
    rows = await MessageRepository(session).page(
        principal.account_id, principal.environment, filters, limit=page.limit, after=page.after
    )
    shown, cursor = next_cursor(rows, page.limit)
    return Page[MessageOut](data=[message_out(row) for row in shown], next_cursor=cursor)


@router.post(
    "/{id}/cancel",
    response_model=MessageOut,
    summary="Cancel a scheduled or queued message",
    responses=problem_responses(*AUTHENTICATED, 404, 409),
)
async def cancel_message(
    id: MessageId, principal: PrincipalDep, session: SessionDep, ctx: ContextDep
) -> MessageOut:
    """A message not yet submitted becomes ``canceled`` (and its credits come back);
    one already submitted answers 409."""
    repo = MessageRepository(session)
    message = await repo.get(principal.account_id, principal.environment, id)
    if message is None:
        raise NotFound(f"There is no message {id!r} here.")
    # Taking the row out of the queue first means a dispatcher can no longer claim it.
    if not await repo.take_out_of_queue(message.id):
        raise Conflict(
            f"The message is {message.status} and can no longer be canceled.",
            code="not_cancelable",
        )
    await status_writer.change(session, message, Status.CANCELED, ctx.clock.now())
    await session.commit()
    return message_out(message, await repo.events(message.id))
