"""SQL for revoked tokens and the per-request principal check."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.accounts.models import User
from tidings.auth.models import RevokedToken


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def revoke(self, jti: str, *, expires_at: datetime, now: datetime) -> None:
        if await self._session.get(RevokedToken, jti) is None:
            self._session.add(RevokedToken(jti=jti, expires_at=expires_at, revoked_at=now))
            await self._session.flush()

    async def principal_state(self, user_id: str, jti: str) -> tuple[bool, bool] | None:
        """``(user_disabled, token_revoked)``, or None when the user is gone."""
        revoked = exists().where(RevokedToken.jti == jti)
        row = (
            await self._session.execute(
                select(User.disabled, revoked.label("revoked")).where(User.id == user_id)
            )
        ).first()
        if row is None:
            return None
        return bool(row[0]), bool(row[1])

    async def purge_expired(self, now: datetime) -> int:
        result = await self._session.execute(
            delete(RevokedToken).where(RevokedToken.expires_at < now)
        )
        return int(getattr(result, "rowcount", 0) or 0)
