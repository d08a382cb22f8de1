"""A tiny HTTP/1.1 server on 127.0.0.1 that records webhook requests.

It verifies nothing itself; tests verify what it recorded with the standardwebhooks
package. Its behaviour is scriptable: ``answer`` decides each response, and
``refuse()`` / ``start()`` make it refuse connections and come back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Receiver:
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    answer: Callable[[Recorded], Answer] = lambda _request: (200, {}, b"ok")
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        """Close the listener and every open connection: connections are refused."""
        await self.stop()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    def delivered(self) -> list[Recorded]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def verified(self, *secrets: str) -> list[Any]:
        """Every 2xx request, verified (unchanged library) by one of the secrets."""
        found = []
        for request in self.delivered():
            found.append(verify_any(request, secrets))
        return found

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                path = line.decode().split(" ")[1]
                headers: dict[str, str] = {}
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Recorded(path, headers, body)
                status, extra, content = self.answer(request)
                request.status = status
                self.requests.append(request)
                head = [f"HTTP/1.1 {status} X", f"content-length: {len(content)}"]
                head += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + content)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, IndexError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()


def verify_any(request: Recorded, secrets: tuple[str, ...] | list[str]) -> Any:
    error: Exception | None = None
    for secret in secrets:
        try:
            return Webhook(secret).verify(request.body, request.headers)
        except Exception as failure:
            error = failure
    raise AssertionError(f"no secret verifies {request.headers}: {error}")
