"""Writes status changes: the only code that assigns ``Message.status`` after a
message's first status (a batch's rows are inserted with theirs, see
:mod:`tidings.bulk.store`; its cancel goes through :func:`change_rows`).

Each call records an event (applied or not, per :mod:`tidings.messages.status`)
and, when the status changed, the ``message.<status>`` outbox event for the
webhooks, all in the caller's transaction, so nothing is told about a change
that was rolled back. A new message's first event and the row paths' changes
are written to the outbox only when an enabled endpoint subscribes to them
(:mod:`tidings.webhooks.subscriptions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, exists, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.core.ids import new_id
from tidings.credits.repository import CreditRepository
from tidings.db.driver import sqlite_driver
from tidings.db.multirow import (
    StoredTimes,
    insert_rows,
    insert_rows_sharing,
    select_in,
    select_rows,
    update_rows,
)
from tidings.db.prepared_insert import PreparedInsert, insert_prepared, prepare_insert
from tidings.messages import rows
from tidings.messages.models import Message, MessageEvent, OutboxEvent
from tidings.messages.rows import Row
from tidings.messages.schemas import message_payload
from tidings.messages.status import FINAL, Status, applies
from tidings.webhooks.models import WebhookEndpoint
from tidings.webhooks.subscriptions import Scope, Subscriptions


def _table(model: type[Message] | type[MessageEvent] | type[OutboxEvent]) -> Table:
    return model.__table__  # type: ignore[return-value]


# Credits come back when the provider never took the message.
REFUNDED = frozenset({Status.FAILED, Status.CANCELED})


def outbox_event(
    message: Message, event_type: str, at: datetime, data: dict[str, Any] | None = None
) -> OutboxEvent:
    return OutboxEvent.new(
        account_id=message.account_id,
        environment=message.environment,
        event_type=event_type,
        subject_id=message.id,
        payload=data if data is not None else message_payload(message),
        at=at,
    )


_MESSAGE_COLUMNS = tuple(column.key for column in Message.__table__.columns)
_STATUS_AT = _MESSAGE_COLUMNS.index("status")


_EVENT_COLUMNS = ("message_id", "status", "at", "applied")


@dataclass(frozen=True, slots=True)
class FirstStatus:
    """A new message with its first status, and its rows ready to insert
    (:func:`prepare_start`)."""

    message: Message
    status: Status
    at: datetime
    row: PreparedInsert
    event: PreparedInsert


def prepare_start(
    message: Message, status: Status, at: datetime, dialect: Dialect | None = None
) -> FirstStatus:
    """Give ``message`` its first status and make its row and first event, bound for
    ``dialect`` (see :mod:`tidings.db.prepared_insert`): nothing here reads the
    database, so a send does it before its turn at the writer."""
    message.status = status
    message.created_at = message.updated_at = at
    # The model's Python-side defaults, which only the ORM's flush would apply.
    if message.content is None:
        message.content = {}
    if message.credits is None:
        message.credits = Decimal(0)
    if message.attempts is None:
        message.attempts = 0
    # A transient message holds its values in its __dict__ (an attribute never set
    # reads as None either way), without the instrumentation's descriptor per column.
    held = message.__dict__
    values = [held.get(name) for name in _MESSAGE_COLUMNS]
    values[_STATUS_AT] = status.value
    return FirstStatus(
        message,
        status,
        at,
        prepare_insert(_table(Message), _MESSAGE_COLUMNS, [values], dialect),
        prepare_insert(
            _table(MessageEvent), _EVENT_COLUMNS, [(message.id, status.value, at, True)], dialect
        ),
    )


async def write_start(session: AsyncSession, first: FirstStatus) -> None:
    """Insert a new message's row and first event, with its outbox event when an
    endpoint subscribes to it.

    The rows are inserted with Core, not added to the session: the unit of work's
    flush cost more than the rest of a single send's write. The message stays a plain
    (transient) object holding what was stored.
    """
    await insert_prepared(session, first.row)
    await insert_prepared(session, first.event)
    if first.status == Status.SCHEDULED:
        return
    message = first.message
    event_type = "message.received" if first.status == Status.RECEIVED else "message.queued"
    scope = (message.account_id, message.environment)
    if (await Subscriptions.of_transaction(session, scope)).wants(scope, event_type):
        session.add(outbox_event(message, event_type, first.at))


async def start(session: AsyncSession, message: Message, status: Status, at: datetime) -> None:
    """Record the first status of a new message (queued, scheduled or received),
    with its outbox event when an endpoint subscribes to it (:func:`prepare_start`
    and :func:`write_start` at once)."""
    await write_start(session, prepare_start(message, status, at))


async def change(
    session: AsyncSession,
    message: Message,
    new: Status,
    at: datetime,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
    detail: dict[str, Any] | None = None,
    seen: set[str] | None = None,
) -> bool:
    """Apply a reported status; True when the message's status changed.

    ``seen`` holds statuses already recorded for this message: a duplicate report
    of one of them is dropped, not recorded again.
    """
    if seen is not None:
        if new in seen:
            return False
        seen.add(new)
    changed = applies(message.status, new)
    session.add(
        MessageEvent(message_id=message.id, status=new, at=at, applied=changed, detail=detail)
    )
    if not changed:
        return False
    message.status = new
    message.updated_at = at
    if error_code is not None:
        message.error_code = error_code
        message.error_message = error_message
    elif new in (Status.SENT, Status.DELIVERED, Status.READ):
        # An error left by an earlier, retried attempt no longer describes it.
        message.error_code = message.error_message = None
    if new in FINAL or new == Status.SENT:
        # Out of the queue: only receipts can move it from here.
        message.next_attempt_at = None
        message.lease_owner = None
    if new in REFUNDED and message.credits:
        await CreditRepository(session).add(
            message.account_id,
            Decimal(message.credits),
            reason="refund",
            at=at,
            message_id=message.id,
        )
    session.add(outbox_event(message, f"message.{new.value}", at))
    return True


@dataclass
class RowChange:
    """A reported status for a message held as a row (:mod:`tidings.messages.rows`).

    ``values`` are further columns to set when the status changes (the provider's
    id, the error); with ``values_always`` they are set even when it does not (a
    late verdict still names the provider's id the receipts will carry)."""

    row: Row
    new: Status
    at: datetime
    values: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] | None = None
    values_always: bool = False
    # Whether the message leaves the queue with this change (a late verdict does not).
    settles: bool = True
    # Whether a refunding change refunds the message's credits itself; a batch's
    # cancel refunds them as one entry for the batch instead.
    refund: bool = True
    changed: bool = False


# The columns a status change may set, written back by one executemany.
WRITTEN = (
    "status",
    "updated_at",
    "provider",
    "provider_id",
    "provider_message_id",
    "error_code",
    "error_message",
    "next_attempt_at",
    "lease_owner",
)


@dataclass
class RowWrites:
    """What :func:`change_rows` writes for a list of changes: the rows whose
    ``WRITTEN`` columns change, the events (``message_id, status, at, applied,
    detail``), the outbox rows (``id, account_id, environment, type, subject_id,
    payload, created_at``) and the rows whose credits come back."""

    rows: list[Row] = field(default_factory=list)
    # For each of ``rows``, the ``WRITTEN`` columns whose values it changed.
    changed: list[tuple[str, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[tuple[Any, ...]] = field(default_factory=list)
    refunds: list[Row] = field(default_factory=list)


async def change_rows(
    session: AsyncSession, changes: list[RowChange], subscriptions: Subscriptions | None = None
) -> list[RowChange]:
    """:func:`change` for many messages held as rows, written with a few multi-row
    statements; the changes that applied (``changed`` is set on each).
    ``subscriptions``, when given, must have been read in this transaction."""
    if subscriptions is None:
        subscriptions = await subscriptions_of(
            session, {(change.row["account_id"], change.row["environment"]) for change in changes}
        )
    await write_rows(session, plan_rows(changes, subscriptions))
    return [change for change in changes if change.changed]


_ENDPOINTS: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
_ENDPOINT_KEYS = ("account_id", "environment", "events")


async def subscriptions_of(session: AsyncSession, scopes: set[Scope]) -> Subscriptions:
    """:meth:`Subscriptions.load`; on SQLite read on the driver (through SQLAlchemy the
    query cost over 100 µs, more than a small batch of receipts' own update)."""
    driver = await sqlite_driver(session)
    if driver is None:
        return await Subscriptions.load(session, scopes)
    accounts = sorted({account for account, _ in scopes})
    if not accounts:
        return Subscriptions.of_endpoints(())
    sql, converting = select_in(
        _ENDPOINTS, _ENDPOINT_KEYS, driver[1], "account_id", len(accounts), equal=("enabled",)
    )
    found = await select_rows(session, sql, [True, *accounts], converting)
    return Subscriptions.of_endpoints(
        (account, environment, events)
        for account, environment, events in found
        if (account, environment) in scopes
    )


_ANY_ENABLED = select(exists().where(_ENDPOINTS.c.enabled))


async def endpoints_enabled(session: AsyncSession) -> bool:
    """Whether any webhook endpoint is enabled, of any account: when none is, no
    status change has an outbox event to write (nor a payload to make)."""
    driver = await sqlite_driver(session)
    if driver is None:
        return bool(await (await session.connection()).scalar(_ANY_ENABLED))
    cursor = await driver[0].execute(_sqlite_any_enabled(driver[1]))
    return bool((await cursor.fetchone())[0])


@lru_cache(maxsize=4)
def _sqlite_any_enabled(dialect: Dialect) -> str:
    quote = dialect.identifier_preparer.quote
    # Names come from the table's metadata, never from a request.
    return (
        f"SELECT EXISTS (SELECT 1 FROM {quote(_ENDPOINTS.name)} "  # noqa: S608
        f"WHERE {quote('enabled')} = 1)"
    )


# For plan_rows, made once: an enum member's ``value`` and a tuple of members built
# at each change cost more than the rest of its bookkeeping.
_VALUES = {status: status.value for status in Status}
_EVENT_TYPES = {status: f"message.{status.value}" for status in Status}
# An error left by an earlier, retried attempt no longer describes the message.
_CLEARS_ERROR = frozenset({Status.SENT, Status.DELIVERED, Status.READ})
# Out of the queue: only receipts can move it from here.
_LEAVES_QUEUE = FINAL | {Status.SENT}


def plan_rows(changes: list[RowChange], subscriptions: Subscriptions) -> RowWrites:
    """Apply the changes to their rows in memory (``changed`` set on each) and say
    what to write; :func:`write_rows` writes it (a caller may write it its own way,
    in the same transaction)."""
    plan = RowWrites()
    written: dict[str, Row] = {}
    # The columns each written row's changes set to another value than it had (the
    # rows were read in this transaction: what they had is what is stored).
    touched: dict[str, set[str]] = {}
    for change in changes:
        row, new, at = change.row, change.new, change.at
        # A stored status is compared as text: statuses are a StrEnum, equal to (and
        # hashed as) their values, and building the member cost more than the check.
        change.changed = applies(row["status"], new)
        stored_status = _VALUES[new]
        plan.events.append((row["id"], stored_status, at, change.changed, change.detail))
        if not change.changed:
            if change.values_always and change.values:
                names = touched.setdefault(row["id"], set())
                for name, value in change.values.items():
                    if row.get(name) != value:
                        names.add(name)
                row.update(change.values)
                written[row["id"]] = row
            continue
        names = touched.setdefault(row["id"], set())
        for name, value in change.values.items():
            if row.get(name) != value:
                names.add(name)
        row.update(change.values)
        names.add("status")
        row["status"] = stored_status
        if row.get("updated_at") != at:
            names.add("updated_at")
        row["updated_at"] = at
        if "error_code" not in change.values and new in _CLEARS_ERROR:
            if row.get("error_code") is not None or row.get("error_message") is not None:
                names.update(("error_code", "error_message"))
            row["error_code"] = row["error_message"] = None
        if new in _LEAVES_QUEUE:
            if row.get("next_attempt_at") is not None:
                names.add("next_attempt_at")
            if row.get("lease_owner") is not None:
                names.add("lease_owner")
            row["next_attempt_at"] = None
            row["lease_owner"] = None
        if new in REFUNDED and row["credits"] and change.refund:
            plan.refunds.append(row)
        written[row["id"]] = row
        event_type = _EVENT_TYPES[new]
        if subscriptions.wants((row["account_id"], row["environment"]), event_type):
            plan.outbox.append(
                (
                    new_id("evt"),
                    row["account_id"],
                    row["environment"],
                    event_type,
                    row["id"],
                    rows.payload(row),
                    at,
                )
            )
    plan.rows = list(written.values())
    plan.changed = [_in_written_order(frozenset(touched[row["id"]])) for row in plan.rows]
    return plan


@lru_cache(maxsize=512)
def _in_written_order(names: frozenset[str]) -> tuple[str, ...]:
    """The names among ``WRITTEN``, in its order: a batch's changes set the same few
    sets of columns, each ordered once."""
    return tuple(name for name in WRITTEN if name in names)


_EVENT_WRITTEN = ("message_id", "status", "at", "applied", "detail")


async def write_rows(session: AsyncSession, plan: RowWrites) -> None:
    """Write what :func:`plan_rows` planned, in the caller's transaction."""
    if plan.rows and len(plan.changed) == len(plan.rows) and await sqlite_driver(session):
        # SQLite: only the columns a row's change set, one statement per set of them
        # (a change sets the same few, so a batch has one or two). SQLite rewrites
        # the entries of every index on a column named in the SET, changed or not: a
        # receipt's update costs about half as much without the queue's and the
        # provider's columns, which it leaves as they are.
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for row, columns in zip(plan.rows, plan.changed, strict=True):
            if columns:
                groups.setdefault(columns, []).append((*(row[name] for name in columns), row["id"]))
        # A change's time is its row's update time and its event's: converted once.
        times = StoredTimes()
        for columns, group in groups.items():
            await update_rows(session, _table(Message), columns, group, times=times)
        await insert_rows_sharing(session, _table(MessageEvent), _EVENT_WRITTEN, plan.events, times)
    elif plan.rows:
        await update_rows(
            session,
            Message.__table__,  # type: ignore[arg-type]
            WRITTEN,
            [(*(row[name] for name in WRITTEN), row["id"]) for row in plan.rows],
        )
        await insert_rows(session, _table(MessageEvent), _EVENT_WRITTEN, plan.events)
    else:
        await insert_rows(session, _table(MessageEvent), _EVENT_WRITTEN, plan.events)
    await insert_rows(
        session,
        OutboxEvent.__table__,  # type: ignore[arg-type]
        ("id", "account_id", "environment", "type", "subject_id", "payload", "created_at"),
        plan.outbox,
    )
    for row in plan.refunds:
        await refund(session, row)


async def refund(session: AsyncSession, row: Row) -> None:
    """Give a message's credits back (a change to a refunding status)."""
    await CreditRepository(session).add(
        row["account_id"],
        Decimal(row["credits"]),
        reason="refund",
        at=row["updated_at"],
        message_id=row["id"],
    )
