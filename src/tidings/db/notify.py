"""Telling other processes that something was committed (PostgreSQL).

On PostgreSQL, ``NOTIFY`` on a channel per schema tells the listening workers
what to look at now, by a topic in the payload: ``messages`` (new messages are
due: the dispatcher claims), ``reports`` (an API process stored provider reports
in the inbox: the inbox processor applies them), ``webhooks`` (reports were
applied, with their outbox rows: the webhook fan-out looks). A new message wakes
only the dispatchers, not every inbox processor. Each loop still polls on a short
interval, so a lost notification only delays work. SQLite (the embedded mode,
one process) needs none of this: the in-process wake is enough.

A notification is sent after the commit of what it tells of, on a connection of
its own, so the work it names is visible to whoever hears it. That connection
commits without waiting for its WAL flush (``synchronous_commit=off``):
PostgreSQL gives a notifying transaction an id and a commit record, but the
notification is delivered at the commit whether or not that record is flushed,
and the record protects nothing (a notification lost in a crash only delays work
until the poll). Waiting for the flush cost each send one more disk flush before
a worker heard of it.

:func:`postgres_dsn` and :func:`channel_name` are shared with the verdict feed
(:mod:`tidings.messages.verdict_feed`), which tells API processes of verdicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable

import asyncpg
from sqlalchemy.engine import make_url

from tidings.settings import Settings

log = logging.getLogger("tidings.notify")

# PostgreSQL's identifiers (and so channel names) are at most 63 bytes.
_MAX_CHANNEL = 63


def postgres_dsn(settings: Settings) -> str | None:
    """The database as a plain asyncpg DSN, or None when it is not PostgreSQL."""
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def channel_name(topic: str, settings: Settings) -> str:
    """``tidings_<topic>_<schema or public>``: one channel per schema, so that
    deployments sharing a server do not hear each other."""
    schema = settings.database_schema or "public"
    name = f"tidings_{topic}_{schema}"
    if len(name) > _MAX_CHANNEL:
        # pg_notify refuses a longer name where LISTEN would cut it: a digest instead.
        name = f"tidings_{topic}_{hashlib.sha256(schema.encode()).hexdigest()[:32]}"
    return name


# The topics of the work channel (the payload of its notifications).
MESSAGES = "messages"
REPORTS = "reports"
WEBHOOKS = "webhooks"
TOPICS = (MESSAGES, REPORTS, WEBHOOKS)


class WorkNotifier:
    def __init__(self, settings: Settings) -> None:
        self._dsn = postgres_dsn(settings)
        self.channel = f"tidings_work_{settings.database_schema or 'public'}"
        self._sender: asyncpg.Connection | None = None
        self._listener: asyncpg.Connection | None = None
        self._sending: asyncio.Task[None] | None = None
        # Topics asked for and not sent yet: a burst of calls collapses into one NOTIFY each.
        self._pending: set[str] = set()

    @property
    def enabled(self) -> bool:
        return self._dsn is not None

    def notify(self, topic: str = MESSAGES) -> None:
        """Ask for a NOTIFY of ``topic`` soon; bursts of calls collapse into a few."""
        if self._dsn is None:
            return
        self._pending.add(topic)
        if self._sending is not None and not self._sending.done():
            return
        self._sending = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        assert self._dsn is not None
        while self._pending:
            topics = sorted(self._pending)
            self._pending.clear()
            # One round trip and one (unflushed) commit for every topic waiting.
            statement = "; ".join(f"NOTIFY \"{self.channel}\", '{topic}'" for topic in topics)
            try:
                if self._sender is None or self._sender.is_closed():
                    self._sender = await asyncpg.connect(
                        self._dsn,
                        timeout=10,
                        server_settings={"synchronous_commit": "off"},
                    )
                await self._sender.execute(statement)
            except (OSError, asyncpg.PostgresError) as error:
                # Workers poll anyway; a missed wake-up only delays the work.
                log.warning("NOTIFY failed: %s", error)
                self._sender = None

    def _own(self, pid: int) -> bool:
        """Whether a notification came from this process's own sender."""
        sender = self._sender
        return sender is not None and not sender.is_closed() and sender.get_server_pid() == pid

    async def listen(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(topic)`` for each notification another process sends
        (this process wakes its own loops directly). A payload that names no known
        topic (an older process) wakes the dispatcher and the inbox processor."""
        if self._dsn is None:
            return

        def heard(_connection: object, pid: int, _channel: str, payload: str) -> None:
            if self._own(pid):
                return
            if payload in TOPICS:
                callback(payload)
            else:
                callback(MESSAGES)
                callback(REPORTS)

        self._listener = await asyncpg.connect(self._dsn, timeout=10)
        await self._listener.add_listener(self.channel, heard)

    async def close(self) -> None:
        if self._sending is not None:
            with contextlib.suppress(Exception):
                await self._sending
        for connection in (self._sender, self._listener):
            if connection is not None and not connection.is_closed():
                with contextlib.suppress(Exception):
                    await connection.close()
        self._sender = self._listener = None
