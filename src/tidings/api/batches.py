"""Batches: ``GET /api/v4/batches``, ``GET /api/v4/batches/{id}`` and
``POST /api/v4/batches/{id}/cancel``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, PrincipalDep, SessionDep
from tidings.bulk.models import Batch
from tidings.bulk.progress import batch_out, cancel_batch
from tidings.bulk.repository import BatchRepository
from tidings.bulk.schemas import BatchOut
from tidings.core.errors import NotFound
from tidings.core.pagination import Page, PageParams, next_cursor, page_params
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses

router = APIRouter(prefix="/api/v4/batches", tags=["Bulk"])

BatchId = Annotated[
    str, Path(max_length=40, description="A batch id.", examples=["bat_01JDQ3W6V2X4N8ZB7YH5K9T0RM"])
]


async def load_batch(session: AsyncSession, principal: PrincipalDep, batch_id: str) -> Batch:
    batch = await BatchRepository(session).get(
        principal.account_id, principal.environment, batch_id
    )
    if batch is None:
        raise NotFound(f"No batch {batch_id!r} in this account and environment.")
    return batch


@router.get(
    "",
    response_model=Page[BatchOut],
    summary="List batches",
    responses=problem_responses(*AUTHENTICATED),
)
async def list_batches(
    principal: PrincipalDep,
    session: SessionDep,
    ctx: ContextDep,
    page: Annotated[PageParams, Depends(page_params)],
    channel: Annotated[Literal["whatsapp", "sms", "email"] | None, Query()] = None,
) -> Page[BatchOut]:
    """Newest first, each with its counts per status."""
    repo = BatchRepository(session)
    rows = await repo.page(
        principal.account_id,
        principal.environment,
        limit=page.limit,
        after=page.after,
        channel=channel,
    )
    shown, cursor = next_cursor(rows, page.limit)
    now = ctx.clock.now()
    return Page[BatchOut](
        data=[batch_out(batch, await repo.counts(batch.id), now) for batch in shown],
        next_cursor=cursor,
    )


@router.get(
    "/{id}",
    response_model=BatchOut,
    summary="A batch and its progress",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def get_batch(
    id: BatchId, principal: PrincipalDep, session: SessionDep, ctx: ContextDep
) -> BatchOut:
    """Counts per status (they always add up to ``accepted``), credits, and when it
    started and finished."""
    batch = await load_batch(session, principal, id)
    counts = await BatchRepository(session).counts(batch.id)
    return batch_out(batch, counts, ctx.clock.now())


@router.post(
    "/{id}/cancel",
    response_model=BatchOut,
    summary="Cancel what a batch has not yet sent",
    responses=problem_responses(*AUTHENTICATED, 404, 409),
)
async def cancel(id: BatchId, principal: PrincipalDep, ctx: ContextDep) -> BatchOut:
    """Messages not yet handed to a provider become ``canceled`` (their credits come
    back); those already in a provider's hands finish as they will."""
    now = ctx.clock.now()

    async def write(session: AsyncSession) -> BatchOut:
        batch = await load_batch(session, principal, id)
        await cancel_batch(session, batch, now)
        await session.flush()
        counts = await BatchRepository(session).counts(batch.id)
        return batch_out(batch, counts, now)

    answer = await ctx.runtime.writer.submit(write)
    ctx.runtime.wake()
    return answer
