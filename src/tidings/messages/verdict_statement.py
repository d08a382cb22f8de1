"""A batch of verdicts on PostgreSQL in two statements (the scale-out worker's path).

The verdict transaction wrote, one statement each: the rows locked, the
provider's ids (``provider_refs``), the reports it handed over (``inbox_events``),
the webhook subscriptions read, the messages updated, their events, the outbox
rows and the ``pg_notify`` to the API processes: eight round trips to the
database, each paid again in scheduling on a busy machine, and SQLAlchemy's own
work per statement. Here the same transaction takes two statements:

- :func:`locked_rows`: the messages locked (``FOR UPDATE OF messages``, in id
  order, so two writers lock a common set in the same order) and, beside each,
  its account's enabled webhook endpoints (a correlated subquery). They are read
  in the transaction that writes the change, as
  :mod:`tidings.webhooks.subscriptions` asks, so no cache has to be invalidated;
- :func:`write`: every write as a data-modifying CTE of one statement, each row
  list passed as arrays (``unnest``), and the ``pg_notify`` as its ``SELECT``.
  PostgreSQL runs every CTE of a statement to completion whether the outer query
  reads it or not, in the statement's one snapshot; the messages are updated at
  most once each (a retry and a change never name the same row). The SQL is the
  same whatever the number of rows, so asyncpg prepares it once per connection.

What is written is what :func:`tidings.messages.status_writer.plan_rows` planned:
the status machine still decides, in one place. The statement's columns are the
ones the Core paths write; a column left out takes its server default, as with
them (the events' ``id``). JSON values are sent as their text, as SQLAlchemy's
``JSON`` type sends them (``None`` as JSON ``null``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, any_, bindparam, case, func, select
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.messages.models import Message, MessageEvent
from tidings.messages.rows import COLUMNS, EventRow, Row
from tidings.messages.status_writer import WRITTEN, RowWrites
from tidings.webhooks.models import WebhookEndpoint
from tidings.webhooks.subscriptions import Subscriptions

_MESSAGES = Message.__table__
_ENDPOINTS = (
    select(
        func.json_agg(func.json_build_array(WebhookEndpoint.environment, WebhookEndpoint.events))
    )
    .where(WebhookEndpoint.account_id == _MESSAGES.c.account_id, WebhookEndpoint.enabled)
    .scalar_subquery()
)
# A single send's events so far, oldest first (a batch's messages are not waited
# for): with them the worker builds the answer a waiting request shows.
_EVENTS = case(
    (
        _MESSAGES.c.batch_id.is_(None),
        select(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(
                        MessageEvent.status,
                        MessageEvent.at,
                        MessageEvent.applied,
                        MessageEvent.kind,
                    ),
                    MessageEvent.id,
                )
            )
        )
        .where(MessageEvent.message_id == _MESSAGES.c.id)
        .scalar_subquery(),
    ),
    else_=None,
)
# One SQL text whatever the number of ids (an array, not an IN list).
_LOCKED = (
    select(*COLUMNS, _ENDPOINTS.label("webhook_endpoints"), _EVENTS.label("events_so_far"))
    .where(_MESSAGES.c.id == any_(bindparam("ids", type_=ARRAY(String))))
    .order_by(_MESSAGES.c.id)
    .with_for_update(of=_MESSAGES)
)

# The messages' columns a verdict writes: a status change's, and a retry's attempts.
UPDATED = (*WRITTEN, "attempts")
_UPDATE_TYPES = {
    "updated_at": "timestamptz",
    "next_attempt_at": "timestamptz",
    "attempts": "int",
}

_ASSIGNMENTS = ", ".join(f"{name} = c.{name}" for name in UPDATED)
_UPDATE_ARRAYS = ", ".join(
    f"${index}::{_UPDATE_TYPES.get(name, 'text')}[]" for index, name in enumerate(UPDATED, 13)
)
_LAST = 12 + len(UPDATED)
# Every write of a verdict transaction, and its notification, in one statement.
# Parameters: $1-$6 the refs, $7-$12 the reports, $13.. the messages' columns then
# their ids, then the events (6), the outbox rows (7), the channel and the payloads.
_WRITE = f"""
WITH refs AS (
    INSERT INTO provider_refs (provider_id, external_id, message_id, part, recipient, created_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[],
                         $6::timestamptz[])
    ON CONFLICT DO NOTHING
), reports AS (
    INSERT INTO inbox_events
        (provider_id, dedupe_key, payload, state, attempts, received_at, due_at, error)
    SELECT r.provider_id, r.dedupe_key, r.payload::json, r.state, 0, r.received_at,
           r.due_at, NULL
    FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[],
                $12::timestamptz[])
        AS r(provider_id, dedupe_key, payload, state, received_at, due_at)
    ON CONFLICT (provider_id, dedupe_key) DO NOTHING
), changed AS (
    UPDATE messages SET {_ASSIGNMENTS}
    FROM unnest({_UPDATE_ARRAYS}, ${_LAST + 1}::text[]) AS c({", ".join(UPDATED)}, id)
    WHERE messages.id = c.id AND messages.id = ANY(${_LAST + 1}::text[])
), events AS (
    INSERT INTO message_events (message_id, status, at, applied, kind, detail)
    SELECT e.message_id, e.status, e.at, e.applied, e.kind, e.detail::json
    FROM unnest(${_LAST + 2}::text[], ${_LAST + 3}::text[], ${_LAST + 4}::timestamptz[],
                ${_LAST + 5}::bool[], ${_LAST + 6}::text[], ${_LAST + 7}::text[])
        AS e(message_id, status, at, applied, kind, detail)
), outbox AS (
    INSERT INTO outbox_events (id, account_id, environment, type, subject_id, payload, created_at)
    SELECT o.id, o.account_id, o.environment, o.type, o.subject_id, o.payload::json,
           o.created_at
    FROM unnest(${_LAST + 8}::text[], ${_LAST + 9}::text[], ${_LAST + 10}::text[],
                ${_LAST + 11}::text[], ${_LAST + 12}::text[], ${_LAST + 13}::text[],
                ${_LAST + 14}::timestamptz[])
        AS o(id, account_id, environment, type, subject_id, payload, created_at)
)
SELECT pg_notify(${_LAST + 15}, payload) FROM unnest(${_LAST + 16}::text[]) AS payload
"""  # noqa: S608 - the names come from the models, never from a request


@dataclass
class Locked:
    """What :func:`locked_rows` read: the rows by id, the subscriptions, and each
    single send's events so far."""

    rows: dict[str, Row]
    subscriptions: Subscriptions
    events: dict[str, list[EventRow]]


async def locked_rows(session: AsyncSession, message_ids: Sequence[str]) -> Locked:
    """The messages' rows, locked until the commit, their accounts' webhook
    subscriptions as they are in this transaction, and the single sends' events:
    one statement."""
    found: dict[str, Row] = {}
    events: dict[str, list[EventRow]] = {}
    endpoints: dict[str, list[tuple[str, str, Any]]] = {}
    connection = await session.connection()
    for start in range(0, len(message_ids), 500):
        chunk = list(message_ids[start : start + 500])
        for record in await connection.execute(_LOCKED, {"ids": chunk}):
            row = dict(record._mapping)
            listed = row.pop("webhook_endpoints")
            so_far = row.pop("events_so_far")
            account = row["account_id"]
            if account not in endpoints:
                # asyncpg hands json over as its text.
                pairs = json.loads(listed) if isinstance(listed, str) else listed
                endpoints[account] = [
                    (account, environment, events) for environment, events in pairs or []
                ]
            if so_far is not None:
                listed_events = json.loads(so_far) if isinstance(so_far, str) else so_far
                events[row["id"]] = [
                    (status, datetime.fromisoformat(at), applied, kind)
                    for status, at, applied, kind in listed_events
                ]
            found[row["id"]] = row
    subscriptions = Subscriptions.of_endpoints(
        endpoint for listed in endpoints.values() for endpoint in listed
    )
    return Locked(found, subscriptions, events)


@dataclass
class Writes:
    """Everything a verdict transaction writes (beside what :func:`write` leaves to
    the Core paths: credits, pace, batches)."""

    plan: RowWrites
    refs: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    # Rows put back in the queue, with their new values (a retry).
    retried: list[Row] = field(default_factory=list)
    # (message_id, status, at, applied, kind, detail) each.
    events: list[tuple[Any, ...]] = field(default_factory=list)
    payloads: list[str] = field(default_factory=list)


def _json(value: Any) -> str:
    return json.dumps(value)


async def write(session: AsyncSession, writes: Writes, channel: str | None) -> None:
    """Write it all, and notify ``channel`` of ``payloads``, in one statement."""
    plan = writes.plan
    # Each message once (an UPDATE ... FROM takes one of several source rows): a late
    # verdict and a retry of the same message share their row, as the plan left it.
    updated = list({row["id"]: row for row in [*plan.rows, *writes.retried]}.values())
    # The plan's events are status reports (no kind); the retries' follow.
    events = [(m, s, at, applied, None, d) for m, s, at, applied, d in plan.events]
    events.extend(writes.events)
    refs, reports = writes.refs, writes.reports
    arguments: list[Any] = [
        [ref["provider_id"] for ref in refs],
        [ref["external_id"] for ref in refs],
        [ref["message_id"] for ref in refs],
        [ref["part"] for ref in refs],
        [ref["recipient"] for ref in refs],
        [ref["created_at"] for ref in refs],
        [report["provider_id"] for report in reports],
        [report["dedupe_key"] for report in reports],
        [_json(report["payload"]) for report in reports],
        [report["state"] for report in reports],
        [report["received_at"] for report in reports],
        [report["due_at"] for report in reports],
        *([row[name] for row in updated] for name in UPDATED),
        [row["id"] for row in updated],
        *(list(column) for column in _columns(events, 6)),
    ]
    arguments[-1] = [_json(detail) for detail in arguments[-1]]
    outbox = _columns(plan.outbox, 7)
    outbox[5] = [_json(payload) for payload in outbox[5]]
    arguments.extend(outbox)
    arguments.append(channel or "")
    arguments.append(writes.payloads if channel else [])
    connection = await session.connection()
    await connection.exec_driver_sql(_WRITE, tuple(arguments))


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """The rows' values column by column (``width`` columns, none when no rows)."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for index, value in enumerate(row):
            columns[index].append(value)
    return columns
