"""A test SMSC speaking SMPP 3.4 on 127.0.0.1, with scenarios named after what they act.

It parses what it receives with its own few lines of ``struct`` (not Tidings'
codec, so a bug there is not mirrored here), checks the bind's credentials,
answers ``enquire_link``, and records every ``submit_sm`` decoded (:class:`Submitted`),
the most ``submit_sm`` ever outstanding on one bind, and the answers it got to
its own ``deliver_sm``. Scenarios (after Jasmin's simulators):

- :class:`HappySMSC` accepts everything, answering each ``submit_sm`` after
  ``answer_delay`` seconds (so a window can fill), ids in hex or decimal;
- :class:`ThrottlingSMSC` accepts ``per_second`` a second, then answers 0x58 to
  everything for a second;
- :class:`QueueFullSMSC` answers its first ``refusals`` submits 0x14 (or ``status``);
- :class:`ErrorOnSubmitSMSC` answers a given status for given destinations;
- :class:`DeliveryReceiptSMSC` sends a receipt for each accepted submit (text, TLVs or
  both; before the ``submit_sm_resp`` if asked; twice if asked; a destination
  ending in ``0002`` gets UNDELIV). Any scenario sends them with ``receipts=`` set;
  ``hold_receipts`` keeps them for a later bind (an ESME that went away), and
  ``receipts_elsewhere`` sends each on another bind than the one that submitted;
- :class:`BlackHoleSMSC` never answers a ``submit_sm``;
- :class:`UnbindOnSubmitSMSC` unbinds and closes on its first ``unbinds`` submits;
- :class:`SilentEnquireLinkSMSC` never answers ``enquire_link``;
- :class:`BadCredentialsSMSC` refuses every bind with 0x0E;
- :class:`BindErrorGenericNackSMSC` answers every bind with a ``generic_nack``.

:meth:`FakeSMSC.deliver_mo` sends a contact's message (one part, or concatenated
with an 8-bit UDH, a 16-bit UDH or SAR TLVs) and returns the ``deliver_sm_resp``
statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import struct
import time
from dataclasses import dataclass, field

HEADER = struct.Struct(">IIII")
BIND_TRANSCEIVER = 0x09
SUBMIT_SM = 0x04
DELIVER_SM = 0x05
UNBIND = 0x06
ENQUIRE_LINK = 0x15
RESP = 0x80000000
# The credentials the fake SMSC takes unless told otherwise.
SYSTEM_ID = "tidings"
PASSWORD = "secret"

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~"}
GSM7_EXTENSION |= {0x3E: "]", 0x40: "|", 0x65: "€"}


def gsm7_decode(data: bytes) -> str:
    out, escaped = [], False
    for octet in data:
        if escaped:
            out.append(GSM7_EXTENSION[octet])
            escaped = False
        elif octet == 0x1B:
            escaped = True
        else:
            out.append(GSM7_BASIC[octet])
    return "".join(out)


def gsm7_encode(text: str) -> bytes:
    reverse = {char: code for code, char in GSM7_EXTENSION.items()}
    out = bytearray()
    for char in text:
        if char in reverse:
            out += bytes((0x1B, reverse[char]))
        else:
            out.append(GSM7_BASIC.index(char))
    return bytes(out)


def _cstring(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\x00", at)
    return data[at:end].decode("latin-1"), end + 1


def _tlvs(data: bytes) -> dict[int, bytes]:
    found, at = {}, 0
    while at + 4 <= len(data):
        tag, length = struct.unpack_from(">HH", data, at)
        found[tag] = data[at + 4 : at + 4 + length]
        at += 4 + length
    return found


@dataclass
class Submitted:
    """One ``submit_sm`` as this SMSC read it."""

    source: str
    source_ton: int
    source_npi: int
    destination: str
    dest_ton: int
    dest_npi: int
    esm_class: int
    registered_delivery: int
    data_coding: int
    validity_period: str
    short_message: bytes
    tlvs: dict[int, bytes]
    bind: int
    message_id: str = ""
    status: int = -1
    # The whole PDU as it arrived, for another implementation to read.
    raw: bytes = b""

    @classmethod
    def parse(cls, body: bytes, bind: int) -> Submitted:
        _, at = _cstring(body, 0)
        source_ton, source_npi = body[at], body[at + 1]
        source, at = _cstring(body, at + 2)
        dest_ton, dest_npi = body[at], body[at + 1]
        destination, at = _cstring(body, at + 2)
        esm_class = body[at]
        _, at = _cstring(body, at + 3)
        validity, at = _cstring(body, at)
        registered, coding, length = body[at], body[at + 2], body[at + 4]
        short = body[at + 5 : at + 5 + length]
        return cls(
            source,
            source_ton,
            source_npi,
            destination,
            dest_ton,
            dest_npi,
            esm_class,
            registered,
            coding,
            validity,
            short,
            _tlvs(body[at + 5 + length :]),
            bind,
        )

    @property
    def udh(self) -> bytes:
        if not self.esm_class & 0x40:
            return b""
        return self.short_message[: 1 + self.short_message[0]]

    @property
    def text(self) -> str:
        data = self.short_message[len(self.udh) :] or self.tlvs.get(0x0424, b"")
        if self.data_coding == 8:
            return data.decode("utf-16-be")
        if self.data_coding == 3:
            return data.decode("latin-1")
        return gsm7_decode(data)


@dataclass
class Connection:
    number: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    bound: bool = False
    outstanding: int = 0
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    waiting: dict[int, asyncio.Future[int]] = field(default_factory=dict)

    def send(self, command_id: int, status: int, sequence: int, body: bytes = b"") -> None:
        if not self.writer.is_closing():
            self.writer.write(HEADER.pack(16 + len(body), command_id, status, sequence) + body)


class FakeSMSC:
    """Accepts everything (the base of every scenario; see :class:`HappySMSC`)."""

    def __init__(
        self,
        *,
        system_id: str = SYSTEM_ID,
        password: str = PASSWORD,
        answer_delay: float = 0.0,
        hex_ids: bool = True,
        receipts: str | None = None,
        before_response: bool = False,
        duplicate: bool = False,
        text_id_decimal: bool = False,
        hold_receipts: bool = False,
        receipts_elsewhere: bool = False,
    ) -> None:
        self.system_id = system_id
        self.receipts = receipts
        self.before_response = before_response
        self.duplicate = duplicate
        self.text_id_decimal = text_id_decimal
        self.hold_receipts = hold_receipts
        self.receipts_elsewhere = receipts_elsewhere
        self.receipt_binds: list[int] = []
        self.held: list[Submitted] = []
        self.password = password
        self.answer_delay = answer_delay
        self.hex_ids = hex_ids
        self.port = 0
        self.bind_attempts = 0
        self.binds = 0
        self.unbinds = 0
        self.enquire_links = 0
        self.submitted: list[Submitted] = []
        self.max_outstanding = 0
        self.deliver_answers: list[int] = []
        self.connections: list[Connection] = []
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.bound_event = asyncio.Event()

    # -- running ---------------------------------------------------------------------

    async def start(self, *, tls: ssl.SSLContext | None = None) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> FakeSMSC:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def drop(self) -> None:
        """Close every connection without an unbind (a network failure)."""
        for connection in self.connections:
            connection.writer.close()
            connection.bound = False
        self.bound_event.clear()

    @property
    def bound(self) -> list[Connection]:
        return [c for c in self.connections if c.bound and not c.writer.is_closing()]

    async def wait_bound(self, count: int = 1, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.bound) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} binds in time")
            await asyncio.sleep(0.01)

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(len(self.connections), reader, writer)
        self.connections.append(connection)
        try:
            while True:
                header = await reader.readexactly(16)
                length, command_id, status, sequence = HEADER.unpack(header)
                body = await reader.readexactly(length - 16)
                if command_id & RESP:
                    waiter = connection.waiting.pop(sequence, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(status)
                    continue
                await self._request(connection, command_id, sequence, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            connection.bound = False
            writer.close()

    async def _request(
        self, connection: Connection, command_id: int, sequence: int, body: bytes
    ) -> None:
        if command_id == BIND_TRANSCEIVER:
            self.bind_attempts += 1
            system_id, at = _cstring(body, 0)
            password, _ = _cstring(body, at)
            status = self.bind_status(system_id, password)
            connection.send(BIND_TRANSCEIVER | RESP, status, sequence, b"fakesmsc\x00")
            if status == 0:
                connection.bound = True
                self.binds += 1
                self.bound_event.set()
                self._release_held(connection)
        elif command_id == ENQUIRE_LINK:
            self.enquire_links += 1
            if self.answers_enquire_link:
                connection.send(ENQUIRE_LINK | RESP, 0, sequence)
        elif command_id == UNBIND:
            self.unbinds += 1
            connection.send(UNBIND | RESP, 0, sequence)
            connection.bound = False
        elif command_id == SUBMIT_SM:
            submitted = Submitted.parse(body, connection.number)
            submitted.raw = HEADER.pack(16 + len(body), command_id, 0, sequence) + body
            self.submitted.append(submitted)
            connection.outstanding += 1
            self.max_outstanding = max(self.max_outstanding, connection.outstanding)
            self.on_submit(connection, sequence, submitted)
        else:
            connection.send(0x80000000, 0x03, sequence)

    # -- what a scenario changes -------------------------------------------------------

    answers_enquire_link = True

    def bind_status(self, system_id: str, password: str) -> int:
        if system_id != self.system_id:
            return 0x0F
        return 0 if password == self.password else 0x0E

    def next_id(self) -> str:
        number = next(self._ids) + 0x2A00
        return f"{number:08X}" if self.hex_ids else str(number)

    def on_submit(self, connection: Connection, sequence: int, submitted: Submitted) -> None:
        self.answer(connection, sequence, submitted, 0)

    def answer(
        self, connection: Connection, sequence: int, submitted: Submitted, status: int
    ) -> None:
        def send() -> None:
            connection.outstanding -= 1
            submitted.status = status
            if status == 0:
                submitted.message_id = submitted.message_id or self.next_id()
                body = submitted.message_id.encode() + b"\x00"
            else:
                body = b""
            connection.send(SUBMIT_SM | RESP, status, sequence, body)
            if status == 0:
                self.accepted(connection, submitted)

        if self.answer_delay:
            asyncio.get_running_loop().call_later(self.answer_delay, send)
        else:
            send()

    def accepted(self, connection: Connection, submitted: Submitted) -> None:
        """A submit was answered ESME_ROK: its receipt follows when receipts are on
        (held for a later bind when ``hold_receipts``)."""
        if self.receipts is None or self.before_response:
            return
        if self.hold_receipts:
            self.held.append(submitted)
            return
        if self.receipts_elsewhere:
            # On another bind of the same account, as SMSCs with several binds do.
            others = [other for other in self.bound if other is not connection]
            connection = others[0] if others else connection
        self._spawn(self.receipt(connection, submitted))

    def _release_held(self, connection: Connection) -> None:
        # As an SMSC keeps receipts for an ESME that went away: delivered on a bind
        # made after the one that submitted is gone.
        gone = {c.number for c in self.connections if not c.bound or c.writer.is_closing()}
        due = [held for held in self.held if held.bind in gone]
        self.held = [held for held in self.held if held.bind not in gone]
        for submitted in due:
            self._spawn(self.receipt(connection, submitted))

    async def receipt(self, connection: Connection, submitted: Submitted) -> None:
        failed = submitted.destination.endswith("0002")
        stat, state, err = ("UNDELIV", 5, "034") if failed else ("DELIVRD", 2, "000")
        text_id = submitted.message_id
        if self.text_id_decimal:
            text_id = str(int(text_id, 16))
        text, tlvs = b"", {}
        if self.receipts in ("text", "both"):
            text = (
                f"id:{text_id} sub:001 dlvrd:{'000' if failed else '001'} "
                f"submit date:2612061200 done date:2612061201 stat:{stat} err:{err} "
                f"text:{submitted.text[:20]}"
            ).encode("latin-1", "replace")
        if self.receipts in ("tlv", "both"):
            tlvs = {0x001E: submitted.message_id.encode() + b"\x00", 0x0427: bytes((state,))}
            if failed:
                tlvs[0x0423] = b"\x03\x00\x22"
        self.receipt_binds.append(connection.number)
        for _ in range(2 if self.duplicate else 1):
            await self.deliver_sm(
                source=submitted.destination,
                destination=submitted.source,
                short_message=text,
                esm_class=0x04,
                tlvs=tlvs,
                connection=connection,
            )

    # -- the SMSC's own requests -------------------------------------------------------

    async def deliver_sm(
        self,
        *,
        source: str,
        destination: str,
        short_message: bytes,
        esm_class: int = 0,
        data_coding: int = 0,
        tlvs: dict[int, bytes] | None = None,
        source_ton: int = 1,
        connection: Connection | None = None,
        wait: bool = True,
    ) -> int | None:
        """Send one deliver_sm on a bound connection; its answer's status."""
        target = connection or self.bound[0]
        body = (
            b"\x00"
            + bytes((source_ton, 1))
            + source.encode()
            + b"\x00"
            + bytes((1, 1))
            + destination.encode()
            + b"\x00"
            + bytes((esm_class, 0, 0))
            + b"\x00"
            + b"\x00"
            + bytes((0, 0, data_coding, 0, len(short_message)))
            + short_message
            + b"".join(
                struct.pack(">HH", tag, len(value)) + value for tag, value in (tlvs or {}).items()
            )
        )
        sequence = next(target.sequence)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        target.waiting[sequence] = future
        target.send(DELIVER_SM, 0, sequence, body)
        if not wait:
            return None
        status = await asyncio.wait_for(future, 10)
        self.deliver_answers.append(status)
        return status

    async def enquire_link(self, connection: Connection | None = None) -> int:
        """Ask the ESME whether it is there; its answer's status."""
        target = connection or self.bound[0]
        sequence = next(target.sequence)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        target.waiting[sequence] = future
        target.send(ENQUIRE_LINK, 0, sequence)
        return await asyncio.wait_for(future, 10)

    async def deliver_mo(
        self,
        source: str,
        destination: str,
        text: str,
        *,
        split: int = 0,
        concat: str = "udh8",
        reference: int = 7,
    ) -> list[int | None]:
        """A contact's SMS: GSM-7 when it fits, else UCS-2; in ``split``-character
        parts when ``split`` is set (``udh8``, ``udh16`` or ``sar``)."""
        try:
            gsm7_encode(text)
            coding = 0
        except ValueError:
            coding = 8

        def encode(value: str) -> bytes:
            return gsm7_encode(value) if coding == 0 else value.encode("utf-16-be")

        chunks = [text[i : i + split] for i in range(0, len(text), split)] if split else [text]
        answers: list[int | None] = []
        for number, chunk in enumerate(chunks, start=1):
            data, esm, tlvs = encode(chunk), 0, {}
            if len(chunks) > 1 and concat == "udh8":
                data, esm = bytes((5, 0, 3, reference, len(chunks), number)) + data, 0x40
            elif len(chunks) > 1 and concat == "udh16":
                header = bytes((6, 8, 4)) + struct.pack(">H", reference)
                data, esm = header + bytes((len(chunks), number)) + data, 0x40
            elif len(chunks) > 1:
                tlvs = {
                    0x020C: struct.pack(">H", reference),
                    0x020E: bytes((len(chunks),)),
                    0x020F: bytes((number,)),
                }
            answers.append(
                await self.deliver_sm(
                    source=source,
                    destination=destination,
                    short_message=data,
                    esm_class=esm,
                    data_coding=coding,
                    tlvs=tlvs,
                )
            )
        return answers


class HappySMSC(FakeSMSC):
    pass


class ThrottlingSMSC(FakeSMSC):
    """``per_second`` submits a second; above, 0x58 to everything for a second."""

    def __init__(self, per_second: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.per_second = per_second
        self._window_start = 0.0
        self._count = 0
        self._throttled_until = 0.0
        self.throttled = 0

    def on_submit(self, connection: Connection, sequence: int, submitted: Submitted) -> None:
        now = time.monotonic()
        if now < self._throttled_until:
            self.throttled += 1
            self.answer(connection, sequence, submitted, 0x58)
            return
        if now - self._window_start >= 1.0:
            self._window_start, self._count = now, 0
        if self._count >= self.per_second:
            self._throttled_until = now + 1.0
            self.throttled += 1
            self.answer(connection, sequence, submitted, 0x58)
            return
        self._count += 1
        self.answer(connection, sequence, submitted, 0)


class QueueFullSMSC(FakeSMSC):
    def __init__(self, refusals: int = 1, status: int = 0x14, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.refusals = refusals
        self.status = status

    def on_submit(self, connection: Connection, sequence: int, submitted: Submitted) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            self.answer(connection, sequence, submitted, self.status)
        else:
            self.answer(connection, sequence, submitted, 0)


class ErrorOnSubmitSMSC(FakeSMSC):
    def __init__(self, errors: dict[str, int], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.errors = errors

    def on_submit(self, connection: Connection, sequence: int, submitted: Submitted) -> None:
        self.answer(connection, sequence, submitted, self.errors.get(submitted.destination, 0))


class DeliveryReceiptSMSC(FakeSMSC):
    """A receipt for every accepted submit: ``style`` text, tlv or both."""

    def __init__(self, style: str = "both", **kwargs: object) -> None:
        super().__init__(receipts=style, **kwargs)  # type: ignore[arg-type]

    def on_submit(self, connection: Connection, sequence: int, submitted: Submitted) -> None:
        if self.before_response:
            submitted.message_id = self.next_id()
            self._spawn(self._receipt_then_answer(connection, sequence, submitted))
        else:
            self.answer(connection, sequence, submitted, 0)

    async def _receipt_then_answer(
        self, connection: Connection, sequence: int, submitted: Submitted
    ) -> None:
        await self.receipt(connection, submitted)
        self.answer(connection, sequence, submitted, 0)


class BlackHoleSMSC(FakeSMSC):
    def on_submit(self, connection: Connection, sequence: int, submitted: Submitted) -> None:
        return None


class UnbindOnSubmitSMSC(FakeSMSC):
    def __init__(self, unbinds: int = 1, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.remaining = unbinds

    def on_submit(self, connection: Connection, sequence: int, submitted: Submitted) -> None:
        if self.remaining > 0:
            self.remaining -= 1
            connection.outstanding -= 1
            connection.send(UNBIND, 0, next(connection.sequence))
            connection.bound = False
            connection.writer.close()
            return
        self.answer(connection, sequence, submitted, 0)


class SilentEnquireLinkSMSC(FakeSMSC):
    answers_enquire_link = False


class BadCredentialsSMSC(FakeSMSC):
    def bind_status(self, system_id: str, password: str) -> int:
        return 0x0E


class BindErrorGenericNackSMSC(FakeSMSC):
    """Answers every bind with a generic_nack of sequence 0 (a bind it cannot read)."""

    async def _request(
        self, connection: Connection, command_id: int, sequence: int, body: bytes
    ) -> None:
        if command_id == BIND_TRANSCEIVER:
            self.bind_attempts += 1
            connection.send(0x80000000, 0x03, 0)
            return
        await super()._request(connection, command_id, sequence, body)
