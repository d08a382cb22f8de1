"""Telling other processes that something was committed (PostgreSQL).

On PostgreSQL, ``NOTIFY`` on a channel per schema tells every listening worker
to look for due rows now; each still polls on a short interval, so a lost
notification only delays work. SQLite (the embedded mode, one process) needs
none of this: the in-process wake is enough.

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


class WorkNotifier:
    def __init__(self, settings: Settings) -> None:
        self._dsn = postgres_dsn(settings)
        self.channel = f"tidings_work_{settings.database_schema or 'public'}"
        self._sender: asyncpg.Connection | None = None
        self._listener: asyncpg.Connection | None = None
        self._sending: asyncio.Task[None] | None = None
        self._again = False

    @property
    def enabled(self) -> bool:
        return self._dsn is not None

    def notify(self) -> None:
        """Ask for a NOTIFY soon; bursts of calls collapse into a few."""
        if self._dsn is None:
            return
        if self._sending is not None and not self._sending.done():
            self._again = True
            return
        self._sending = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        assert self._dsn is not None
        while True:
            self._again = False
            try:
                if self._sender is None or self._sender.is_closed():
                    self._sender = await asyncpg.connect(self._dsn, timeout=10)
                await self._sender.execute(f'NOTIFY "{self.channel}"')
            except (OSError, asyncpg.PostgresError) as error:
                # Workers poll anyway; a missed wake-up only delays the work.
                log.warning("NOTIFY failed: %s", error)
                self._sender = None
            if not self._again:
                return

    async def listen(self, callback: Callable[[], None]) -> None:
        if self._dsn is None:
            return
        self._listener = await asyncpg.connect(self._dsn, timeout=10)
        await self._listener.add_listener(self.channel, lambda *_: callback())

    async def close(self) -> None:
        if self._sending is not None:
            with contextlib.suppress(Exception):
                await self._sending
        for connection in (self._sender, self._listener):
            if connection is not None and not connection.is_closed():
                with contextlib.suppress(Exception):
                    await connection.close()
        self._sender = self._listener = None
