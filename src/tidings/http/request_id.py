"""``X-Request-ID`` on every answer: the client's own when it sent a sane one."""

from __future__ import annotations

import os
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class _RandomBytes:
    """``os.urandom``'s bytes, read 4 KiB at a time: one system call per 256 ids."""

    def __init__(self, chunk: int = 4096) -> None:
        self._chunk = chunk
        self._buffer = b""
        self._at = 0

    def take(self, size: int) -> bytes:
        if self._at + size > len(self._buffer):
            self._buffer, self._at = os.urandom(self._chunk), 0
        start = self._at
        self._at = start + size
        return self._buffer[start : start + size]

    def forget(self) -> None:
        self._buffer, self._at = b"", 0


_random = _RandomBytes()
# A forked process must not give out the ids its parent has in its buffer.
os.register_at_fork(after_in_child=_random.forget)


def new_request_id() -> str:
    """A random (version 4) UUID's 32 hex digits, as ``uuid.uuid4().hex`` gives them
    (from the same source, ``os.urandom``), without making a UUID object."""
    raw = bytearray(_random.take(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return raw.hex()


def assign_request_id(scope: Scope) -> str:
    """The request's id (the client's own when it sent a sane one), kept in its state."""
    given = None
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            break
    request_id = given if given and _ACCEPTABLE.match(given) else new_request_id()
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


def request_id_of(scope: Scope) -> str | None:
    state = scope.get("state")
    return state.get("request_id") if state else None


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = assign_request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
