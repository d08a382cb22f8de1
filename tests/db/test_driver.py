"""Statements on SQLite's driver (tidings.db.driver) answer as Core does on both
databases, inside the session's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import bindparam, func, select

from tests.conftest import make_settings
from tests.providers.helpers import app_running
from tests.support.users import create_test_user
from tidings.contacts.optouts import OptOutRepository
from tidings.core.environments import Environment
from tidings.credits.models import CreditEntry
from tidings.credits.repository import CreditRepository
from tidings.db.driver import Prepared
from tidings.messages.models import Message

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


async def test_credits_and_opt_outs_through_the_driver(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    async with app_running(make_settings(data_dir, database_url)) as app:
        account = (await create_test_user(app)).account_id
        sessions = app.state.ctx.sessions
        async with sessions() as session:
            credits = CreditRepository(session)
            await credits.add(account, Decimal("10.5"), reason="top-up", at=NOW)
            assert await credits.debit(account, Decimal(4), at=NOW, message_id="msg_a")
            # Not covered: nothing taken, no ledger row.
            assert not await credits.debit(account, Decimal(7), at=NOW, message_id="msg_b")
            optouts = OptOutRepository(session)
            sandbox = Environment.SANDBOX
            assert not await optouts.is_opted_out(account, sandbox, "sms", "+393331234567")
            await optouts.opt_out(account, sandbox, "sms", "+393331234567", reason="STOP", at=NOW)
            await session.commit()

        async with sessions() as session:
            assert await CreditRepository(session).balance(account) == Decimal("6.5")
            entries = (
                await session.execute(
                    select(CreditEntry.amount, CreditEntry.reason, CreditEntry.message_id)
                    .where(CreditEntry.account_id == account)
                    .order_by(CreditEntry.id)
                )
            ).all()
            assert [tuple(entry) for entry in entries] == [
                (Decimal("10.5"), "top-up", None),
                (Decimal(-4), "send", "msg_a"),
            ]
            optouts = OptOutRepository(session)
            assert await optouts.is_opted_out(account, Environment.SANDBOX, "sms", "+393331234567")
            # Scoped: the same address in production, or on another channel, is not.
            assert not await optouts.is_opted_out(
                account, Environment.PRODUCTION, "sms", "+393331234567"
            )
            assert not await optouts.is_opted_out(
                account, Environment.SANDBOX, "whatsapp", "+393331234567"
            )

        # In the session's transaction: rolled back with it.
        async with sessions() as session:
            assert await CreditRepository(session).debit(account, Decimal(6), at=NOW)
            await session.rollback()
        async with sessions() as session:
            assert await CreditRepository(session).balance(account) == Decimal("6.5")


def test_a_result_that_needs_converting_is_refused(data_dir: Path) -> None:
    """A timestamp comes back from SQLite as text: such a statement stays with Core."""
    from sqlalchemy.dialects import sqlite

    created = Prepared(select(Message.created_at).where(Message.id == bindparam("id")))
    with pytest.raises(TypeError, match="created_at"):
        created._compiled(sqlite.dialect())
    counted = Prepared(select(func.count()).where(Message.id == bindparam("id")))
    sql, parameters = counted._compiled(sqlite.dialect())
    assert "count" in sql and [name for name, _ in parameters] == ["id"]


async def test_one_session_over_several_transactions(
    data_dir: Path, database_url: tuple[str, str | None]
) -> None:
    """The driver connection kept for a transaction is not used after it ends: each
    later transaction of the session writes in its own (and rolls back alone)."""
    async with app_running(make_settings(data_dir, database_url)) as app:
        account = (await create_test_user(app)).account_id
        async with app.state.ctx.sessions() as session:
            credits = CreditRepository(session)
            await credits.add(account, Decimal(10), reason="top-up", at=NOW)
            await session.commit()
            assert await credits.debit(account, Decimal(3), at=NOW)
            await session.commit()
            assert await credits.debit(account, Decimal(5), at=NOW)
            await session.rollback()
            assert await credits.debit(account, Decimal(1), at=NOW)
            await session.commit()
        async with app.state.ctx.sessions() as session:
            assert await CreditRepository(session).balance(account) == Decimal(6)
