"""The console's session: signing in, the signed-in user of a request, signing out.

**Signing in** is the API's login (:func:`tidings.auth.service.login`): the same
username and password check, the same throttle (per username and address, per
address, and the slowdown per username), the same refusal of disabled users. What it
issues is not an access token: the codec signs with a key derived from the
deployment's signing key (label :data:`KEY_LABEL`) and names the console's audience,
so a session cookie is never accepted by the API, nor an access token as a session.

**The cookie** holds that signed token (user, account, session id, expiry):
``HttpOnly``, ``SameSite=Strict``, ``Path=/``, expiring with the token
(:data:`SESSION_SECONDS`, at most the deployment's longest token lifetime), and
``Secure`` with the ``__Host-`` name prefix when the request came over HTTPS (as the
transport middleware worked it out, proxies included). Plain HTTP only reaches here
from loopback (every other plain request is refused before routing).

One session opens both environments, as one user's password logs in to both.

**Each request** checks the signature and expiry, then that the user still exists and
is enabled and the session was not revoked (:func:`tidings.api.deps.require_live`,
with the API's short cache). **Signing out** revokes the session id in the table the
API's revocation uses, so a copied cookie stops working too.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.requests import cookie_parser
from starlette.types import Scope

from tidings.accounts.repository import AccountRepository
from tidings.api.deps import Principal, client_address, require_live
from tidings.auth import service as auth_service
from tidings.auth.repository import TokenRepository
from tidings.auth.tokens import TokenCodec
from tidings.console import csrf
from tidings.console.errors import SignInRefused, SignInRequired
from tidings.context import AppContext
from tidings.core.environments import Environment
from tidings.core.errors import TooManyRequests, Unauthorized
from tidings.core.tenancy import TenantScope
from tidings.http.environment import environment_of

KEY_LABEL = b"tidings console session v1"
AUDIENCE = "tidings-console"
SESSION_SECONDS = 8 * 3600
COOKIE = "tidings_console"
# Over HTTPS: the browser refuses a __Host- cookie unless it is Secure, has Path=/
# and no Domain, so no subdomain and no plain-HTTP page can set or shadow it.
SECURE_COOKIE = "__Host-tidings_console"
PRE_SESSION_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class ConsoleKeys:
    """The console's keys, derived once per application from its signing key."""

    sessions: TokenCodec
    csrf: bytes


def console_keys(ctx: AppContext) -> ConsoleKeys:
    return ConsoleKeys(
        sessions=TokenCodec(
            ctx.tokens.derive_key(KEY_LABEL),
            issuer=ctx.settings.jwt_issuer,
            audience=AUDIENCE,
            clock=ctx.clock,
        ),
        csrf=ctx.tokens.derive_key(csrf.KEY_LABEL),
    )


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """Who is signed in, and where they are looking: one account, one environment."""

    user_id: str
    username: str
    account_id: str
    account_name: str
    environment: Environment
    session_id: str
    expires_at: datetime
    csrf: str

    @property
    def tenant(self) -> TenantScope:
        """The scope of every read and write a page makes."""
        return TenantScope(self.account_id, self.environment)

    def principal(self) -> Principal:
        """The same caller as the API's, for the API's own use cases (``load_message``)."""
        return Principal(
            user_id=self.user_id,
            account_id=self.account_id,
            environment=self.environment,
            jti=self.session_id,
            expires_at=self.expires_at,
        )


def session_account_reader(ctx: AppContext) -> Callable[[Scope], str | None]:
    """For the rate limiter: the account of a request's session cookie whose signature
    and expiry hold (the user and revocation are checked later, by the page)."""
    codec = console_keys(ctx).sessions

    def account_of(scope: Scope) -> str | None:
        header = next((v for k, v in scope.get("headers", ()) if k == b"cookie"), None)
        if header is None:
            return None
        name = SECURE_COOKIE if scope.get("scheme") == "https" else COOKIE
        token = cookie_parser(header.decode("latin-1")).get(name)
        if not token:
            return None
        try:
            return codec.decode(token).account_id
        except Unauthorized:
            return None

    return account_of


def _context(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def keys_of(request: Request) -> ConsoleKeys:
    return request.app.state.console_keys  # type: ignore[no-any-return]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def cookie_name(request: Request, base: str = COOKIE) -> str:
    return f"__Host-{base}" if _secure(request) else base


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        cookie_name(request, name),
        value,
        max_age=max_age,
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        cookie_name(request), path="/", secure=_secure(request), httponly=True, samesite="strict"
    )


async def current_user(request: Request) -> ConsoleUser:
    """The signed-in user of ``request``, or :class:`SignInRequired`. Checked once per
    request (kept in the request's state)."""
    known = getattr(request.state, "console_user", None)
    if isinstance(known, ConsoleUser):
        return known
    token = request.cookies.get(cookie_name(request))
    if not token:
        raise SignInRequired()
    ctx = _context(request)
    keys = keys_of(request)
    try:
        claims = keys.sessions.decode(token)
        await require_live(
            ctx,
            claims.user_id,
            claims.jti,
            gone="This user no longer exists or is disabled.",
            revoked="This session has ended.",
        )
    except Unauthorized:
        raise SignInRequired("Your session has ended; sign in again.", clear=True) from None
    async with ctx.sessions() as session:
        accounts = AccountRepository(session)
        user = await accounts.get_user(claims.user_id)
        account = await accounts.get_account(claims.account_id)
    if user is None or account is None or user.account_id != claims.account_id:
        raise SignInRequired(clear=True)
    found = ConsoleUser(
        user_id=user.id,
        username=user.username,
        account_id=account.id,
        account_name=account.name,
        environment=environment_of(request.scope),
        session_id=claims.jti,
        expires_at=claims.expires_at,
        csrf=csrf.csrf_token(keys.csrf, claims.jti),
    )
    request.state.console_user = found
    return found


async def optional_user(request: Request) -> ConsoleUser | None:
    try:
        return await current_user(request)
    except SignInRequired:
        return None


ConsoleUserDep = Annotated[ConsoleUser, Depends(current_user)]


def pre_session_nonce(request: Request) -> str:
    """The random value the sign-in form's token is bound to: the browser's, if it
    already has one, else a new one (set it with :func:`set_pre_session_cookie`)."""
    nonce = request.cookies.get(cookie_name(request, csrf.PRE_SESSION_COOKIE))
    if nonce and len(nonce) == 32:
        return nonce
    return secrets.token_hex(16)


def pre_session_token(request: Request, nonce: str) -> str:
    return csrf.csrf_token(keys_of(request).csrf, "sign-in:" + nonce)


def set_pre_session_cookie(request: Request, response: Response, nonce: str) -> None:
    _set_cookie(request, response, csrf.PRE_SESSION_COOKIE, nonce, PRE_SESSION_SECONDS)


def pre_session_token_matches(request: Request, form: csrf.Form) -> bool:
    nonce = request.cookies.get(cookie_name(request, csrf.PRE_SESSION_COOKIE))
    if not nonce:
        return False
    return csrf.token_matches(
        keys_of(request).csrf, "sign-in:" + nonce, csrf.presented_token(request, form)
    )


async def sign_in(request: Request, response: Response, username: str, password: str) -> None:
    """Check the password as the API's login does and set the session cookie on
    ``response``; :class:`SignInRefused` (401, or 429 past the throttle) otherwise."""
    ctx = _context(request)
    lifetime = min(SESSION_SECONDS, ctx.settings.token_max_lifetime_seconds)
    try:
        async with ctx.sessions() as session:
            token, _claims = await auth_service.login(
                accounts=AccountRepository(session),
                codec=keys_of(request).sessions,
                throttle=ctx.login_throttle,
                settings=ctx.settings,
                username=username,
                password=password,
                environment=environment_of(request.scope),
                address=client_address(request),
                expires_in=lifetime,
            )
    except TooManyRequests as error:
        raise SignInRefused(error.detail, status=429, retry_after=error.retry_after) from None
    except Unauthorized as error:
        raise SignInRefused(error.detail, status=401) from None
    _set_cookie(request, response, COOKIE, token, lifetime)
    response.delete_cookie(
        cookie_name(request, csrf.PRE_SESSION_COOKIE),
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )


async def sign_out(request: Request, user: ConsoleUser, response: Response) -> None:
    """Revoke the session (everywhere it was copied) and drop the cookie."""
    ctx = _context(request)
    async with ctx.sessions() as session:
        await auth_service.revoke(
            TokenRepository(session), ctx.clock, jti=user.session_id, expires_at=user.expires_at
        )
        await session.commit()
    ctx.token_states.forget(user.session_id)
    clear_session_cookie(request, response)
