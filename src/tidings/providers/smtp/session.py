"""One relay connection once it is open: its SMTP transactions, pipelined (RFC 2920)
when the relay offers ``PIPELINING``.

aiosmtplib opens the connection (TCP, implicit TLS or STARTTLS with the certificate
verified, EHLO, AUTH: :func:`.transport.open_connection`), and then this protocol
takes its transport over (``transport.set_protocol``) for the transactions.
Why not aiosmtplib's own commands: they cost one round trip each (MAIL, each RCPT,
DATA, the message: four for one recipient), and its protocol reads one reply per
command written (a second reply already received is dropped), so it cannot
pipeline. With ``PIPELINING`` the client writes ``MAIL``, every ``RCPT`` and
``DATA`` at once and reads their replies together, then the message: two round
trips. Measured with ``bench/email_send.py``'s sink, client and sink together took
about 0.33 ms of CPU per email pipelined against 0.52 ms through aiosmtplib, and
the rate nearly doubled (docs/performance.md). A relay that does not offer it gets
one command at a time, as before.

The session reads replies (multi-line ones joined with ``\\n``, as aiosmtplib
did) into a queue; the provider asks for as many as it sent commands. A reply
nobody asked for (a relay's ``421`` before it closes an idle connection) puts the
session out of step: the next transaction finds it and the connection is replaced.
A closed connection, a reply too long or malformed, or a timeout are
:class:`SessionLost` (or ``TimeoutError``): the provider drops the connection.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque

from tidings.providers.smtp.errors import Reply

# A whole reply (its continuation lines too) may not be longer; a relay streaming
# bytes with no end of line is dropped rather than buffered without bound.
MAX_REPLY_BYTES = 32 * 1024

_LINE_ENDS = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")
# Nothing below a space (CR, LF, NUL) nor DEL may reach a command line (injection).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class SessionLost(ConnectionError):
    """The connection closed, or the relay spoke out of turn or past the limits."""


class UnexpectedReply(Exception):
    """A reply that a command without a transaction (NOOP) should not get."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.shown)
        self.reply = reply


def command_line(verb: str, address: str, options: list[str]) -> bytes:
    """``MAIL FROM:<address> OPTIONS`` or ``RCPT TO:<address> OPTIONS``, checked:
    the addresses are validated ASCII long before, but a control character must
    never reach the wire whatever let it through."""
    line = " ".join([f"{verb}:<{address}>", *options])
    if _CONTROL.search(line):
        raise ValueError(f"{address!r} cannot be sent on an SMTP command line")
    return line.encode("ascii") + b"\r\n"


def message_payload(data: bytes) -> bytes:
    """The message as DATA sends it: CRLF line ends, leading dots doubled, the final
    ``.`` line (as aiosmtplib's ``data`` does)."""
    data = _LINE_ENDS.sub(b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return _LEADING_DOT.sub(b"..", data) + b".\r\n"


class SmtpSession(asyncio.Protocol):
    """The transactions on one open connection (see the module)."""

    def __init__(
        self, transport: asyncio.Transport, *, extensions: set[str], timeout: float
    ) -> None:
        self._transport = transport
        self.pipelining = "pipelining" in extensions
        self.dsn = "dsn" in extensions
        self._timeout = timeout
        self._buffer = bytearray()
        self._lines: list[str] = []
        self._replies: deque[Reply] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._wanted = 0
        self._closed = False
        transport.set_protocol(self)

    @property
    def is_connected(self) -> bool:
        return not self._closed and not self._transport.is_closing()

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[start : end + 1])
            start = end + 1
            try:
                code = int(line[:3])
            except ValueError:
                self._fail(f"a malformed reply line: {line[:80]!r}")
                return
            self._lines.append(line[4:].strip(b" \t\r\n").decode("utf-8", "replace"))
            if line[3:4] != b"-":
                self._replies.append(Reply(code, "\n".join(self._lines)))
                self._lines = []
        del buffer[:start]
        if len(buffer) + sum(len(text) for text in self._lines) > MAX_REPLY_BYTES:
            self._fail("a reply too long")
            return
        waiter = self._waiter
        if waiter is not None and len(self._replies) >= self._wanted and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._waiter is not None and not self._waiter.done():
            lost = SessionLost("the relay closed the connection")
            lost.__cause__ = exc
            self._waiter.set_exception(lost)

    def _fail(self, why: str) -> None:
        self._closed = True
        self._transport.abort()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(SessionLost(f"the relay sent {why}"))

    # What the provider uses

    def in_step(self) -> bool:
        """No reply is waiting unasked for (see the module)."""
        return not self._replies and not self._lines and not self._buffer

    def send(self, *lines: bytes) -> None:
        """Write commands (or a message); their replies are read with :meth:`replies`."""
        if not self.is_connected:
            raise SessionLost("the connection is closed")
        self._transport.write(lines[0] if len(lines) == 1 else b"".join(lines))

    async def replies(self, count: int) -> list[Reply]:
        """The next ``count`` replies, waiting (at most the timeout) for them."""
        if len(self._replies) < count:
            if self._closed:
                raise SessionLost("the relay closed the connection")
            self._wanted = count
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(self._timeout):
                    await self._waiter
            finally:
                self._waiter = None
        return [self._replies.popleft() for _ in range(count)]

    async def reply(self) -> Reply:
        return (await self.replies(1))[0]

    async def command(self, line: bytes) -> Reply:
        self.send(line)
        return await self.reply()

    async def quit(self) -> None:
        """``QUIT``, its reply awaited briefly; the connection closed either way."""
        try:
            if self.is_connected and self.in_step():
                self.send(b"QUIT\r\n")
                async with asyncio.timeout(2):
                    await self.reply()
        finally:
            self.close()

    def close(self) -> None:
        self._closed = True
        self._transport.close()
