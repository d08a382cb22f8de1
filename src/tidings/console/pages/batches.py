"""``/console/batches``: the account's batches, one batch's progress live, and cancel.

A batch is read as the API reads it (:class:`~tidings.bulk.repository.BatchRepository`
scoped by account and environment, :func:`~tidings.bulk.progress.batch_out`), and
canceled as the API cancels it (:func:`~tidings.bulk.progress.cancel_batch` in one
unit of the group committer, then the dispatcher is woken). The progress is also
served alone (``.../progress``) for the page's script, which refreshes it until the
batch is finished, and so is the list's table (``/batches/table``) while one of its
batches is unfinished.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ContextDep, SessionDep
from tidings.bulk.models import Batch
from tidings.bulk.progress import batch_out, cancel_batch
from tidings.bulk.repository import BatchRepository
from tidings.bulk.schemas import BatchOut
from tidings.console.csrf import CheckedFormDep
from tidings.console.errors import PageNotFound
from tidings.console.paths import CONSOLE, page_links
from tidings.console.rendering import render
from tidings.console.session import ConsoleUser, ConsoleUserDep
from tidings.context import AppContext
from tidings.core.errors import ApiError
from tidings.messages.status import Status

router = APIRouter(prefix=f"{CONSOLE}/batches", include_in_schema=False)

PAGE_SIZE = 50
REFRESH_SECONDS = 2
# The order a batch's counts are shown in: a message's life.
STATUS_ORDER = tuple(status.value for status in Status)


async def _batch(session: AsyncSession, user: ConsoleUser, batch_id: str) -> Batch:
    batch = await BatchRepository(session).get(user.account_id, user.environment, batch_id[:40])
    if batch is None:
        raise PageNotFound(
            f"There is no batch {batch_id[:40]} in this account's {user.environment}."
        )
    return batch


async def _out(ctx: AppContext, session: AsyncSession, batch: Batch) -> BatchOut:
    return batch_out(batch, await BatchRepository(session).counts(batch.id), ctx.clock.now())


def _done(batch: BatchOut) -> int:
    return batch.accepted - batch.pending


async def _listed(
    request: Request, user: ConsoleUser, ctx: AppContext, session: AsyncSession, template: str
) -> HTMLResponse:
    after = request.query_params.get("after", "")[:40] or None
    rows = await BatchRepository(session).page(
        user.account_id, user.environment, limit=PAGE_SIZE, after=after
    )
    shown = rows[:PAGE_SIZE]
    batches = [await _out(ctx, session, batch) for batch in shown]
    return render(
        request,
        template,
        user=user,
        batches=batches,
        done=_done,
        after=after,
        next_after=shown[-1].id if len(rows) > PAGE_SIZE else None,
        live=any(b.finished_at is None and b.status != "scheduled" for b in batches),
        refresh_seconds=REFRESH_SECONDS,
    )


@router.get("")
async def batches_page(
    request: Request, user: ConsoleUserDep, ctx: ContextDep, session: SessionDep
) -> HTMLResponse:
    return await _listed(request, user, ctx, session, "batches.html")


@router.get("/table")
async def batches_table(
    request: Request, user: ConsoleUserDep, ctx: ContextDep, session: SessionDep
) -> HTMLResponse:
    """The table alone, for the page's refresh while a batch is unfinished."""
    return await _listed(request, user, ctx, session, "batches_table.html")


def _batch_page(
    request: Request,
    user: ConsoleUser,
    batch: BatchOut,
    *,
    template: str = "batch.html",
    error: ApiError | None = None,
) -> HTMLResponse:
    return render(
        request,
        template,
        user=user,
        status=error.status if error else 200,
        switch_path="/batches",
        batch=batch,
        done=_done(batch),
        live=batch.finished_at is None and batch.status != "scheduled",
        statuses=[s for s in STATUS_ORDER if batch.counts.get(s)],
        refresh_seconds=REFRESH_SECONDS,
        canceled=request.query_params.get("canceled") == "1",
        error=error.detail if error else None,
    )


@router.get("/{batch_id}")
async def batch_page(
    batch_id: str, request: Request, user: ConsoleUserDep, ctx: ContextDep, session: SessionDep
) -> HTMLResponse:
    batch = await _out(ctx, session, await _batch(session, user, batch_id))
    return _batch_page(request, user, batch)


@router.get("/{batch_id}/progress")
async def batch_progress(
    batch_id: str, request: Request, user: ConsoleUserDep, ctx: ContextDep, session: SessionDep
) -> HTMLResponse:
    batch = await _out(ctx, session, await _batch(session, user, batch_id))
    return _batch_page(request, user, batch, template="batch_progress.html")


@router.post("/{batch_id}/cancel")
async def cancel(
    batch_id: str,
    request: Request,
    user: ConsoleUserDep,
    form: CheckedFormDep,
    ctx: ContextDep,
    session: SessionDep,
) -> Response:
    """Cancels what is not yet handed to a provider (409 once the batch is finished)."""
    found = await _batch(session, user, batch_id)
    now = ctx.clock.now()

    async def write(unit: AsyncSession) -> None:
        batch = await _batch(unit, user, found.id)
        await cancel_batch(unit, batch, now)

    try:
        await ctx.runtime.writer.submit(write)
    except ApiError as error:
        return _batch_page(request, user, await _out(ctx, session, found), error=error)
    ctx.runtime.wake()
    target = page_links(request).to(f"/batches/{found.id}", canceled="1")
    return RedirectResponse(target, status_code=303)
