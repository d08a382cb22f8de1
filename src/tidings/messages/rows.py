"""Messages as plain rows, for the paths that move thousands a second.

The dispatcher's claims and verdicts and the providers' receipts handle
messages as dictionaries of column values read with Core, not ORM objects:
loading, tracking and flushing an object costs more than the database work
(design section 2). :func:`payload` is :func:`tidings.messages.schemas.message_payload`
for such a row, built directly, and :func:`answer` is the API's answer
(``message_out(...)`` with its events); tests hold each equal to the model's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.driver import sqlite_driver
from tidings.db.multirow import select_in, select_rows
from tidings.messages.models import Message, MessageEvent

Row = dict[str, Any]
COLUMNS = tuple(Message.__table__.columns)
KEYS = tuple(column.key for column in COLUMNS)
# status, at, applied, kind
EventRow = tuple[str, datetime, bool, str | None]

# The statements are built once, their ids passed as one expanding parameter:
# building an IN list anew costs more than the query on these hot paths.
_BY_ID = select(*COLUMNS).where(Message.id.in_(bindparam("ids", expanding=True)))
_BY_ID_LOCKED = _BY_ID.with_for_update()
_EVENTS = (
    select(
        MessageEvent.message_id,
        MessageEvent.status,
        MessageEvent.at,
        MessageEvent.applied,
        MessageEvent.kind,
    )
    .where(MessageEvent.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(MessageEvent.id)
)


_MESSAGES: Table = Message.__table__  # type: ignore[assignment]
_EVENTS_TABLE: Table = MessageEvent.__table__  # type: ignore[assignment]
_EVENT_KEYS = ("message_id", "status", "at", "applied", "kind")


async def load_rows(
    session: AsyncSession,
    message_ids: Sequence[str],
    *,
    lock: bool = True,
    keys: tuple[str, ...] = KEYS,
) -> dict[str, Row]:
    """The messages' current rows by id (``keys``, ``id`` first: all the columns
    unless told); on PostgreSQL locked until the commit, so the changes made from
    them are not raced by another process."""
    found: dict[str, Row] = {}
    if not message_ids:
        return found
    driver = await sqlite_driver(session)
    if driver is not None:
        # SQLite (which has no row locks): on the driver, the values converted as
        # Core would, at a fraction of its cost per row.
        for start in range(0, len(message_ids), 500):
            ids = message_ids[start : start + 500]
            sql, converting = select_in(_MESSAGES, keys, driver[1], "id", len(ids))
            for values in await select_rows(session, sql, ids, converting):
                found[values[0]] = dict(zip(keys, values, strict=True))
        return found
    postgres = session.get_bind().dialect.name == "postgresql"
    query = _by_id(keys, lock and postgres)
    for start in range(0, len(message_ids), 500):
        chunk = {"ids": list(message_ids[start : start + 500])}
        result = await (await session.connection()).execute(query, chunk)
        # The keys once per result: a row's own mapping builds its key view anew each
        # time, which cost more than the row's values.
        names = tuple(result.keys())
        for row in result:
            mapping = dict(zip(names, row, strict=True))
            found[mapping["id"]] = mapping
    return found


@lru_cache(maxsize=16)
def _by_id(keys: tuple[str, ...], locked: bool) -> Select[Any]:
    """Core's select of ``keys`` by id (all of them: the statements built above)."""
    if keys == KEYS:
        return _BY_ID_LOCKED if locked else _BY_ID
    query = select(*(_MESSAGES.c[key] for key in keys)).where(
        _MESSAGES.c.id.in_(bindparam("ids", expanding=True))
    )
    return query.with_for_update() if locked else query


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is UTC:
        return _utc_api_text(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@lru_cache(maxsize=4096)
def _utc_api_text(value: datetime) -> str:
    """What the rows hold (read as UTC) as the API writes it: the same text as
    ``astimezone``'s, without its copy; each value formatted once, as a verdict's
    answers share its time (their update, their "sent" event) and a message's creation
    is its first event's time (equal UTC values are the same instant: the same text)."""
    return value.isoformat()[:-6] + "Z"


def payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """The message as webhooks carry it (spec section 4, without ``events``)."""
    error = (
        {"code": row["error_code"], "message": row["error_message"] or ""}
        if row["error_code"]
        else None
    )
    content = row["content"] or {}
    return {
        "id": row["id"],
        "channel": row["channel"],
        "direction": row["direction"],
        "environment": row["environment"],
        "to": row["to_address"],
        "from": row["from_address"],
        "status": row["status"],
        "body": row["body"],
        "subject": content.get("subject"),
        "batchId": row["batch_id"],
        "segments": row["segments"],
        "encoding": row["encoding"],
        "credits": float(row["credits"] or 0),
        "providerId": row["provider_id"],
        "providerMessageId": row["provider_message_id"],
        "attempts": row["attempts"],
        "error": error,
        "scheduledAt": _time(row["scheduled_at"]),
        "createdAt": _time(row["created_at"]),
        "updatedAt": _time(row["updated_at"]),
    }


async def events_of(session: AsyncSession, message_ids: Sequence[str]) -> dict[str, list[EventRow]]:
    """Each message's events, oldest first."""
    found: dict[str, list[EventRow]] = {}
    driver = await sqlite_driver(session)
    if driver is not None:
        for start in range(0, len(message_ids), 500):
            ids = message_ids[start : start + 500]
            sql, converting = select_in(
                _EVENTS_TABLE, _EVENT_KEYS, driver[1], "message_id", len(ids), order_by="id"
            )
            for message_id, status, at, applied, kind in await select_rows(
                session, sql, ids, converting
            ):
                found.setdefault(message_id, []).append((status, at, applied, kind))
        return found
    for start in range(0, len(message_ids), 500):
        chunk = {"ids": list(message_ids[start : start + 500])}
        for message_id, status, at, applied, kind in await (await session.connection()).execute(
            _EVENTS, chunk
        ):
            found.setdefault(message_id, []).append((status, at, applied, kind))
    return found


def answer(row: Mapping[str, Any], events: Sequence[EventRow]) -> dict[str, Any]:
    """The message as the API answers it (spec section 4), events included."""
    out = payload(row)
    out["events"] = [
        {"status": status, "at": _time(at), "applied": applied, "event": kind}
        for status, at, applied, kind in events
    ]
    return out
