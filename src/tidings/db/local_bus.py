"""Telling the processes that share one SQLite file what was committed.

The embedded mode can run its delivery side in a process of its own
(``tidings serve --delivery-process``): the API processes store and answer, the
delivery process claims, submits and records verdicts and receipts, each on its
own core. SQLite has no ``LISTEN``/``NOTIFY``, so the delivery process listens on
a Unix socket instead (Linux's abstract namespace, named after the database
file: nothing on disk to clean up, and one per database), and every API process
keeps one connection to it. Lines of text go both ways:

- ``wake <topic>`` (API to delivery): work of ``topic`` (:mod:`tidings.db.notify`'s
  topics) was committed: new messages to claim, provider reports to apply;
- ``wait <message id>`` (API to delivery): a request here waits for that
  message's verdict; ``unwait <message id>``: not any more (it stopped waiting
  before the verdict came);
- ``verdict <message id> <answer>`` (delivery to the API process that waits): the
  verdict is committed; the answer is the message as the API shows it, as JSON
  (:func:`tidings.messages.rows.answer`), or nothing when the request should
  read it back itself.

Every line is sent after the commit of what it tells of, so whoever hears it sees
that work. A request registers before it wakes the delivery side, on the same
connection, so the delivery process knows of the wait before it can claim the
message; a verdict recorded before its ``wait`` arrived (a claim by the delivery
process's own poll) is remembered for a while and answered, without an answer,
when the ``wait`` comes. Nothing here is needed for correctness: the dispatcher
polls, and a waiting request reads its own message every
``TIDINGS_SEND_WAIT_POLL_SECONDS`` while connected (every 0.5 s while not), so a
line lost with a restarting process only delays work. An API process reconnects
with a backoff, and once back says ``wait`` again for every request still waiting.

Lines written in one turn of the event loop go out in one write.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import socket
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from tidings.messages.waiters import LOCAL_POLL_SECONDS, Answer, VerdictWaiters

log = logging.getLogger("tidings.bus")

BACKOFF_FIRST_SECONDS = 0.05
BACKOFF_MAX_SECONDS = 2.0
# How long a starting API process waits for its first connection before it serves
# anyway (the delivery process may still be starting: the polls cover it).
START_WAIT_SECONDS = 5.0
# Verdicts recorded lately that nobody had said ``wait`` for yet.
RECENT_VERDICTS = 16_384
# A line longer than this is a peer speaking another protocol: the connection is dropped.
LINE_LIMIT = 1_048_576


def bus_address(database_url: str) -> str | None:
    """The socket of the delivery process for a SQLite file; None for PostgreSQL
    (which has ``NOTIFY``) or an in-memory database (one process only)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    digest = hashlib.sha256(str(url.database).encode()).hexdigest()[:40]
    return f"\0tidings-bus-{digest}"


async def _connect(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    # A socket of our own: uvloop refuses abstract names given as a path.
    connecting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connecting.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(connecting, address)
    except BaseException:
        connecting.close()
        raise
    return await asyncio.open_unix_connection(sock=connecting, limit=LINE_LIMIT)


class _Lines:
    """Lines for one connection, written once per turn of the loop."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self._pending: list[bytes] = []
        # Lines sent ``once`` this turn: a burst of sends wakes the delivery side once.
        self._once: set[bytes] = set()

    def send(self, line: str, *, once: bool = False) -> None:
        """Queue ``line``; ``once``: not again if it is queued already this turn."""
        if self.writer.is_closing():
            return
        encoded = line.encode() + b"\n"
        if once:
            if encoded in self._once:
                return
            self._once.add(encoded)
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(encoded)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        self._once.clear()
        if pending and not self.writer.is_closing():
            self.writer.write(b"".join(pending))


class DeliveryEnd:
    """The delivery process's side: listens, wakes its loops, sends verdicts."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._server: asyncio.Server | None = None
        self._on_wake: Callable[[str], None] | None = None
        # Message id -> the connections whose requests wait for it.
        self._waited: dict[str, set[_Lines]] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.heard_waits = 0

    async def start(self, on_wake: Callable[[str], None]) -> None:
        self._on_wake = on_wake
        # A socket of our own: uvloop refuses abstract names given as a path.
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listening.bind(self.address)
            listening.listen(64)
            listening.setblocking(False)
        except OSError:
            listening.close()
            raise
        self._server = await asyncio.start_unix_server(
            self._serve, sock=listening, limit=LINE_LIMIT
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        lines = _Lines(writer)
        try:
            while line := await reader.readline():
                self._heard(line.decode("utf-8", "replace").rstrip("\n"), lines)
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as error:
            log.warning("delivery bus connection dropped: %s", error)
        finally:
            self._connections.pop(task, None)
            for message_id in [mid for mid, ends in self._waited.items() if lines in ends]:
                self._forget(message_id, lines)
            writer.close()

    def _heard(self, line: str, lines: _Lines) -> None:
        kind, _, rest = line.partition(" ")
        if kind == "wake" and self._on_wake is not None:
            self._on_wake(rest)
        elif kind == "unwait" and rest:
            self._forget(rest, lines)
        elif kind == "wait" and rest:
            self.heard_waits += 1
            if rest in self._recent:
                # Recorded before this ``wait`` came: the request reads it back.
                del self._recent[rest]
                lines.send(f"verdict {rest}")
            else:
                self._waited.setdefault(rest, set()).add(lines)

    def _forget(self, message_id: str, lines: _Lines) -> None:
        ends = self._waited.get(message_id)
        if ends is not None:
            ends.discard(lines)
            if not ends:
                del self._waited[message_id]

    def waiting(self, message_id: str) -> bool:
        return message_id in self._waited

    def resolve(self, message_id: str, answer: Answer | None) -> None:
        """The verdict of ``message_id`` is committed: tell whoever waits for it."""
        ends = self._waited.pop(message_id, None)
        if ends is None:
            self._recent[message_id] = None
            if len(self._recent) > RECENT_VERDICTS:
                self._recent.popitem(last=False)
            return
        line = f"verdict {message_id}"
        if answer is not None:
            line += " " + json.dumps(answer, separators=(",", ":"))
        for lines in ends:
            lines.send(line)

    # The work notifier's surface (tidings.db.notify.WorkNotifier).

    def notify(self, topic: str = "messages") -> None:
        """The API processes do no delivery work: nothing to tell them."""

    async def listen(self, callback: Callable[[str], None]) -> None:
        await self.start(callback)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        # Closed from our side, each connection's reader ends as at the peer's close.
        connections = list(self._connections.items())
        for _, writer in connections:
            writer.close()
        if connections:
            await asyncio.wait([task for task, _ in connections], timeout=5)


class ApiEnd:
    """An API process's side: wakes the delivery process, hears its verdicts."""

    def __init__(self, address: str, waiters: VerdictWaiters, poll_seconds: float) -> None:
        self.address = address
        self._waiters = waiters
        self._poll_seconds = poll_seconds
        self._lines: _Lines | None = None
        self._task: asyncio.Task[None] | None = None
        # Set while connected; connections counts the times it connected.
        self.connected = asyncio.Event()
        self.connections = 0
        self.heard_verdicts = 0

    # The verdict feed's surface (tidings.messages.verdict_feed.VerdictFeed).

    async def start(self) -> None:
        """Connect (and keep connecting); returns once connected, or after a bound."""
        self._waiters.on_register = self._registered
        self._waiters.on_abandon = self._abandoned
        self._task = asyncio.create_task(self._keep_connected(), name="delivery-bus")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), START_WAIT_SECONDS)

    def _registered(self, message_id: str) -> None:
        if self._lines is not None:
            self._lines.send(f"wait {message_id}")

    def _abandoned(self, message_id: str) -> None:
        if self._lines is not None:
            self._lines.send(f"unwait {message_id}")

    async def _keep_connected(self) -> None:
        delay = BACKOFF_FIRST_SECONDS
        while True:
            try:
                reader, writer = await _connect(self.address)
            except OSError:
                # The delivery process is not listening (yet, or any more).
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            delay = BACKOFF_FIRST_SECONDS
            try:
                await self._connected(reader, writer)
            except (ConnectionError, asyncio.LimitOverrunError, ValueError) as error:
                log.warning("delivery bus connection dropped: %s", error)
            finally:
                self._lines = None
                self.connected.clear()
                # Nothing is pushed meanwhile: the requests read as often as without it.
                self._waiters.poll_seconds = LOCAL_POLL_SECONDS
                writer.close()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._lines = lines = _Lines(writer)
        self.connections += 1
        if self.connections > 1:
            log.info("delivery bus is back")
        # Whatever was committed while nobody listened: the requests waiting now say
        # so again, and the delivery side looks for work.
        for message_id in self._waiters.ids():
            lines.send(f"wait {message_id}")
        for topic in ("messages", "reports", "webhooks"):
            lines.send(f"wake {topic}")
        self._waiters.poll_seconds = self._poll_seconds
        self.connected.set()
        while line := await reader.readline():
            self._heard(line.decode("utf-8", "replace").rstrip("\n"))

    def _heard(self, line: str) -> None:
        kind, _, rest = line.partition(" ")
        if kind != "verdict" or not rest:
            return
        message_id, _, answer = rest.partition(" ")
        self.heard_verdicts += 1
        parsed: Any = json.loads(answer) if answer else None
        self._waiters.resolve(message_id, parsed)

    # The work notifier's surface (tidings.db.notify.WorkNotifier).

    def notify(self, topic: str = "messages") -> None:
        if self._lines is not None:
            self._lines.send(f"wake {topic}", once=True)

    async def listen(self, callback: Callable[[str], None]) -> None:
        """An API process does no delivery work: nothing to hear but verdicts."""

    async def close(self) -> None:
        self._waiters.on_register = self._waiters.on_abandon = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


class RelayedWaiters(VerdictWaiters):
    """The delivery process's waiters: the requests of the API processes, by the
    bus, as well as any of its own."""

    def __init__(self, relay: DeliveryEnd) -> None:
        super().__init__()
        self.relay = relay

    def waiting(self, message_id: str) -> bool:
        return super().waiting(message_id) or self.relay.waiting(message_id)

    def resolve(self, message_id: str, answer: Answer | None = None) -> None:
        super().resolve(message_id, answer)
        self.relay.resolve(message_id, answer)
