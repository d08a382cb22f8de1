"""The credit ledger (append-only) and each account's running balance.

The balance row is what concurrent sends race on: a debit is one conditional
``UPDATE ... WHERE balance >= cost``, so two sends can never overdraw it; the
ledger row written beside it explains every change.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, UtcDateTime, id_column_type


class CreditBalance(Base):
    __tablename__ = "credit_balances"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    balance: Mapped[Decimal] = mapped_column(Numeric(14, 4), default=Decimal(0))


class CreditEntry(Base):
    __tablename__ = "credit_ledger"

    id: Mapped[str] = mapped_column(id_column_type(), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    reason: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str | None] = mapped_column(id_column_type())
    batch_id: Mapped[str | None] = mapped_column(id_column_type())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_credit_ledger_account", "account_id", "id"),)
