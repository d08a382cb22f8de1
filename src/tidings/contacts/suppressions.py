"""The email suppression list, per account and environment (spec section 7).

Hard bounces, complaints and unsubscribes put an address on it (the inbound
processor, in the same transaction as the event); a send to any suppressed
address (to, cc or bcc) answers 422 ``recipient_suppressed``. Soft bounces are
retried and never suppress. Addresses are stored lower-cased.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, and_, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tidings.core.environments import Environment
from tidings.db.base import Base, UtcDateTime

REASONS = ("bounce", "complaint", "unsubscribe")
# The email event that puts its recipient on the list, and the reason recorded.
SUPPRESSING_EVENTS = {"bounced": "bounce", "complained": "complaint", "unsubscribed": "unsubscribe"}


class Suppression(Base):
    __tablename__ = "email_suppressions"
    __table_args__ = (
        Index("ix_email_suppressions_listing", "account_id", "environment", "created_at"),
    )

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    environment: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


def normalize(address: str) -> str:
    return address.strip().lower()


class SuppressionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        account_id: str,
        environment: Environment | str,
        address: str,
        *,
        reason: str,
        message_id: str | None,
        at: datetime,
    ) -> None:
        """Suppress the address; an address already on the list keeps its first entry.
        One statement (``ON CONFLICT DO NOTHING``), safe under concurrent writers."""
        values = {
            "account_id": account_id,
            "environment": Environment(environment).value,
            "address": normalize(address),
            "reason": reason,
            "message_id": message_id,
            "created_at": at,
        }
        if self._session.get_bind().dialect.name == "postgresql":
            await self._session.execute(
                postgresql_insert(Suppression).values(**values).on_conflict_do_nothing()
            )
        else:
            await self._session.execute(
                sqlite_insert(Suppression).values(**values).on_conflict_do_nothing()
            )

    async def all_addresses(self, account_id: str, environment: Environment) -> frozenset[str]:
        """Every suppressed address (lower-cased): one read for a whole batch."""
        rows = await self._session.scalars(
            select(Suppression.address).where(
                Suppression.account_id == account_id,
                Suppression.environment == environment.value,
            )
        )
        return frozenset(rows)

    async def suppressed(
        self, account_id: str, environment: Environment, addresses: Iterable[str]
    ) -> list[str]:
        """Which of the addresses are suppressed (lower-cased), in one query."""
        wanted = sorted({normalize(address) for address in addresses})
        if not wanted:
            return []
        rows = await self._session.scalars(
            select(Suppression.address).where(
                Suppression.account_id == account_id,
                Suppression.environment == environment.value,
                Suppression.address.in_(wanted),
            )
        )
        return sorted(rows)

    async def get(
        self, account_id: str, environment: Environment, address: str
    ) -> Suppression | None:
        return await self._session.get(
            Suppression, (account_id, environment.value, normalize(address))
        )

    async def page(
        self,
        account_id: str,
        environment: Environment,
        *,
        limit: int,
        after: Suppression | None = None,
        reason: str | None = None,
    ) -> list[Suppression]:
        """Newest first (address breaks ties), ``limit + 1`` rows."""
        query = select(Suppression).where(
            Suppression.account_id == account_id,
            Suppression.environment == environment.value,
        )
        if reason is not None:
            query = query.where(Suppression.reason == reason)
        if after is not None:
            query = query.where(
                or_(
                    Suppression.created_at < after.created_at,
                    and_(
                        Suppression.created_at == after.created_at,
                        Suppression.address < after.address,
                    ),
                )
            )
        rows = await self._session.scalars(
            query.order_by(Suppression.created_at.desc(), Suppression.address.desc()).limit(
                limit + 1
            )
        )
        return list(rows)

    async def remove(self, account_id: str, environment: Environment, address: str) -> bool:
        """True when the address was on the list."""
        result = await self._session.execute(
            delete(Suppression).where(
                Suppression.account_id == account_id,
                Suppression.environment == environment.value,
                Suppression.address == normalize(address),
            )
        )
        return bool(getattr(result, "rowcount", 0))
