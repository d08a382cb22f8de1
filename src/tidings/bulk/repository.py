"""SQL for batches: reading, progress counts, cancel and completion."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.bulk.models import Batch
from tidings.core.environments import Environment
from tidings.credits.repository import CreditRepository
from tidings.messages import status_writer
from tidings.messages.models import Message, OutboxEvent
from tidings.messages.rows import COLUMNS
from tidings.messages.status import FINAL, Status
from tidings.messages.status_writer import RowChange

NOT_FINAL = sorted(status.value for status in Status if status not in FINAL)
# Batches whose messages may still change: completion is looked for among them.
OPEN = ("scheduled", "accepted", "canceling")
CANCELED_VALUES = {
    "next_attempt_at": None,
    "error_code": "batch_canceled",
    "error_message": "The batch was canceled before this message was sent.",
}
CANCEL_SLICE = 1_000


class BatchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, account_id: str, environment: Environment, batch_id: str) -> Batch | None:
        return await self._session.scalar(
            select(Batch).where(
                Batch.id == batch_id,
                Batch.account_id == account_id,
                Batch.environment == environment.value,
            )
        )

    async def page(
        self,
        account_id: str,
        environment: Environment,
        *,
        limit: int,
        after: str | None,
        channel: str | None = None,
        status: str | None = None,
    ) -> list[Batch]:
        query = select(Batch).where(
            Batch.account_id == account_id, Batch.environment == environment.value
        )
        if channel:
            query = query.where(Batch.channel == channel)
        if status:
            query = query.where(Batch.status == status)
        if after:
            query = query.where(Batch.id < after)
        rows = await self._session.scalars(query.order_by(Batch.id.desc()).limit(limit + 1))
        return list(rows)

    async def counts(self, batch_id: str) -> dict[str, int]:
        connection = await self._session.connection()
        rows = await connection.execute(
            select(Message.status, func.count())
            .where(Message.batch_id == batch_id)
            .group_by(Message.status)
        )
        return {status: count for status, count in rows}

    async def open_batches(self, limit: int = 100) -> list[Batch]:
        rows = await self._session.scalars(
            select(Batch).where(Batch.status.in_(OPEN)).order_by(Batch.id).limit(limit)
        )
        return list(rows)

    async def pending(self, batch_id: str) -> int:
        return (
            await self._session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.batch_id == batch_id, Message.status.in_(NOT_FINAL))
            )
            or 0
        )

    async def mark_started(self, batch_ids: Sequence[str], at: datetime) -> None:
        if batch_ids:
            await self._session.execute(
                update(Batch)
                .where(Batch.id.in_(batch_ids), Batch.started_at.is_(None))
                .values(started_at=at)
                # Run on every verdict batch that holds bulk messages: no Batch object
                # of this session needs it, so the ORM is not asked to look for one.
                .execution_options(synchronize_session=False)
            )

    async def finish(self, batch: Batch, at: datetime) -> bool:
        """Mark the batch finished, once across every process: True for the caller
        that did, which then tells (``batch.completed``)."""
        status = "canceled" if batch.status == "canceling" else "completed"
        result = await self._session.execute(
            update(Batch)
            .where(Batch.id == batch.id, Batch.finished_at.is_(None))
            .values(status=status, finished_at=at)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            return False
        batch.status, batch.finished_at = status, at
        return True

    async def cancel_unsent(self, batch: Batch, at: datetime) -> int:
        """Cancel the batch's messages no dispatcher holds (the queued, scheduled and
        waiting-for-retry ones); those in a provider's hands finish as they will.
        Each is a status change like any other (its event, ``message.canceled`` to
        the endpoints that subscribe); their credits come back as one refund for the
        batch. Returns how many were canceled."""
        query = select(*COLUMNS).where(
            Message.batch_id == batch.id,
            Message.status.in_([Status.QUEUED.value, Status.SCHEDULED.value]),
            Message.lease_owner.is_(None),
        )
        if self._session.get_bind().dialect.name == "postgresql":
            # Rows a dispatcher is claiming right now are skipped: they are being sent;
            # the others stay locked until the commit.
            query = query.with_for_update(skip_locked=True)
        connection = await self._session.connection()
        unsent = [dict(row._mapping) for row in await connection.execute(query)]
        canceled = 0
        refund = Decimal(0)
        for start in range(0, len(unsent), CANCEL_SLICE):
            changes = [
                RowChange(row, Status.CANCELED, at, values=dict(CANCELED_VALUES), refund=False)
                for row in unsent[start : start + CANCEL_SLICE]
            ]
            for change in await status_writer.change_rows(self._session, changes):
                canceled += 1
                refund += Decimal(change.row["credits"] or 0)
            # A large batch's cancel leaves the event loop free between two slices.
            await asyncio.sleep(0)
        if refund > 0:
            await CreditRepository(self._session).add(
                batch.account_id, refund, reason="refund", at=at, batch_id=batch.id
            )
        return canceled

    def completed_event(self, batch: Batch, payload: dict[str, object], at: datetime) -> None:
        self._session.add(
            OutboxEvent.new(
                account_id=batch.account_id,
                environment=batch.environment,
                event_type="batch.completed",
                subject_id=batch.id,
                payload=payload,
                at=at,
            )
        )
