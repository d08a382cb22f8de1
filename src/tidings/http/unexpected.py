"""Turns an unexpected exception into a 500 problem inside the middleware stack,
so the answer still carries the request id and rate-limit headers."""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.http.problems import problem_response
from tidings.http.request_id import request_id_of

log = logging.getLogger("tidings.http")


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def track(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, track)
        except Exception:
            log_unexpected(scope)
            if started:
                raise
            await internal_error(scope)(scope, receive, send)


def log_unexpected(scope: Scope) -> None:
    """Log the exception being handled, with its trace and the request."""
    log.exception(
        "unhandled error on %s %s (request %s)",
        scope["method"],
        scope["path"],
        request_id_of(scope),
    )


def internal_error(scope: Scope) -> Response:
    """The 500 answered for an unexpected exception: the request id and nothing else."""
    return problem_response(
        500,
        "internal_error",
        "Something went wrong on our side. Quote the request id when reporting it.",
        extra={"requestId": request_id_of(scope)},
    )
