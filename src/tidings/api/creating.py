"""The answer of a creating POST under an optional ``Idempotency-Key``: the
earlier answer replayed, or the new resource (201) with its answer stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import Principal
from tidings.context import AppContext
from tidings.idempotency.service import (
    IdempotencyRepository,
    KeyScope,
    StoredAnswer,
    previous_answer,
    scope_of,
)

T = TypeVar("T")


async def create_once(
    ctx: AppContext,
    request: Request,
    principal: Principal,
    *,
    create: Callable[[KeyScope | None], Awaitable[T | StoredAnswer]],
    show: Callable[[T], Awaitable[dict[str, Any]]],
    reload: Callable[[str], Awaitable[T]],
) -> JSONResponse:
    """``create`` makes the resource (or finds the key taken); ``show`` is its
    answer; ``reload`` finds it again (or raises 404) when a replay comes before the
    first request stored its answer."""
    scope = await scope_of(request, principal.account_id, principal.environment.value)
    async with ctx.sessions() as session:
        earlier = await previous_answer(session, scope, ctx.clock.now())
    if earlier is None:
        outcome = await create(scope)
        if not isinstance(outcome, StoredAnswer):
            answer = await show(outcome)
            if scope is not None:
                key = scope

                async def remember(session: AsyncSession) -> None:
                    await IdempotencyRepository(session).store_answer(key, 201, answer)

                await ctx.runtime.writer.submit(remember)
            return JSONResponse(answer, status_code=201)
        earlier = outcome
    if earlier.body is None:
        return JSONResponse(await show(await reload(earlier.resource_id or "")), status_code=201)
    return JSONResponse(earlier.body, status_code=earlier.status)
