"""SQL for credits: the balance row and the ledger beside it.

Every paid send debits in its write, so the writes are statements built once on the
tables and run on SQLite's driver (:mod:`tidings.db.driver`): the ORM's bulk UPDATE
evaluated its WHERE against every object in the session and its ledger object cost a
unit-of-work flush, about a third of a production send's write. The ledger row goes through
:func:`tidings.db.multirow.insert_rows`, as a message's own row does.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.ids import new_id
from tidings.credits.models import CreditBalance, CreditEntry
from tidings.db.driver import Prepared
from tidings.db.multirow import insert_rows

_BALANCES: Table = CreditBalance.__table__  # type: ignore[assignment]
_LEDGER: Table = CreditEntry.__table__  # type: ignore[assignment]
_AMOUNT = _BALANCES.c.balance.type
_LEDGER_COLUMNS = ("id", "account_id", "amount", "reason", "message_id", "batch_id", "created_at")

_DEBIT = Prepared(
    update(_BALANCES)
    .where(
        _BALANCES.c.account_id == bindparam("account"),
        _BALANCES.c.balance >= bindparam("cost", type_=_AMOUNT),
    )
    .values(balance=_BALANCES.c.balance - bindparam("cost", type_=_AMOUNT))
)
_CREDIT = Prepared(
    update(_BALANCES)
    .where(_BALANCES.c.account_id == bindparam("account"))
    .values(balance=_BALANCES.c.balance + bindparam("amount", type_=_AMOUNT))
)
_HAS_ROW = select(_BALANCES.c.account_id).where(_BALANCES.c.account_id == bindparam("account"))


class CreditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def balance(self, account_id: str) -> Decimal:
        value = await self._session.scalar(
            select(CreditBalance.balance).where(CreditBalance.account_id == account_id)
        )
        return Decimal(value or 0)

    async def _ensure_row(self, account_id: str) -> None:
        if (await self._session.execute(_HAS_ROW, {"account": account_id})).first() is None:
            await insert_rows(
                self._session, _BALANCES, ("account_id", "balance"), [(account_id, Decimal(0))]
            )

    async def _entry(
        self,
        account_id: str,
        amount: Decimal,
        reason: str,
        at: datetime,
        message_id: str | None,
        batch_id: str | None,
    ) -> None:
        row = (new_id("led"), account_id, amount, reason, message_id, batch_id, at)
        await insert_rows(self._session, _LEDGER, _LEDGER_COLUMNS, [row])

    async def _update(self, statement: Prepared, values: dict[str, Any]) -> int:
        return await statement.rowcount(self._session, values)

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
        await self._update(_CREDIT, {"account": account_id, "amount": amount})
        await self._entry(account_id, amount, reason, at, message_id, batch_id)

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
        if await self._update(_DEBIT, {"account": account_id, "cost": cost}) != 1:
            return False
        await self._entry(account_id, -cost, "send", at, message_id, batch_id)
        return True
