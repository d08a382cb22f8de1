"""SQL for webhooks: endpoints, deliveries (listing and claiming), attempts, fan-out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from tidings.core.environments import Environment
from tidings.messages.models import OutboxEvent
from tidings.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFannedEvent,
)


@dataclass(frozen=True, slots=True)
class DeliveryFilters:
    event_type: str | None = None
    success: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @property
    def _postgres(self) -> bool:
        return self._session.get_bind().dialect.name == "postgresql"

    # Endpoints

    async def get(
        self, account_id: str, environment: Environment, endpoint_id: str
    ) -> WebhookEndpoint | None:
        return await self._session.scalar(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id == endpoint_id,
                WebhookEndpoint.account_id == account_id,
                WebhookEndpoint.environment == environment.value,
            )
        )

    async def page(
        self, account_id: str, environment: Environment, *, limit: int, after: str | None
    ) -> list[WebhookEndpoint]:
        query = select(WebhookEndpoint).where(
            WebhookEndpoint.account_id == account_id,
            WebhookEndpoint.environment == environment.value,
        )
        if after:
            query = query.where(WebhookEndpoint.id < after)
        query = query.order_by(WebhookEndpoint.id.desc()).limit(limit + 1)
        return list(await self._session.scalars(query))

    async def endpoints_by_id(self, ids: Sequence[str]) -> dict[str, WebhookEndpoint]:
        if not ids:
            return {}
        rows = await self._session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_(set(ids)))
        )
        return {row.id: row for row in rows}

    async def endpoints_of(
        self, scopes: set[tuple[str, str]]
    ) -> dict[tuple[str, str], list[WebhookEndpoint]]:
        """The endpoints (enabled or not) of each (account, environment)."""
        found: dict[tuple[str, str], list[WebhookEndpoint]] = {scope: [] for scope in scopes}
        if not scopes:
            return found
        accounts = {account for account, _ in scopes}
        rows = await self._session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.account_id.in_(accounts))
        )
        for row in rows:
            scope = (row.account_id, row.environment)
            if scope in found:
                found[scope].append(row)
        return found

    # Deliveries

    async def delivery(self, endpoint_id: str, delivery_id: str) -> WebhookDelivery | None:
        return await self._session.scalar(
            select(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id
            )
        )

    async def deliveries(
        self, endpoint_id: str, filters: DeliveryFilters, *, limit: int, after: str | None
    ) -> list[WebhookDelivery]:
        query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        if filters.event_type:
            query = query.where(WebhookDelivery.event_type == filters.event_type)
        if filters.success is True:
            query = query.where(WebhookDelivery.status == "delivered")
        elif filters.success is False:
            query = query.where(WebhookDelivery.status != "delivered")
        if filters.since:
            query = query.where(WebhookDelivery.created_at >= filters.since)
        if filters.until:
            query = query.where(WebhookDelivery.created_at < filters.until)
        if after:
            query = query.where(WebhookDelivery.id < after)
        query = query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)
        return list(await self._session.scalars(query))

    async def attempts_of(self, delivery_ids: Sequence[str]) -> dict[str, list[WebhookAttempt]]:
        found: dict[str, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
        if not delivery_ids:
            return found
        rows = await self._session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.id)
        )
        for row in rows:
            found[row.delivery_id].append(row)
        return found

    async def replay_failed(self, endpoint_id: str, since: datetime, now: datetime) -> int:
        """Every delivery given up since ``since`` is due again, with a fresh schedule."""
        result = await self._session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.status == "failed",
                WebhookDelivery.created_at >= since,
            )
            .values(status="pending", attempts=0, next_attempt_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def claim_due(
        self, *, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[WebhookDelivery]:
        """Lease up to ``limit`` due deliveries of enabled endpoints.

        A delivery waits while an earlier event about the same subject (a message)
        is still pending for the same endpoint, in flight or not: per endpoint, the
        events of one message go out one at a time, in the order they happened.
        """
        earlier = aliased(WebhookDelivery)
        due = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                exists().where(
                    WebhookEndpoint.id == WebhookDelivery.endpoint_id,
                    WebhookEndpoint.enabled.is_(True),
                ),
                ~exists().where(
                    and_(
                        earlier.endpoint_id == WebhookDelivery.endpoint_id,
                        earlier.subject_id == WebhookDelivery.subject_id,
                        earlier.status == "pending",
                        earlier.event_id < WebhookDelivery.event_id,
                    )
                ),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        if self._postgres:
            due = due.with_for_update(skip_locked=True, of=WebhookDelivery)
        claimed = await self._session.scalars(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(due.scalar_subquery()))
            .values(
                lease_owner=owner,
                next_attempt_at=lease_until,
                attempts=WebhookDelivery.attempts + 1,
            )
            .returning(WebhookDelivery)
            .execution_options(populate_existing=True)
        )
        return list(claimed)

    async def get_deliveries(self, ids: Sequence[str]) -> dict[str, WebhookDelivery]:
        if not ids:
            return {}
        rows = await self._session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.id.in_(ids))
        )
        return {row.id: row for row in rows}

    async def release(self, owner: str, ids: Sequence[str], now: datetime) -> None:
        if not ids:
            return
        await self._session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids), WebhookDelivery.lease_owner.startswith(owner))
            .values(lease_owner=None, next_attempt_at=now, attempts=WebhookDelivery.attempts - 1)
            .execution_options(synchronize_session=False)
        )

    # Fan-out

    async def fan_out_cursor(self) -> str | None:
        return await self._session.scalar(select(func.max(WebhookFannedEvent.event_id)))

    async def unfanned_events(self, floor: str | None, limit: int) -> list[OutboxEvent]:
        query = select(OutboxEvent).where(_unfanned(floor))
        return list(await self._session.scalars(query.order_by(OutboxEvent.id).limit(limit)))

    async def any_unfanned(self, floor: str | None) -> bool:
        query = select(OutboxEvent.id).where(_unfanned(floor)).limit(1)
        return await self._session.scalar(query) is not None

    async def mark_fanned(self, event_ids: Sequence[str]) -> None:
        await self._session.execute(
            insert(WebhookFannedEvent), [{"event_id": event_id} for event_id in event_ids]
        )

    async def prune_fanned(self, below: str) -> None:
        await self._session.execute(
            delete(WebhookFannedEvent).where(WebhookFannedEvent.event_id < below)
        )


def _unfanned(floor: str | None) -> ColumnElement[bool]:
    """Outbox events after ``floor`` that no pass has fanned out."""
    condition = ~exists().where(WebhookFannedEvent.event_id == OutboxEvent.id)
    return condition if floor is None else and_(condition, OutboxEvent.id > floor)
