"""``X-Request-ID`` on every answer: the client's own when it sent a sane one."""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.core.random_bytes import random_bytes

_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id() -> str:
    """A random (version 4) UUID's 32 hex digits, as ``uuid.uuid4().hex`` gives them
    (from the same source, ``os.urandom``), without making a UUID object."""
    raw = bytearray(random_bytes(16))
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
