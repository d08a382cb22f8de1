"""``/api/v4/email/domains`` (spec section 7): an account's sending domains.

Thin: parse, call :class:`~tidings.domains.service.DomainService`, shape the answer.
A domain is named by its ``dom_`` id or by its name in the path.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import Field

from tidings.api.deps import ContextDep, Principal, PrincipalDep
from tidings.core.environments import Environment
from tidings.domains.service import DomainScope, DomainService
from tidings.http.openapi_responses import AUTHENTICATED, problem_responses
from tidings.http.schemas import ApiRequest

router = APIRouter(prefix="/api/v4/email/domains", tags=["Email"])

DomainKey = Annotated[
    str,
    Path(max_length=253, examples=["example.com"], description="A domain's name or dom_ id."),
]


class DomainCreate(ApiRequest):
    domain: str = Field(min_length=1, max_length=253, examples=["example.com"])


def _scope(principal: Principal) -> DomainScope:
    return DomainScope(principal.account_id, principal.environment)


def _service(ctx: Any) -> DomainService:
    service: DomainService = ctx.runtime.email.domains
    return service


@router.post(
    "",
    status_code=201,
    summary="Add a sending domain",
    responses=problem_responses(*AUTHENTICATED, 409, 422),
)
async def create_domain(
    body: DomainCreate, principal: PrincipalDep, ctx: ContextDep
) -> dict[str, Any]:
    """Makes the domain's DKIM keys (RSA-2048 and Ed25519, private keys sealed and
    never answered) and answers the DNS records to publish, exactly as they must be
    published. ``POST /{domain}/verify`` looks them up."""
    service = _service(ctx)
    return service.out(await service.create(_scope(principal), body.domain))


@router.get("", summary="List sending domains", responses=problem_responses(*AUTHENTICATED))
async def list_domains(principal: PrincipalDep, ctx: ContextDep) -> dict[str, Any]:
    service = _service(ctx)
    if principal.environment == Environment.SANDBOX:
        return {"data": [service.sandbox_out()]}
    return {"data": [service.out(row) for row in await service.all(_scope(principal))]}


@router.get(
    "/{domain}", summary="Read a sending domain", responses=problem_responses(*AUTHENTICATED, 404)
)
async def get_domain(domain: DomainKey, principal: PrincipalDep, ctx: ContextDep) -> dict[str, Any]:
    service = _service(ctx)
    if principal.environment == Environment.SANDBOX and domain in ("sandbox.test", "dom_sandbox"):
        return service.sandbox_out()
    return service.out(await service.get(_scope(principal), domain))


@router.delete(
    "/{domain}",
    status_code=204,
    summary="Remove a sending domain",
    responses=problem_responses(*AUTHENTICATED, 404, 409),
)
async def delete_domain(domain: DomainKey, principal: PrincipalDep, ctx: ContextDep) -> Response:
    await _service(ctx).delete(_scope(principal), domain)
    return Response(status_code=204)


@router.post(
    "/{domain}/verify",
    summary="Look a sending domain's records up in DNS",
    responses=problem_responses(*AUTHENTICATED, 404, 409, 422),
)
async def verify_domain(
    domain: DomainKey, principal: PrincipalDep, ctx: ContextDep
) -> dict[str, Any]:
    """Each record's status (``pending``, ``verified``, ``failing``) and, when it is
    not verified, what DNS holds instead (``found``) and why it does not pass."""
    service = _service(ctx)
    return service.out(await service.verify(_scope(principal), domain))
