"""Email events: ``GET /api/v4/email/events`` (the events, and their statistics)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from tidings.api.deps import PrincipalDep, SessionDep
from tidings.core.errors import FieldError, Unprocessable
from tidings.core.pagination import PageParams, page_params
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.http.schemas import ApiModel
from tidings.tracking.events import (
    EmailEventRepository,
    EventFilters,
    event_id,
    parse_event_id,
)

router = APIRouter(prefix="/api/v4/email", tags=["Email"])

EventType = Literal["delivered", "opened", "clicked", "bounced", "complained", "unsubscribed"]


class EmailEventOut(ApiModel):
    id: str = Field(examples=["mev_1234"])
    type: EventType
    message_id: str = Field(examples=["msg_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
    to: str = Field(examples=["ada@example.com"])
    at: datetime
    detail: dict[str, Any] | None = Field(
        default=None,
        description='E.g. {"first": true} on a message\'s first open or click, '
        '{"link": 0, "url": "..."} on a click, {"error": "..."} on a bounce.',
    )


class EmailStats(ApiModel):
    sent: int
    delivered: int
    opened: int = Field(description="Every open, repeats included.")
    unique_opens: int = Field(description="Messages opened at least once.")
    open_rate: float = Field(description="uniqueOpens / delivered.", examples=[0.25])
    clicked: int
    unique_clicks: int
    click_rate: float = Field(description="uniqueClicks / delivered.")
    bounced: int
    bounce_rate: float = Field(description="bounced / sent.")
    complaints: int
    unsubscribed: int


class EmailEventsPage(ApiModel):
    data: list[EmailEventOut]
    next_cursor: str | None = None
    stats: EmailStats


@router.get(
    "/events",
    response_model=EmailEventsPage,
    summary="List email events, with statistics",
    responses=problem_responses(*AUTHENTICATED),
)
async def list_email_events(
    principal: PrincipalDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    type: Annotated[EventType | None, Query(examples=["opened"])] = None,
    message_id: Annotated[
        str | None,
        Query(alias="messageId", max_length=64, examples=["msg_01JDQ3W6V2X4N8ZB7YH5K9T0RM"]),
    ] = None,
    batch_id: Annotated[
        str | None,
        Query(alias="batchId", max_length=64, examples=["bat_01JDQ3W6V2X4N8ZB7YH5K9T0RM"]),
    ] = None,
    since: Annotated[datetime | None, Query(examples=["2026-11-24T00:00:00Z"])] = None,
    until: Annotated[datetime | None, Query(examples=["2026-11-25T00:00:00Z"])] = None,
) -> EmailEventsPage:
    """Deliveries, opens, clicks, bounces, complaints and unsubscribes of this account's
    emails, newest first, and ``stats`` over the same messages and time range (rates
    over delivered messages; the bounce rate over sent ones)."""
    after = None
    if page.after is not None:
        after = parse_event_id(page.after)
        if after is None:
            raise Unprocessable(
                "The cursor is not one this list gave.",
                errors=[FieldError("after", "invalid_cursor", "Use nextCursor as given.")],
            )
    filters = EventFilters(
        type=type, message_id=message_id, batch_id=batch_id, since=since, until=until
    )
    repo = EmailEventRepository(session)
    rows = await repo.page(
        principal.account_id, principal.environment, filters, limit=page.limit, after=after
    )
    shown = rows[: page.limit]
    cursor = event_id(shown[-1].id) if len(rows) > page.limit else None
    stats = await repo.stats(principal.account_id, principal.environment, filters)
    return EmailEventsPage(
        data=[
            EmailEventOut(
                id=event_id(row.id),
                type=row.type,
                message_id=row.message_id,
                to=row.to,
                at=row.at,
                detail=row.detail,
            )
            for row in shown
        ],
        next_cursor=cursor,
        stats=EmailStats.model_validate(stats),
    )
