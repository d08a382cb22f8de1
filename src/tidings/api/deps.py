"""Request dependencies shared by every router: context, session, environment, caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.auth.repository import TokenRepository
from tidings.auth.tokens import TokenClaims
from tidings.context import AppContext
from tidings.core.environments import Environment
from tidings.core.errors import Unauthorized
from tidings.http.environment import environment_of

_bearer = HTTPBearer(
    auto_error=False, bearerFormat="JWT", description="A token from /api/v4/auth/token."
)


# The dependencies are async although they await nothing: FastAPI runs a plain
# function dependency in its thread pool, a hand-off that costs more than they do.
async def get_context(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


async def get_session(
    ctx: Annotated[AppContext, Depends(get_context)],
) -> AsyncIterator[AsyncSession]:
    # Routes commit explicitly before answering; anything left uncommitted is rolled back.
    async with ctx.sessions() as session:
        yield session


def get_environment(request: Request) -> Environment:
    return environment_of(request.scope)


async def _environment_dependency(request: Request) -> Environment:
    return get_environment(request)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a user of an account, in one environment."""

    user_id: str
    account_id: str
    environment: Environment
    jti: str
    expires_at: datetime


def _claims_of(request: Request, ctx: AppContext, token: str) -> TokenClaims:
    state = request.scope.get("state", {})
    error = state.get("token_error")
    if error is not None:
        raise error
    claims = state.get("token_claims")
    if isinstance(claims, TokenClaims):
        return claims
    return ctx.tokens.decode(token)


def require_environment(request: Request, environment: Environment, *, issued: str) -> None:
    """Refuse a token (``issued``: how its message names it) of the other environment."""
    here = get_environment(request)
    if environment != here:
        raise Unauthorized(
            f"{issued} the {environment.value} environment; this is the {here.value} one.",
            code="wrong_environment",
        )


async def require_live(ctx: AppContext, user_id: str, jti: str, *, gone: str, revoked: str) -> None:
    """Refuse a token whose user is gone or disabled (``gone``) or that was revoked."""
    if ctx.token_states.is_known_good(jti):
        return
    # A session of its own, closed at once: the request may run long (a send waits
    # for its verdict) and must not hold a database connection meanwhile.
    async with ctx.sessions() as session:
        state = await TokenRepository(session).principal_state(user_id, jti)
    if state is None or state[0]:
        raise Unauthorized(gone)
    if state[1]:
        raise Unauthorized(revoked)
    ctx.token_states.remember_good(jti)


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ctx: Annotated[AppContext, Depends(get_context)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized(
            "Send 'Authorization: Bearer <token>'; get a token at /api/v4/auth/token."
        )
    claims = _claims_of(request, ctx, credentials.credentials)
    require_environment(request, claims.environment, issued="This token was issued for")
    await require_live(
        ctx,
        claims.user_id,
        claims.jti,
        gone="The user of this token no longer exists or is disabled.",
        revoked="This token has been revoked.",
    )
    return Principal(
        user_id=claims.user_id,
        account_id=claims.account_id,
        environment=claims.environment,
        jti=claims.jti,
        expires_at=claims.expires_at,
    )


ContextDep = Annotated[AppContext, Depends(get_context)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
EnvironmentDep = Annotated[Environment, Depends(_environment_dependency)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
