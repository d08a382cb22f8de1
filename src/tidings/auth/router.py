"""HTTP endpoints: ``POST /api/v4/auth/token`` and ``POST /api/v4/auth/revoke``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from tidings.accounts.repository import AccountRepository
from tidings.api.deps import (
    ContextDep,
    EnvironmentDep,
    PrincipalDep,
    SessionDep,
    client_address,
)
from tidings.auth import service
from tidings.auth.repository import TokenRepository
from tidings.auth.schemas import RevokeResponse, TokenRequest, TokenResponse
from tidings.http.openapi_responses import AUTHENTICATED, COMMON, problem_responses

router = APIRouter(prefix="/api/v4/auth", tags=["Authentication"])


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Get a JWT access token",
    responses=problem_responses(*COMMON, 401),
)
async def issue_token(
    body: TokenRequest,
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    environment: EnvironmentDep,
) -> TokenResponse:
    """Exchange a username and password for a bearer token of this environment.

    Older tokens stay valid until they expire, so a client can renew without
    interruption. Attempts are counted before the password is checked: past the
    limit for one username from one address, or for one address, the answer is 429
    with `Retry-After`. A username's failures from everywhere only slow its failed
    answers down; its owner can still log in from another address.
    """
    token, claims = await service.login(
        accounts=AccountRepository(session),
        codec=ctx.tokens,
        throttle=ctx.login_throttle,
        settings=ctx.settings,
        username=body.username,
        password=body.password,
        environment=environment,
        address=client_address(request),
        expires_in=body.expires_in,
    )
    lifetime = int((claims.expires_at - claims.issued_at).total_seconds())
    return TokenResponse(token=token, expires_in=lifetime)


@router.post(
    "/revoke",
    response_model=RevokeResponse,
    summary="Revoke the presented token",
    responses=problem_responses(*AUTHENTICATED),
)
async def revoke_token(
    principal: PrincipalDep, ctx: ContextDep, session: SessionDep
) -> RevokeResponse:
    """Revoke the bearer token this request carries; it answers 401 from then on."""
    await service.revoke(
        TokenRepository(session), ctx.clock, jti=principal.jti, expires_at=principal.expires_at
    )
    await session.commit()
    ctx.token_states.forget(principal.jti)
    return RevokeResponse()
