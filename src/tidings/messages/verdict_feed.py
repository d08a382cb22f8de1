"""Verdicts pushed to the API processes that wait for them (PostgreSQL).

In the scale-out mode the request that waits for a message's verdict runs in an
API process, and the verdict is recorded by a worker. The worker's verdict
transaction also runs a ``pg_notify`` on the channel
``tidings_verdicts_<schema or public>`` naming the messages that left the queue
(:mod:`tidings.messages.verdict_statement`; :func:`notify_verdicts` sends ids
alone, as older workers did).
PostgreSQL delivers a transaction's notifications when it commits, and only
then, so no process hears of a verdict before it is committed.

The worker's notification carries each settled single send's answer, the
message as the API shows it (:func:`tidings.messages.rows.answer`, built from
the row it just wrote and the events it read with the row's lock), one line
``<id> <answer as JSON>`` each (:func:`answer_payloads`); an answer too long for
a payload, or a message still pending, goes as its id alone.

Every process on PostgreSQL keeps a :class:`VerdictFeed`: one connection that
``LISTEN``s on the channel. An answer heard for a request here resolves its
waiter at once, with no read. The other ids it hears that a request here waits
for (no answer came along, or the request registered after the notification,
or from an older worker, which sends comma-separated ids) are read back from the
database (the row and its events, the API's answer, as
:func:`tidings.messages.rows.answer` builds it) and resolve their waiters. The
read is one statement (the rows joined to their events) outside a transaction:
one round trip where a transaction with two reads took four, and one statement
sees one snapshot, so a row and its events agree. The
connection is opened again with a backoff when it drops; once it listens again,
every waiting message is read once, since verdicts committed meanwhile were told
to nobody. Waiting requests still read their own message every
``TIDINGS_SEND_WAIT_POLL_SECONDS`` while the feed listens (so a notification lost
in any other way only delays the answer), and every 0.5 s, as without it, while it
does not (the database refusing one more connection, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

import asyncpg
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.messages.models import Message, MessageEvent
from tidings.messages.rows import COLUMNS, EventRow, Row, answer
from tidings.messages.status import PENDING, Status
from tidings.messages.waiters import LOCAL_POLL_SECONDS, Answer, VerdictWaiters

log = logging.getLogger("tidings.verdicts")

# PostgreSQL refuses a payload of 8000 bytes or more; ids are ASCII.
PAYLOAD_LIMIT = 7900
# Ids read back in one query, and the pause before a failed read is tried again.
READ_CHUNK = 500
READ_RETRY_SECONDS = 0.5
# Ids heard lately, kept for a request that registers its waiter after its
# verdict's notification came (a worker may claim a message woken by another's).
RECENT_IDS = 16_384
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0
# A quiet listening connection is checked this often (a peer gone without a word).
PING_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
# How long a starting process waits for its first LISTEN before it serves anyway.
START_WAIT_SECONDS = 10.0

# The messages and their events (oldest first), in one statement.
_EVENT_COLUMNS = (
    MessageEvent.status.label("event_status"),
    MessageEvent.at.label("event_at"),
    MessageEvent.applied.label("event_applied"),
    MessageEvent.kind.label("event_kind"),
)
_WITH_EVENTS = (
    select(*COLUMNS, *_EVENT_COLUMNS)
    .select_from(Message.__table__.outerjoin(MessageEvent, MessageEvent.message_id == Message.id))
    .where(Message.id.in_(bindparam("ids", expanding=True)))
    .order_by(Message.id, MessageEvent.id)
)

_NOTIFY = text(
    "SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"
)


def payloads(message_ids: Sequence[str]) -> list[str]:
    """The ids, comma-separated, in as few payloads under the limit as they fit."""
    return _packed(message_ids, ",")


def answer_payloads(answers: Mapping[str, Answer | None]) -> list[str]:
    """Lines ``<id> <answer as JSON>``, or ``<id>`` alone (no answer: one too long
    for a payload, or a message still pending), as many lines to a payload as fit
    under the limit. A listener resolves a waiter from its line without reading the
    message back (:meth:`VerdictFeed._heard`)."""
    lines = []
    for message_id, found in answers.items():
        line = message_id
        if found is not None:
            # ASCII (json escapes the rest): the length is the size in bytes.
            text = json.dumps(found, separators=(",", ":"))
            if len(message_id) + 1 + len(text) <= PAYLOAD_LIMIT:
                line = f"{message_id} {text}"
        lines.append(line)
    return _packed(lines, "\n")


def _packed(items: Iterable[str], separator: str) -> list[str]:
    """``items`` joined by ``separator``, in as few payloads under the limit as they
    fit (an item longer than the limit goes alone)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for item in items:
        added = len(item) + (len(separator) if current else 0)
        if current and size + added > PAYLOAD_LIMIT:
            chunks.append(separator.join(current))
            current, size = [], 0
            added = len(item)
        current.append(item)
        size += added
    if current:
        chunks.append(separator.join(current))
    return chunks


def parse_payload(payload: str) -> dict[str, str | None]:
    """The ids a notification names, each with its answer's JSON text when it has
    one: lines from :func:`answer_payloads`, or comma-separated ids (from
    :func:`payloads`, which is also what an older worker sends)."""
    if " " not in payload and "\n" not in payload:
        return dict.fromkeys(payload.split(","))
    found: dict[str, str | None] = {}
    for line in payload.split("\n"):
        message_id, _, answer_text = line.partition(" ")
        found[message_id] = answer_text or None
    return found


async def notify_verdicts(session: AsyncSession, channel: str, message_ids: Sequence[str]) -> None:
    """Tell the listening processes, when this transaction commits, that these
    messages have their verdicts."""
    if not message_ids:
        return
    await session.execute(_NOTIFY, {"channel": channel, "payloads": payloads(message_ids)})


class VerdictFeed:
    """The listening side: resolves this process's waiters from notifications."""

    def __init__(
        self,
        *,
        dsn: str,
        channel: str,
        sessions: async_sessionmaker[AsyncSession],
        waiters: VerdictWaiters,
        poll_seconds: float,
    ) -> None:
        self.channel = channel
        self._poll_seconds = poll_seconds
        self._dsn = dsn
        self._sessions = sessions
        self._waiters = waiters
        # Ids heard (or to look at) that a request here waits for, not read yet.
        self._due: set[str] = set()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._reading = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Set while the connection listens; connections counts the times it started.
        self.listening = asyncio.Event()
        self.connections = 0
        # Ids heard so far, waited for here or not.
        self.heard = 0

    async def start(self) -> None:
        """Start listening; returns once the feed listens (or after a bound: the
        requests' reads cover the time until it does)."""
        self._waiters.on_register = self._registered
        self._tasks = [
            asyncio.create_task(self._listen(), name="verdict-feed"),
            asyncio.create_task(self._read(), name="verdict-reader"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), START_WAIT_SECONDS)

    async def close(self) -> None:
        self._waiters.on_register = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    # Hearing

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        due = False
        named = parse_payload(payload)
        self.heard += len(named)
        for message_id, sent_answer in named.items():
            if self._waiters.waiting(message_id):
                if sent_answer is not None:
                    # The worker sent the answer along: nothing to read back.
                    self._waiters.resolve(message_id, json.loads(sent_answer))
                    continue
                self._due.add(message_id)
                due = True
            else:
                self._recent[message_id] = None
                if len(self._recent) > RECENT_IDS:
                    self._recent.popitem(last=False)
        if due:
            self._reading.set()

    def _registered(self, message_id: str) -> None:
        """A request waits for ``message_id``: its verdict may have been heard already."""
        if message_id in self._recent:
            del self._recent[message_id]
            self._due.add(message_id)
            self._reading.set()

    def _look_at_all(self) -> None:
        """Every waiting message, read once (after the connection was down)."""
        self._due.update(self._waiters.ids())
        if self._due:
            self._reading.set()

    async def _listen(self) -> None:
        delay = BACKOFF_FIRST_SECONDS
        while True:
            try:
                await self._listen_once()
                delay = BACKOFF_FIRST_SECONDS
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("verdict listener on %s: %s", self.channel, error)
            finally:
                self.listening.clear()
                # Nothing is pushed meanwhile: the requests read as often as without it.
                self._waiters.poll_seconds = LOCAL_POLL_SECONDS
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    async def _listen_once(self) -> None:
        connection = await asyncpg.connect(
            self._dsn,
            timeout=CONNECT_TIMEOUT_SECONDS,
            # Named after its channel, so operators (and tests) can tell it apart.
            server_settings={"application_name": self.channel},
        )
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            await connection.add_listener(self.channel, self._heard)
            self.connections += 1
            self.listening.set()
            self._waiters.poll_seconds = self._poll_seconds
            if self.connections > 1:
                log.info("verdict listener on %s is back", self.channel)
            # Listening from here on: what was committed before is read now.
            self._look_at_all()
            while not lost.is_set() and not connection.is_closed():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), PING_SECONDS)
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT_SECONDS)
            log.warning("verdict listener on %s lost its connection", self.channel)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)
            if not connection.is_closed():
                connection.terminate()

    # Reading

    async def _read(self) -> None:
        while True:
            await self._reading.wait()
            self._reading.clear()
            while self._due:
                waited = [mid for mid in self._due if self._waiters.waiting(mid)][:READ_CHUNK]
                self._due.difference_update(waited)
                if not waited:
                    self._due.clear()
                    break
                try:
                    answers = await self._answers(waited)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Tried again shortly, for as long as their requests wait.
                    log.exception("reading %d verdicts back failed", len(waited))
                    self._due.update(waited)
                    await asyncio.sleep(READ_RETRY_SECONDS)
                    continue
                for message_id, resource in answers.items():
                    self._waiters.resolve(message_id, resource)

    async def _answers(self, message_ids: list[str]) -> dict[str, Answer]:
        """The settled ones among these messages, as the API shows them."""
        rows: dict[str, Row] = {}
        events: dict[str, list[EventRow]] = {}
        async with self._sessions() as session:
            # Autocommit: no BEGIN and no ROLLBACK around the one statement.
            connection = await session.connection(
                execution_options={"isolation_level": "AUTOCOMMIT"}
            )
            result = await connection.execute(_WITH_EVENTS, {"ids": message_ids})
            for found in result:
                values = dict(found._mapping)
                status = values.pop("event_status")
                event: EventRow = (
                    status,
                    values.pop("event_at"),
                    values.pop("event_applied"),
                    values.pop("event_kind"),
                )
                rows.setdefault(values["id"], values)
                if status is not None:
                    events.setdefault(values["id"], []).append(event)
        return {
            message_id: answer(row, events.get(message_id, []))
            for message_id, row in rows.items()
            if Status(row["status"]) not in PENDING
        }
