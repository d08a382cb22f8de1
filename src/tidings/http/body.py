"""Request bodies: the size limit (413) and what counts as JSON (400 / 415).

The whole body is read here, up to the limit, before the route runs (routes
read it whole anyway), so an oversized or chunked upload is refused early.

Under ``/api/``, a body is JSON whatever it is labelled among ``application/json``,
``text/plain``, ``application/x-www-form-urlencoded`` or nothing at all (what
``fetch`` with a string body and ``curl -d`` send): the label is corrected to
``application/json`` for the route. A body labelled JSON that does not parse is
left to the route, which answers 400 ``invalid_json``. Any other label, or a
non-JSON body under a non-JSON label, answers 415 ``unsupported_media_type``,
except on the few paths registered with their own media types (CSV import).
JSON nested too deeply answers 400 ``invalid_json`` (see :mod:`tidings.http.json_body`).
A body under a guessed label that is larger than ``max_bytes`` (a bulk request
sent with ``curl -d @file``) is relabelled without that check: parsing it here
would hold the event loop for a second or more, and its route parses it anyway
(without holding the loop), answering 400 ``invalid_json`` if it is not JSON.

Authentication comes first (:class:`~tidings.http.callers.AuthenticationGate`):
this middleware only ever reads the body of a request that may have one.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.http.environment import get_route_path
from tidings.http.json_body import TOO_DEEP, json_verdict
from tidings.http.problems import problem_response

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON_LENIENT = frozenset({"", "text/plain", "application/x-www-form-urlencoded"})


def _media_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: str = value.decode("latin-1")
            return media.split(";", 1)[0].strip().lower()
    return ""


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _is_json_media(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


class BodyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        large_body_paths: tuple[str, ...] = (),
        large_max_bytes: int = 0,
        raw_media_types: Mapping[str, frozenset[str]] | None = None,
        prefix_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        # Paths under these prefixes take their own limit (providers' webhooks: Meta
        # posts up to 3 MB).
        self._prefix_limits = tuple((prefix_limits or {}).items())
        self._max = max_bytes
        self._large_paths = large_body_paths
        self._large_max = max(large_max_bytes, max_bytes)
        self._raw = dict(raw_media_types or {})

    def _limit_for(self, route_path: str) -> int:
        for prefix, limit in self._prefix_limits:
            if route_path.startswith(prefix):
                return limit
        return self._large_max if route_path.endswith(self._large_paths) else self._max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replay, refusal = await self.take(scope, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
        elif replay is not None:
            await self.app(scope, replay, send)

    async def take(self, scope: Scope, receive: Receive) -> tuple[Receive | None, ASGIApp | None]:
        """Read the body of an HTTP request that may have one: the ``receive`` that
        gives it to the route, or the answer refusing it, or neither when the client
        went away meanwhile."""
        if scope["method"] not in BODY_METHODS:
            return receive, None
        route_path = get_route_path(scope)
        limit = self._limit_for(route_path) if self._large_paths else self._max
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            return None, self._too_large(limit)

        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None, self._too_large(limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)

        if body and route_path.startswith("/api/"):
            refusal = self._check_media(scope, route_path, body)
            if refusal is not None:
                return None, refusal

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay, None

    def _check_media(self, scope: Scope, route_path: str, body: bytes) -> ASGIApp | None:
        media = _media_type(scope)
        if _is_json_media(media):
            return None
        allowed = self._raw.get(route_path)
        if allowed and media in allowed:
            return None
        if media in _JSON_LENIENT:
            verdict = json_verdict(body) if len(body) <= self._max else "json"
            if verdict == "too_deep":
                return problem_response(400, "invalid_json", TOO_DEEP)
            if verdict == "not_json":
                return problem_response(
                    415,
                    "unsupported_media_type",
                    "The body is not JSON. Send JSON, with Content-Type: application/json.",
                )
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            headers.append((b"content-type", b"application/json"))
            scope["headers"] = headers
            return None
        return problem_response(
            415,
            "unsupported_media_type",
            f"Content-Type {media!r} is not accepted here; send JSON "
            "(Content-Type: application/json).",
        )

    def _too_large(self, limit: int) -> ASGIApp:
        return problem_response(
            413,
            "payload_too_large",
            f"The request body is larger than the limit of {limit} bytes.",
            headers={"Connection": "close"},
        )
