"""Production provider configuration per account and channel.

An operator sets it with ``tidings providers set``; the provider directory reads
it when a channel is first used and builds the provider once. The configuration
is typed by each provider kind (a pydantic model) and checked when it is set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, UtcDateTime


class ProviderConfig(Base):
    __tablename__ = "provider_configs"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ProviderConfigRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, account_id: str, channel: str) -> ProviderConfig | None:
        return await self._session.get(ProviderConfig, (account_id, channel))

    async def set(
        self, account_id: str, channel: str, kind: str, config: dict[str, Any], at: datetime
    ) -> None:
        row = await self.get(account_id, channel)
        if row is None:
            self._session.add(
                ProviderConfig(
                    account_id=account_id, channel=channel, kind=kind, config=config, updated_at=at
                )
            )
        else:
            row.kind, row.config, row.updated_at = kind, config, at
        await self._session.flush()

    async def remove(self, account_id: str, channel: str) -> None:
        await self._session.execute(
            delete(ProviderConfig).where(
                ProviderConfig.account_id == account_id, ProviderConfig.channel == channel
            )
        )

    async def for_account(self, account_id: str) -> list[ProviderConfig]:
        rows = await self._session.scalars(
            select(ProviderConfig).where(ProviderConfig.account_id == account_id)
        )
        return list(rows)


def config_lookup(sessions: async_sessionmaker[AsyncSession]) -> Any:
    async def lookup(account_id: str, channel: str) -> tuple[str, dict[str, Any]] | None:
        async with sessions() as session:
            row = await ProviderConfigRepository(session).get(account_id, channel)
        return None if row is None else (row.kind, dict(row.config))

    return lookup
