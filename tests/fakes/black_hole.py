"""A TCP server on loopback that takes connections and bytes and never answers: a
network that swallows requests (no SMTP greeting, no HTTP answer), for the providers'
send deadline."""

from __future__ import annotations

import asyncio
import contextlib


class BlackHole:
    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def start(self) -> None:
        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)
            with contextlib.suppress(Exception):
                while await reader.read(65536):
                    pass

        self._server = await asyncio.start_server(swallow, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()

    async def __aenter__(self) -> BlackHole:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
