"""Telling other processes that something was committed (PostgreSQL).

On PostgreSQL, ``NOTIFY`` on a channel per schema tells the listening workers
what to look at now, by a topic in the payload: ``messages`` (new messages are
due: the dispatcher claims), ``reports`` (an API process stored provider reports
in the inbox: the inbox processor applies them), ``webhooks`` (reports were
applied, with their outbox rows: the webhook fan-out looks). A new message wakes
only the dispatchers, not every inbox processor. Each loop still polls on a short
interval, so a lost notification only delays work; a listening connection that
drops is opened again (and every loop woken once it is back). SQLite (the embedded mode)
needs none of this in one process, where the in-process wake is enough; with the
delivery side in a process of its own, :mod:`tidings.db.local_bus` does it.

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
from typing import Protocol

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


# The listening connection: opened again after 0.1 s doubling to 5 s when it drops,
# checked every 30 s when quiet, waited for up to 10 s when a process starts.
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0
PING_SECONDS = 30.0
START_WAIT_SECONDS = 10.0

# The topics of the work channel (the payload of its notifications).
MESSAGES = "messages"
REPORTS = "reports"
WEBHOOKS = "webhooks"
TOPICS = (MESSAGES, REPORTS, WEBHOOKS)


class Notifier(Protocol):
    """What the runtime tells other processes, and hears from them."""

    def notify(self, topic: str = MESSAGES) -> None: ...

    async def listen(self, callback: Callable[[str], None]) -> None: ...

    async def close(self) -> None: ...


class WorkNotifier:
    def __init__(self, settings: Settings) -> None:
        self._dsn = postgres_dsn(settings)
        self.channel = f"tidings_work_{settings.database_schema or 'public'}"
        self._sender: asyncpg.Connection | None = None
        self._listener: asyncpg.Connection | None = None
        self._sending: asyncio.Task[None] | None = None
        self._listening: asyncio.Task[None] | None = None
        # Set while the listening connection listens; connections counts its starts.
        self.listening = asyncio.Event()
        self.connections = 0
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
        topic (an older process) wakes the dispatcher and the inbox processor.

        The listening connection is opened again with a backoff when it drops, and
        once back every loop is woken, since what was committed meanwhile was told
        to nobody. Returns once listening (or after a bound: the polls cover it)."""
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

        self._listening = asyncio.get_running_loop().create_task(
            self._keep_listening(heard, callback), name="work-listener"
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), START_WAIT_SECONDS)

    async def _keep_listening(
        self, heard: Callable[[object, int, str, str], None], callback: Callable[[str], None]
    ) -> None:
        assert self._dsn is not None
        delay = BACKOFF_FIRST_SECONDS
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    self._dsn,
                    timeout=10,
                    # Named after its channel, so operators (and tests) can tell it apart.
                    server_settings={"application_name": self.channel},
                )
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(self.channel, heard)
                self._listener = connection
                self.connections += 1
                self.listening.set()
                delay = BACKOFF_FIRST_SECONDS
                if self.connections > 1:
                    log.info("work listener on %s is back", self.channel)
                    for topic in TOPICS:
                        callback(topic)
                while not lost.is_set() and not connection.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), PING_SECONDS)
                    if not lost.is_set():
                        await connection.fetchval("SELECT 1", timeout=10)
                log.warning("work listener on %s lost its connection", self.channel)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, asyncpg.PostgresError) as error:
                log.warning("work listener on %s: %s", self.channel, error)
            finally:
                self.listening.clear()
                if connection is not None and not connection.is_closed():
                    connection.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listening
            self._listening = None
        if self._sending is not None:
            with contextlib.suppress(Exception):
                await self._sending
        for connection in (self._sender, self._listener):
            if connection is not None and not connection.is_closed():
                with contextlib.suppress(Exception):
                    await connection.close()
        self._sender = self._listener = None
