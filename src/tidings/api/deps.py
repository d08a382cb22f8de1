"""Request dependencies shared by every router: context, session, environment, caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import BaseRoute
from starlette.types import Scope

from tidings.auth.repository import TokenRepository
from tidings.context import AppContext
from tidings.core.environments import Environment
from tidings.core.errors import Unauthorized
from tidings.http.callers import NO_TOKEN, ProtectedRoute, verified_caller
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


def require_environment(request: Request, environment: Environment, *, issued: str) -> None:
    """Refuse a token (``issued``: how its message names it) of the other environment."""
    _require_environment(get_environment(request), environment, issued=issued)


def _require_environment(here: Environment, environment: Environment, *, issued: str) -> None:
    if environment != here:
        raise Unauthorized(
            f"{issued} the {environment.value} environment; this is the {here.value} one.",
            code="wrong_environment",
        )


async def require_live(ctx: AppContext, user_id: str, jti: str, *, gone: str, revoked: str) -> None:
    """Refuse a token whose user is gone or disabled (``gone``) or that was revoked."""
    if ctx.token_states.is_known_good(jti):
        return

    async def read() -> tuple[bool, bool] | None:
        # A session of its own, closed at once: the request may run long (a send
        # waits for its verdict) and must not hold a database connection meanwhile.
        async with ctx.sessions() as session:
            return await TokenRepository(session).principal_state(user_id, jti)

    state = await ctx.token_states.read_once(jti, read)
    if state is None or state[0]:
        raise Unauthorized(gone)
    if state[1]:
        raise Unauthorized(revoked)
    ctx.token_states.remember_good(jti)


async def verify_bearer(ctx: AppContext, scope: Scope, token: str) -> Principal:
    """The caller an access token names, once it is shown to be good here: signed,
    unexpired, of this request's environment, not revoked, its user enabled.
    Otherwise :class:`Unauthorized` saying what is wrong.

    The rate limiter calls this for every request with a token, before the body is
    read (see :mod:`tidings.http.callers`); :func:`get_principal` then finds the
    answer in the request's state.
    """
    claims = ctx.tokens.decode(token)
    _require_environment(
        environment_of(scope), claims.environment, issued="This token was issued for"
    )
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


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ctx: Annotated[AppContext, Depends(get_context)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized(NO_TOKEN)
    caller = verified_caller(request.scope)
    if isinstance(caller, Principal):
        return caller
    if isinstance(caller, Unauthorized):
        raise caller
    return await verify_bearer(ctx, request.scope, credentials.credentials)


def _needs_principal(dependant: Dependant) -> bool:
    return any(sub.call is get_principal or _needs_principal(sub) for sub in dependant.dependencies)


def routes_needing_principal(routes: Sequence[BaseRoute]) -> list[ProtectedRoute]:
    """The routes among ``routes`` that depend on :func:`get_principal`, for the
    gate that refuses them before the body is read.

    Read from the included routers' own routes, whose dependencies were resolved once
    when the router was defined: FastAPI's per-app route contexts
    (``iter_route_contexts``) resolve every route's dependencies again for each new
    app (about 65 ms each; the test suite makes hundreds of apps)."""
    found: list[ProtectedRoute] = []
    for route in _defined_routes(routes):
        dependant = getattr(route, "dependant", None)
        if isinstance(dependant, Dependant) and _needs_principal(dependant):
            found.append((route.path_regex, frozenset(route.methods or ()), route))
    return found


def _defined_routes(routes: Sequence[BaseRoute]) -> list[Any]:
    found: list[Any] = []
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            found += _defined_routes(original.routes)
        elif getattr(route, "dependant", None) is not None:
            found.append(route)
        else:
            found += list(iter_route_contexts([route]))
    return found


ContextDep = Annotated[AppContext, Depends(get_context)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
EnvironmentDep = Annotated[Environment, Depends(_environment_dependency)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
