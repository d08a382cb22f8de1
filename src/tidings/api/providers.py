"""``/api/v4/providers`` (spec section 13): an account's connections to real networks.

Thin: parse, call :class:`~tidings.providers.service.ProviderService`, shape the
answer. The command line (``tidings providers``) calls the same service.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse

from tidings.api.creating import create_once
from tidings.api.deps import ContextDep, Principal, PrincipalDep
from tidings.core.pagination import Page, PageParams, next_cursor, page_params
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.idempotency.service import KeyScope, StoredAnswer
from tidings.providers.models import ProviderRow
from tidings.providers.schemas import (
    CheckOut,
    ProviderCreate,
    ProviderOut,
    ProviderUpdate,
    UnmatchedOut,
)
from tidings.providers.service import TenantScope

router = APIRouter(prefix="/api/v4/providers", tags=["Providers"])

ProviderId = Annotated[
    str,
    Path(max_length=64, examples=["prv_01JD8X3V7K2M4N6P8Q0R2S4T6V"], description="A provider id."),
]


def _scope(principal: Principal) -> TenantScope:
    return TenantScope(principal.account_id, principal.environment)


def _base_url(request: Request) -> str:
    return str(request.base_url)


@router.post(
    "",
    response_model=ProviderOut,
    status_code=201,
    summary="Add a provider",
    responses=problem_responses(*AUTHENTICATED, 409, 422),
)
async def create_provider(
    body: ProviderCreate, request: Request, principal: PrincipalDep, ctx: ContextDep
) -> JSONResponse:
    """Adds a connection to a real network (production only). The config is checked
    against the kind's settings (422 naming the fields); its secrets are sealed at
    rest and answered as ``********``. ``POST /{id}/check`` tries it without sending."""
    service = ctx.runtime.provider_service
    scope = _scope(principal)
    base = _base_url(request)

    async def create(key: KeyScope | None) -> ProviderRow | StoredAnswer:
        return await service.create(scope, body, key)

    async def show(row: ProviderRow) -> dict[str, object]:
        return service.out(row, base).model_dump(mode="json", by_alias=True)

    async def reload(provider_id: str) -> ProviderRow:
        return await service.row(scope, provider_id)

    return await create_once(ctx, request, principal, create=create, show=show, reload=reload)


@router.get(
    "",
    response_model=Page[ProviderOut],
    summary="List providers",
    responses=problem_responses(*AUTHENTICATED),
)
async def list_providers(
    request: Request,
    principal: PrincipalDep,
    ctx: ContextDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ProviderOut]:
    found = await ctx.runtime.provider_service.page(
        _scope(principal), after=page.after, limit=page.limit + 1, base_url=_base_url(request)
    )
    shown, cursor = next_cursor(found, page.limit)
    return Page[ProviderOut](data=shown, next_cursor=cursor)


@router.get(
    "/{id}",
    response_model=ProviderOut,
    summary="Read a provider",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def get_provider(
    id: ProviderId, request: Request, principal: PrincipalDep, ctx: ContextDep
) -> ProviderOut:
    return await ctx.runtime.provider_service.get(
        _scope(principal), id, base_url=_base_url(request)
    )


@router.patch(
    "/{id}",
    response_model=ProviderOut,
    summary="Change a provider",
    responses=problem_responses(*AUTHENTICATED, 404, 409, 422),
)
async def update_provider(
    id: ProviderId,
    body: ProviderUpdate,
    request: Request,
    principal: PrincipalDep,
    ctx: ContextDep,
) -> ProviderOut:
    """Fields left out keep their values; secrets left out of ``config`` (or sent back
    as ``********``) are kept."""
    return await ctx.runtime.provider_service.update(
        _scope(principal), id, body, base_url=_base_url(request)
    )


@router.delete(
    "/{id}",
    status_code=204,
    summary="Remove a provider",
    responses=problem_responses(*AUTHENTICATED, 404, 409),
)
async def delete_provider(id: ProviderId, principal: PrincipalDep, ctx: ContextDep) -> Response:
    """A provider whose messages are still in flight is disabled and hidden at once,
    and removed when they are final."""
    await ctx.runtime.provider_service.delete(_scope(principal), id)
    return Response(status_code=204)


@router.post(
    "/{id}/check",
    response_model=CheckOut,
    summary="Check a provider's connection",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def check_provider(id: ProviderId, principal: PrincipalDep, ctx: ContextDep) -> CheckOut:
    """Connects and authenticates without sending anything; ``ok`` false says why."""
    return await ctx.runtime.provider_service.check(_scope(principal), id)


@router.get(
    "/{id}/unmatched",
    response_model=Page[UnmatchedOut],
    summary="Reports that matched no message",
    responses=problem_responses(*AUTHENTICATED, 404),
)
async def unmatched_reports(
    id: ProviderId,
    principal: PrincipalDep,
    ctx: ContextDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[UnmatchedOut]:
    """What the provider reported about messages Tidings does not know (after waiting
    for them), and reports that could not be read, with why."""
    found = await ctx.runtime.provider_service.unmatched(
        _scope(principal), id, after=page.after, limit=page.limit + 1
    )
    shown, cursor = next_cursor(found, page.limit)
    return Page[UnmatchedOut](data=shown, next_cursor=cursor)
