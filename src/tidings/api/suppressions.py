"""The email suppression list: ``GET /api/v4/email/suppressions`` and
``DELETE /api/v4/email/suppressions/{address}``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, PrincipalDep, SessionDep
from tidings.contacts.suppressions import Suppression, SuppressionRepository
from tidings.core.errors import FieldError, NotFound, Unprocessable
from tidings.core.pagination import Page, PageParams, page_params
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.http.schemas import ApiModel

router = APIRouter(prefix="/api/v4/email/suppressions", tags=["Email"])

Reason = Literal["bounce", "complaint", "unsubscribe"]
Address = Annotated[
    str,
    Path(min_length=1, max_length=320, description="The address.", examples=["ada@example.com"]),
]


class SuppressionOut(ApiModel):
    address: str = Field(examples=["ada@example.com"])
    reason: Reason
    message_id: str | None = Field(
        default=None,
        description="The message whose bounce, complaint or unsubscribe suppressed it.",
        examples=["msg_01JDQ3W6V2X4N8ZB7YH5K9T0RM"],
    )
    created_at: datetime


def suppression_out(row: Suppression) -> SuppressionOut:
    return SuppressionOut(
        address=row.address,
        reason=row.reason,
        message_id=row.message_id,
        created_at=row.created_at,
    )


@router.get(
    "",
    response_model=Page[SuppressionOut],
    summary="List suppressed email addresses",
    responses=problem_responses(*AUTHENTICATED),
)
async def list_suppressions(
    principal: PrincipalDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    reason: Annotated[Reason | None, Query(examples=["bounce"])] = None,
) -> Page[SuppressionOut]:
    """Addresses this account's emails no longer go to in this environment (hard
    bounces, complaints, unsubscribes), newest first; the cursor is an address."""
    repo = SuppressionRepository(session)
    after = None
    if page.after is not None:
        after = await repo.get(principal.account_id, principal.environment, page.after)
        if after is None:
            raise Unprocessable(
                "The cursor is not one this list gave.",
                errors=[FieldError("after", "invalid_cursor", "Use nextCursor as given.")],
            )
    rows = await repo.page(
        principal.account_id, principal.environment, limit=page.limit, after=after, reason=reason
    )
    shown = rows[: page.limit]
    cursor = shown[-1].address if len(rows) > page.limit else None
    return Page[SuppressionOut](data=[suppression_out(row) for row in shown], next_cursor=cursor)


@router.delete(
    "/{address}",
    status_code=204,
    summary="Remove an address from the suppression list",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def delete_suppression(
    address: Address, principal: PrincipalDep, ctx: ContextDep
) -> Response:
    """Sends to the address are allowed again (until it bounces, complains or
    unsubscribes again)."""

    async def remove(session: AsyncSession) -> bool:
        return await SuppressionRepository(session).remove(
            principal.account_id, principal.environment, address
        )

    if not await ctx.runtime.writer.submit(remove):
        raise NotFound(f"{address!r} is not on the suppression list.")
    return Response(status_code=204)
