"""Email events and their statistics, read from ``message_events`` (SQL aggregates).

An email event is either a status event (``kind`` empty) that the list shows as
``delivered``, or an engagement event whose ``kind`` is ``opened``, ``clicked``,
``bounced``, ``complained`` or ``unsubscribed``. Only outbound email messages of
the caller's account and environment count.

Statistics over the same filters (``messageId``, ``batchId``, and the event time
between ``since`` and ``until``; ``type`` and the cursor do not narrow them):

* ``sent``: messages that reached ``sent``; ``delivered``: messages with a
  ``delivered`` status event;
* ``opened`` / ``clicked``: every open and click, repeats included;
  ``uniqueOpens`` / ``uniqueClicks``: messages opened / clicked at least once;
* ``openRate`` = uniqueOpens / delivered, ``clickRate`` = uniqueClicks / delivered,
  ``bounceRate`` = bounced / sent (a bounced message was never delivered); each is
  0 when its divisor is, rounded to 4 decimals;
* ``bounced``, ``complaints``, ``unsubscribed``: messages with that event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.environments import Environment
from tidings.messages.models import Message, MessageEvent

ENGAGEMENT = ("opened", "clicked", "bounced", "complained", "unsubscribed")
EVENT_TYPES = ("delivered", *ENGAGEMENT)
ID_PREFIX = "mev_"

_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True, slots=True)
class EventFilters:
    type: str | None = None
    message_id: str | None = None
    batch_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class EmailEventRow:
    id: int
    type: str
    message_id: str
    to: str
    at: datetime
    detail: dict[str, Any] | None


def event_id(number: int) -> str:
    return f"{ID_PREFIX}{number}"


def parse_event_id(text: str) -> int | None:
    digits = text.removeprefix(ID_PREFIX)
    if text == digits or not digits.isdigit() or len(digits) > 18:
        return None
    return int(digits)


def _is_delivered() -> ColumnElement[bool]:
    return and_(MessageEvent.kind.is_(None), MessageEvent.status == "delivered")


def _type_condition(event_type: str | None) -> ColumnElement[bool]:
    if event_type == "delivered":
        return _is_delivered()
    if event_type is not None:
        return MessageEvent.kind == event_type
    return or_(MessageEvent.kind.in_(ENGAGEMENT), _is_delivered())


def _scoped(
    query: _Query, account_id: str, environment: Environment, filters: EventFilters
) -> _Query:
    query = query.join(Message, Message.id == MessageEvent.message_id).where(
        Message.account_id == account_id,
        Message.environment == environment.value,
        Message.channel == "email",
        Message.direction == "outbound",
    )
    if filters.message_id:
        query = query.where(MessageEvent.message_id == filters.message_id)
    if filters.batch_id:
        query = query.where(Message.batch_id == filters.batch_id)
    if filters.since:
        query = query.where(MessageEvent.at >= filters.since)
    if filters.until:
        query = query.where(MessageEvent.at < filters.until)
    return query


class EmailEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def page(
        self,
        account_id: str,
        environment: Environment,
        filters: EventFilters,
        *,
        limit: int,
        after: int | None,
    ) -> list[EmailEventRow]:
        """Newest first, ``limit + 1`` rows (the extra one tells there is more)."""
        query = _scoped(
            select(MessageEvent, Message.to_address), account_id, environment, filters
        ).where(_type_condition(filters.type))
        if after is not None:
            query = query.where(MessageEvent.id < after)
        rows = await self._session.execute(query.order_by(MessageEvent.id.desc()).limit(limit + 1))
        return [
            EmailEventRow(
                id=event.id,
                type=event.kind or event.status,
                message_id=event.message_id,
                to=to,
                at=event.at,
                detail=event.detail,
            )
            for event, to in rows
        ]

    async def stats(
        self, account_id: str, environment: Environment, filters: EventFilters
    ) -> dict[str, float | int]:
        def messages_with(condition: ColumnElement[bool]) -> ColumnElement[int]:
            return func.count(distinct(case((condition, MessageEvent.message_id))))

        def events_with(condition: ColumnElement[bool]) -> ColumnElement[int]:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        status_event = MessageEvent.kind.is_(None)
        query = _scoped(
            select(
                messages_with(and_(status_event, MessageEvent.status == "sent")),
                messages_with(_is_delivered()),
                events_with(MessageEvent.kind == "opened"),
                messages_with(MessageEvent.kind == "opened"),
                events_with(MessageEvent.kind == "clicked"),
                messages_with(MessageEvent.kind == "clicked"),
                messages_with(MessageEvent.kind == "bounced"),
                messages_with(MessageEvent.kind == "complained"),
                messages_with(MessageEvent.kind == "unsubscribed"),
            ).select_from(MessageEvent),
            account_id,
            environment,
            filters,
        )
        row = (await self._session.execute(query)).one()
        sent, delivered, opened, unique_opens, clicked, unique_clicks = (int(v) for v in row[:6])
        bounced, complaints, unsubscribed = (int(v) for v in row[6:])
        return {
            "sent": sent,
            "delivered": delivered,
            "opened": opened,
            "uniqueOpens": unique_opens,
            "openRate": _rate(unique_opens, delivered),
            "clicked": clicked,
            "uniqueClicks": unique_clicks,
            "clickRate": _rate(unique_clicks, delivered),
            "bounced": bounced,
            "bounceRate": _rate(bounced, sent),
            "complaints": complaints,
            "unsubscribed": unsubscribed,
        }


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0
