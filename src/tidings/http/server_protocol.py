"""The HTTP/1.1 connections of ``tidings serve``: uvicorn's httptools protocol with
the limits uvicorn does not have.

uvicorn's httptools protocol takes request heads of any size (a 32 MB header was
accepted) and never times out a client that is slow to send: only an idle
keep-alive connection is closed. :class:`GuardedHttpToolsProtocol` adds, from the
``TIDINGS_SERVER__*`` settings (:class:`~tidings.settings.ServerSettings`):

- a size limit on a request's line and headers together: past it, 431;
- a deadline for the whole head, from the connection's opening or the request's
  first byte (a client dribbling a byte at a time does not extend it): 408, or a
  plain close if not one byte of a request came;
- a limit on the silence while a body comes in: 408 (the route sees the client
  gone), or a plain close once the answer has started.

It also writes an answer's head and body in one piece (:class:`OneWriteTransport`),
where uvicorn writes them apart.

A refusal is written with ``Connection: close``; the connection is then
half-closed and what the client still sends is read and dropped for a moment
before closing (a "lingering close"), so that the client reads the answer
instead of a connection reset. The class is named by its import path in
``uvicorn.run(http=...)``, so every worker process builds it from its own
environment.
"""

from __future__ import annotations

import asyncio
import json
from asyncio import TimerHandle
from collections.abc import Callable
from enum import Enum
from functools import cache
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from tidings.http.problems import problem_body
from tidings.settings import ServerSettings, Settings

IMPORT_PATH = "tidings.http.server_protocol:GuardedHttpToolsProtocol"

# How long, and how much, a refused client's further bytes are read and dropped.
LINGER_SECONDS = 1.0
LINGER_BYTES = 1_048_576


@cache
def server_limits() -> ServerSettings:
    return Settings().server


class _Phase(Enum):
    HEAD = "head"  # waiting for, or reading, a request's line and headers
    BODY = "body"  # reading a request's body
    DONE = "done"  # the request has been read; the answer is the app's business


def _refusal(status: int, reason: str, code: str, detail: str) -> bytes:
    body = json.dumps(problem_body(status, code, detail), separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = server_limits()
        self._max_head = limits.max_header_bytes
        self._head_timeout = limits.header_timeout_seconds
        self._body_timeout = limits.body_timeout_seconds
        self._phase = _Phase.HEAD
        self._head_bytes = 0
        self._timer: TimerHandle | None = None
        self._refused = False
        self._lingered = 0

    # Timers

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._head_bytes == 0:
            # Connected, and not one byte of a request since: nothing to answer.
            self.transport.close()
            return
        self._refuse(
            _refusal(
                408,
                "Request Timeout",
                "request_timeout",
                f"The request's headers did not arrive within {self._head_timeout:g} s.",
            )
        )

    def _body_timed_out(self) -> None:
        self._timer = None
        if self.flow.read_paused:
            # The app is not reading (yet): the client is not the slow one.
            self._arm(self._body_timeout, self._body_timed_out)
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        self._refuse(
            _refusal(
                408,
                "Request Timeout",
                "request_timeout",
                f"The request body stopped coming for {self._body_timeout:g} s.",
            )
        )

    def _refuse(self, answer: bytes) -> None:
        """Answer, half-close, and drop what still comes for a moment."""
        self._refused = True
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            # The route's own answer, if it ever comes, goes nowhere.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        if self.transport.is_closing():
            return
        self.transport.write(answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._head_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self.transport.close()
            return
        if self._phase is _Phase.BODY:
            self._arm(self._body_timeout, self._body_timed_out)
        else:
            self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._phase is not _Phase.BODY
            and self._head_bytes > self._max_head
            and not self._refused
            and not self.transport.is_closing()
        ):
            self._refuse(
                _refusal(
                    431,
                    "Request Header Fields Too Large",
                    "headers_too_large",
                    f"The request line and headers exceed {self._max_head} bytes.",
                )
            )

    def handle_websocket_upgrade(self) -> None:
        # The connection is the WebSocket protocol's from here on, timers included.
        self._disarm()
        super().handle_websocket_upgrade()

    # Parser callbacks (called from within data_received)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase is not _Phase.HEAD or self._timer is None:
            self._phase = _Phase.HEAD
            self._arm(self._head_timeout, self._head_timed_out)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # (Not for an upgrade, where uvicorn made no cycle for this request.)
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = OneWriteTransport(self.transport, cycle)  # type: ignore[assignment]
        self._phase = _Phase.BODY
        self._head_bytes = 0
        self._arm(self._body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _Phase.DONE
        self._head_bytes = 0
        self._disarm()


class OneWriteTransport:
    """The connection's transport as one answer's cycle sees it: an answer's head is
    held until the first piece of its body and written with it.

    uvicorn writes the status line and headers, then the body, in two writes: two
    TCP segments, and a client woken twice for one answer (its loop reads the head,
    then waits again for the body). Held only when a body of a known length must
    follow (``Content-Length`` above zero, not ``HEAD``); anything else, and a
    ``100 Continue`` (written before the answer starts), goes out at once. Closing
    writes what is held first."""

    __slots__ = ("_cycle", "_held", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held + data)
            return
        cycle = self._cycle
        if (
            cycle.response_started
            and not cycle.response_complete
            and not cycle.chunked_encoding
            and cycle.expected_content_length
            and cycle.scope["method"] != "HEAD"
        ):
            self._held = data
            return
        self._transport.write(data)

    def close(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held)
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
