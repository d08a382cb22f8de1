"""Logging in and revoking: the use cases behind the token endpoints."""

from __future__ import annotations

import asyncio
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
) -> tuple[str, TokenClaims]:
    lifetime = expires_in if expires_in is not None else settings.token_lifetime_seconds
    if lifetime > settings.token_max_lifetime_seconds:
        maximum = settings.token_max_lifetime_seconds
        raise Unprocessable(
            f"expiresIn may be at most {maximum} seconds on this deployment.",
            errors=[FieldError("expiresIn", "less_than_equal", f"At most {maximum}.")],
        )
    throttle.check(username, address)
    user = await accounts.user_by_username(username)
    valid = await verify_password(user.password_hash if user else None, password)
    if user is None or not valid or user.disabled:
        delay = throttle.record_failure(username, address)
        if delay:
            await asyncio.sleep(delay)
        raise Unauthorized("The username or password is wrong.", code="invalid_credentials")
    throttle.record_success(username)
    return codec.issue(
        user_id=user.id, account_id=user.account_id, environment=environment, lifetime=lifetime
    )


async def revoke(tokens: TokenRepository, clock: Clock, *, jti: str, expires_at: datetime) -> None:
    await tokens.revoke(jti, expires_at=expires_at, now=clock.now())
