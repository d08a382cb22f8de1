"""Logging in and revoking: the use cases behind the token endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from tidings.accounts.repository import AccountRepository
from tidings.auth.passwords import verify_password
from tidings.auth.repository import TokenRepository
from tidings.auth.throttle import LoginThrottle
from tidings.auth.tokens import TokenClaims, TokenCodec
from tidings.core.clock import Clock
from tidings.core.environments import Environment
from tidings.core.errors import FieldError, Unauthorized, Unprocessable
from tidings.settings import Settings

# (stored hash or None for an unknown user, password) -> whether they match.
PasswordCheck = Callable[[str | None, str], Awaitable[bool]]


async def login(
    *,
    accounts: AccountRepository,
    codec: TokenCodec,
    throttle: LoginThrottle,
    settings: Settings,
    username: str,
    password: str,
    environment: Environment,
    address: str,
    expires_in: int | None,
    verify: PasswordCheck = verify_password,
) -> tuple[str, TokenClaims]:
    lifetime = expires_in if expires_in is not None else settings.token_lifetime_seconds
    if lifetime > settings.token_max_lifetime_seconds:
        maximum = settings.token_max_lifetime_seconds
        raise Unprocessable(
            f"expiresIn may be at most {maximum} seconds on this deployment.",
            errors=[FieldError("expiresIn", "less_than_equal", f"At most {maximum}.")],
        )
    # Counted before the hash runs, so a concurrent burst cannot outrun the count.
    attempt = throttle.reserve(username, address)
    try:
        user = await accounts.user_by_username(username)
        valid = await verify(user.password_hash if user else None, password)
    except BaseException:
        # Whatever broke, the password may have been checked: the attempt stays counted.
        attempt.failed()
        raise
    if user is None or not valid or user.disabled:
        delay = attempt.failed()
        if delay:
            await asyncio.sleep(delay)
        raise Unauthorized("The username or password is wrong.", code="invalid_credentials")
    attempt.succeeded()
    return codec.issue(
        user_id=user.id, account_id=user.account_id, environment=environment, lifetime=lifetime
    )


async def revoke(tokens: TokenRepository, clock: Clock, *, jti: str, expires_at: datetime) -> None:
    await tokens.revoke(jti, expires_at=expires_at, now=clock.now())
