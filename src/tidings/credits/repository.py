"""SQL for credits: the balance row and the ledger beside it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.ids import new_id
from tidings.credits.models import CreditBalance, CreditEntry


class CreditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def balance(self, account_id: str) -> Decimal:
        value = await self._session.scalar(
            select(CreditBalance.balance).where(CreditBalance.account_id == account_id)
        )
        return Decimal(value or 0)

    async def _ensure_row(self, account_id: str) -> None:
        if await self._session.get(CreditBalance, account_id) is None:
            self._session.add(CreditBalance(account_id=account_id, balance=Decimal(0)))
            await self._session.flush()

    def _entry(
        self,
        account_id: str,
        amount: Decimal,
        reason: str,
        at: datetime,
        message_id: str | None,
        batch_id: str | None,
    ) -> None:
        self._session.add(
            CreditEntry(
                id=new_id("led"),
                account_id=account_id,
                amount=amount,
                reason=reason,
                message_id=message_id,
                batch_id=batch_id,
                created_at=at,
            )
        )

    async def add(
        self,
        account_id: str,
        amount: Decimal,
        *,
        reason: str,
        at: datetime,
        message_id: str | None = None,
        batch_id: str | None = None,
    ) -> None:
        await self._ensure_row(account_id)
        await self._session.execute(
            update(CreditBalance)
            .where(CreditBalance.account_id == account_id)
            .values(balance=CreditBalance.balance + amount)
        )
        self._entry(account_id, amount, reason, at, message_id, batch_id)

    async def debit(
        self,
        account_id: str,
        cost: Decimal,
        *,
        at: datetime,
        message_id: str | None = None,
        batch_id: str | None = None,
    ) -> bool:
        """Take ``cost`` if the balance covers it; False (nothing taken) otherwise."""
        if cost <= 0:
            return True
        result = await self._session.execute(
            update(CreditBalance)
            .where(CreditBalance.account_id == account_id, CreditBalance.balance >= cost)
            .values(balance=CreditBalance.balance - cost)
        )
        if getattr(result, "rowcount", 0) != 1:
            return False
        self._entry(account_id, -cost, "send", at, message_id, batch_id)
        return True
