"""One SMPP bind (:class:`Session`), and what keeps one up (:class:`BindKeeper`).

A :class:`Session` is one TCP (or TLS) connection bound as a transceiver. Requests
are written at once and matched to their answers by sequence number; answers
come back as futures, so any number can be outstanding (the window is the
caller's, :mod:`.window`). The reader answers the SMSC's own requests:
``enquire_link`` at once, ``unbind`` then closes, and each ``deliver_sm`` only
after the handler returned, which stores it durably first; a handler that fails
answers ``ESME_RX_T_APPN`` so the SMSC delivers it again later. ``deliver_sm``
are handed to the handler in batches: every one that arrived while the previous
batch was being stored goes in the next (one insert and one commit for a burst of
receipts instead of one each); their answers go out together once it returned.
A batch the handler refuses is tried again one ``deliver_sm`` at a time, so one
that cannot be stored does not hold back the others. Every PDU written during one
turn of the event loop leaves in one write at its end (:meth:`Session._send`): the
``submit_sm`` of the messages a group commit handed over together cost one system
call, not one each. When nothing has
been received for ``enquireLinkSeconds`` an ``enquire_link`` is sent, and a
request unanswered within the response timer drops the connection (a link that
is silently dead). :meth:`Session.close` unbinds cleanly.

A :class:`BindKeeper` binds again after a drop, waiting with exponential backoff
and jitter, except when the SMSC refused the credentials (0x0D, 0x0E, 0x0F): then
it stops for good and says so (``refused``), as rebinding with the same
password would only lock the account; the provider is rebuilt when its config
changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable

from tidings.providers.errors import ConfigurationError, ConnectionDown
from tidings.providers.smpp import pdus
from tidings.providers.smpp.config import SmppConfig
from tidings.providers.smpp.pdus import Pdu, ShortMessage
from tidings.providers.smpp.status_codes import CREDENTIALS, ESME_ROK, describe, error_for

log = logging.getLogger("tidings.providers.smpp")

ESME_RX_T_APPN = 0x64
ESME_RINVCMDID = 0x03
# Stores the deliver_sm of a batch (durably) before it returns.
DeliverHandler = Callable[[list[ShortMessage]], Awaitable[None]]


class BindRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"bind refused: {describe(status)}")
        self.status = status


class Session:
    def __init__(
        self, config: SmppConfig, on_deliver: DeliverHandler, *, name: str = "smpp"
    ) -> None:
        self._config = config
        self._on_deliver = on_deliver
        self.name = name
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._sequence = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        # deliver_sm read and not yet handed to the handler; the task storing them.
        self._delivered: list[Pdu] = []
        self._storer: asyncio.Task[None] | None = None
        self._last_heard = time.monotonic()
        self._closed = asyncio.Event()
        self.closed_reason = ""
        # PDUs written during this turn of the event loop, sent together at its end.
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False

    # -- opening and closing -------------------------------------------------------

    async def open(self) -> None:
        """Connect and bind as a transceiver; raises :class:`BindRefused`, ``OSError``
        or ``TimeoutError``."""
        config = self._config
        context = ssl.create_default_context() if config.tls else None
        async with asyncio.timeout(config.response_timeout_seconds):
            self._reader, self._writer = await asyncio.open_connection(
                config.host, config.port, ssl=context
            )
        try:
            body = pdus.Bind(
                config.system_id, config.password.get_secret_value(), config.system_type
            ).encode()
            sequence = self._next_sequence()
            self._writer.write(Pdu(pdus.BIND_TRANSCEIVER, 0, sequence, body).encode())
            async with asyncio.timeout(config.response_timeout_seconds):
                answer = await pdus.read_pdu(self._reader)
                while answer.sequence != sequence or not answer.is_response:
                    if answer.command_id == pdus.GENERIC_NACK:
                        # Some SMSCs nack a bind they cannot read, with sequence 0.
                        raise BindRefused(answer.status or 0xFF)
                    # An SMSC may send enquire_link before answering the bind.
                    if answer.command_id == pdus.ENQUIRE_LINK:
                        self._answer(answer, ESME_ROK)
                    answer = await pdus.read_pdu(self._reader)
            if answer.status != ESME_ROK:
                raise BindRefused(answer.status)
        except BaseException:
            self._writer.close()
            raise
        self._last_heard = time.monotonic()
        self._spawn(self._read_loop(), "reader")
        self._spawn(self._keep_alive(), "keepalive")

    async def close(self) -> None:
        """Unbind (waiting briefly for the answer), then close the connection."""
        if self.is_open:
            with contextlib.suppress(Exception):
                future = self.request(pdus.UNBIND, b"")
                await asyncio.wait_for(future, min(self._config.response_timeout_seconds, 5))
        self._drop("closed")
        for task in list(self._tasks) + list(self._handlers):
            task.cancel()
        for task in list(self._tasks) + list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @property
    def is_open(self) -> bool:
        return self._writer is not None and not self._closed.is_set()

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    async def wait_closed(self) -> str:
        await self._closed.wait()
        return self.closed_reason

    def _drop(self, reason: str) -> None:
        """The connection is over: every outstanding request fails."""
        if self._closed.is_set():
            return
        self.closed_reason = reason
        if self._writer is not None:
            # What was written this turn (an unbind's answer, say) still goes out.
            self._flush()
            self._writer.close()
        self._closed.set()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(
                    ConnectionDown("smpp_bind_lost", f"The SMPP bind was lost ({reason}).")
                )

    # -- requests ------------------------------------------------------------------

    def request(self, command_id: int, body: bytes) -> asyncio.Future[Pdu]:
        """Write a request now; its answer is the future's result."""
        if not self.is_open or self._writer is None:
            raise ConnectionDown("smpp_not_bound", "The SMPP bind is not open.")
        sequence = self._next_sequence()
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = future
        future.add_done_callback(lambda _: self._pending.pop(sequence, None))
        self._send(Pdu(command_id, 0, sequence, body).encode())
        return future

    def _next_sequence(self) -> int:
        sequence = next(self._sequence)
        if sequence >= 0x7FFFFFFF:
            self._sequence = itertools.count(1)
        return sequence

    # -- what the SMSC sends ---------------------------------------------------------

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                pdu = await pdus.read_pdu(self._reader)
                self._last_heard = time.monotonic()
                if pdu.is_response:
                    self._answered(pdu)
                elif pdu.command_id == pdus.DELIVER_SM:
                    self._delivered.append(pdu)
                    if self._storer is None:
                        task = asyncio.create_task(self._store(), name=f"{self.name}-deliver")
                        self._storer = task
                        self._handlers.add(task)
                        task.add_done_callback(self._handlers.discard)
                elif pdu.command_id == pdus.ENQUIRE_LINK:
                    self._answer(pdu, ESME_ROK)
                elif pdu.command_id == pdus.UNBIND:
                    self._answer(pdu, ESME_ROK)
                    self._drop("the SMSC unbound")
                    return
                else:
                    self._write(Pdu(pdus.GENERIC_NACK, ESME_RINVCMDID, pdu.sequence))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self._drop("the SMSC closed the connection")
        except pdus.PduError as error:
            self._drop(f"unreadable PDU: {error}")

    def _answered(self, pdu: Pdu) -> None:
        future = self._pending.pop(pdu.sequence, None)
        if future is not None and not future.done():
            future.set_result(pdu)

    async def _store(self) -> None:
        """Store what was delivered, batch after batch, until nothing is waiting."""
        try:
            while self._delivered:
                batch, self._delivered = self._delivered, []
                self._write_all(await self._handle(batch))
        finally:
            self._storer = None

    async def _handle(self, batch: list[Pdu]) -> list[Pdu]:
        """Hand a batch to the handler; the answers (in the batch's order)."""
        answers: list[Pdu] = []
        readable: list[tuple[Pdu, ShortMessage]] = []
        for pdu in batch:
            try:
                readable.append((pdu, ShortMessage.decode(pdu.body)))
            except pdus.PduError:
                log.warning("%s: an unreadable deliver_sm was refused", self.name)
                answers.append(self._answer_of(pdu, 0x08))
        if not readable:
            return answers
        try:
            await self._on_deliver([message for _, message in readable])
        except Exception:
            if len(readable) == 1:
                # Not stored: the SMSC keeps it and delivers it again later.
                log.exception("%s: storing a deliver_sm failed", self.name)
                return [*answers, self._answer_of(readable[0][0], ESME_RX_T_APPN)]
            log.exception(
                "%s: storing %d deliver_sm failed; storing them one by one",
                self.name,
                len(readable),
            )
            for pdu, _ in readable:
                answers.extend(await self._handle([pdu]))
            return answers
        answers.extend(self._answer_of(pdu, ESME_ROK) for pdu, _ in readable)
        return answers

    def _answer(self, pdu: Pdu, status: int) -> None:
        self._write(self._answer_of(pdu, status))

    @staticmethod
    def _answer_of(pdu: Pdu, status: int) -> Pdu:
        body = pdus.message_id_body("") if pdu.command_id == pdus.DELIVER_SM else b""
        return Pdu(pdu.command_id | pdus.RESPONSE, status, pdu.sequence, body)

    def _write(self, pdu: Pdu) -> None:
        self._send(pdu.encode())

    def _write_all(self, answers: list[Pdu]) -> None:
        for pdu in answers:
            self._send(pdu.encode())

    def _send(self, data: bytes) -> None:
        """Write a PDU at the end of this turn of the event loop, with every other
        written meanwhile: the submissions of many messages started together (and a
        batch's deliver_sm_resp) leave in one write, one system call, instead of one each."""
        if self._writer is None or self._closed.is_set():
            return
        self._outgoing.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        outgoing, self._outgoing = self._outgoing, []
        if outgoing and self._writer is not None and not self._closed.is_set():
            self._writer.write(b"".join(outgoing))

    async def _keep_alive(self) -> None:
        every = self._config.enquire_link_seconds
        while self.is_open:
            idle = time.monotonic() - self._last_heard
            if idle < every:
                await asyncio.sleep(every - idle)
                continue
            try:
                future = self.request(pdus.ENQUIRE_LINK, b"")
                await asyncio.wait_for(future, self._config.response_timeout_seconds)
            except TimeoutError:
                log.warning("%s: enquire_link unanswered; dropping the bind", self.name)
                self._drop("enquire_link unanswered")
                return
            except ConnectionDown:
                return
            # Our own enquire_link counts: without traffic we ask once per period.
            self._last_heard = time.monotonic()

    def _spawn(self, coroutine: Awaitable[None], what: str) -> None:
        async def run() -> None:
            await coroutine

        task = asyncio.create_task(run(), name=f"{self.name}-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class BindKeeper:
    """Keeps one :class:`Session` bound, binding again after a drop."""

    RECONNECT_MIN_SECONDS = 0.5
    RECONNECT_MAX_SECONDS = 30.0

    def __init__(self, config: SmppConfig, on_deliver: DeliverHandler, *, name: str) -> None:
        self._config = config
        self._on_deliver = on_deliver
        self.name = name
        self.session: Session | None = None
        self.refused: ConfigurationError | None = None
        self.last_problem = "not bound yet"
        self.binds = 0
        # Set once the first bind attempt has an outcome (bound, refused, failed).
        self.attempted = asyncio.Event()
        self._stopping = False
        self._changed = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self.session is not None and self.session.is_open

    async def wait_ready(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while not self.ready and self.refused is None and not self._stopping:
                    self._changed.clear()
                    await self._changed.wait()
        return self.ready

    async def run(self) -> None:
        delay = self.RECONNECT_MIN_SECONDS
        while not self._stopping:
            session = Session(self._config, self._on_deliver, name=self.name)
            try:
                await session.open()
            except BindRefused as refused:
                if refused.status in CREDENTIALS:
                    error = error_for(refused.status)
                    assert isinstance(error, ConfigurationError)
                    self.refused = error
                    self.last_problem = error.message
                    log.error("%s: %s Not binding again.", self.name, error.message)
                    self.attempted.set()
                    self._changed.set()
                    return
                self.last_problem = str(refused)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, pdus.PduError) as error:
                self.last_problem = f"cannot reach the SMSC ({type(error).__name__})"
            else:
                self.attempted.set()
                self.binds += 1
                self.session = session
                delay = self.RECONNECT_MIN_SECONDS
                self._changed.set()
                try:
                    reason = await session.wait_closed()
                finally:
                    self.session = None
                    self._changed.set()
                    # Idempotent: stop() may have closed it already.
                    await session.close()
                if self._stopping:
                    return
                self.last_problem = f"bind lost: {reason}"
                log.warning("%s: %s; binding again", self.name, reason)
            self.attempted.set()
            # Jitter spreads the rebinds of many processes after an SMSC restart.
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, self.RECONNECT_MAX_SECONDS)

    async def stop(self) -> None:
        self._stopping = True
        self._changed.set()
        session = self.session
        if session is not None:
            await session.close()
