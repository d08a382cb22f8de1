"""The serving protocol writes an answer's head and body in one write (uvicorn
writes them apart: two segments, and a client woken twice), and nothing is held
back where no body follows or the client waits for ``100 Continue``."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from tidings.http.server_protocol import GuardedHttpToolsProtocol


class RecordingTransport(asyncio.Transport):
    """A connection that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        pass


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the body, then answers with a known length; ``/stream`` answers in two
    pieces of unknown length; ``/empty`` with no body; ``/fail`` fails after the
    head."""
    received = b""
    more = True
    while more:
        message = await receive()
        received += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})
        return
    body = b"" if scope["path"] == "/empty" else b"hello " + received
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["path"] == "/fail":
        raise RuntimeError("failed after starting the answer")
    await send({"type": "http.response.body", "body": body})


async def exchange(*requests: bytes, answers: int) -> RecordingTransport:
    config = Config(app=hello, log_config=None, lifespan="off")
    config.load()
    protocol = GuardedHttpToolsProtocol(config, ServerState(), {})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    for request in requests:
        protocol.data_received(request)
        for _ in range(1000):
            await asyncio.sleep(0)
            if protocol.server_state.total_requests >= answers or transport.closed:
                break
    protocol.connection_lost(None)
    return transport


async def test_head_and_body_go_out_in_one_write_on_each_request() -> None:
    get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    transport = await exchange(get, get, answers=2)
    assert len(transport.writes) == 2
    for written in transport.writes:
        head, _, body = written.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert body == b"hello "


async def test_nothing_is_held_without_a_body_of_known_length() -> None:
    empty = await exchange(b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n", answers=1)
    # The head at once (uvicorn then writes the empty body as b"").
    assert empty.writes[0].startswith(b"HTTP/1.1 200") and empty.writes[0].endswith(b"\r\n\r\n")
    assert b"".join(empty.writes) == empty.writes[0]

    head = await exchange(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", answers=1)
    assert len(head.writes) == 1
    assert b"content-length: 6" in head.writes[0].lower()

    stream = await exchange(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", answers=1)
    assert b"".join(stream.writes).endswith(b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")
    assert stream.writes[0].endswith(b"transfer-encoding: chunked\r\n\r\n")


async def test_100_continue_is_written_before_the_body_comes() -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    transport = await exchange(head, b"world", answers=1)
    assert transport.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert len(transport.writes) == 2
    assert transport.writes[1].startswith(b"HTTP/1.1 200")
    assert transport.writes[1].endswith(b"\r\n\r\nhello world")


async def test_a_close_writes_what_was_held() -> None:
    # The app failed between head and body: the connection is closed, after the
    # head it was given, as when the head went out at once.
    transport = await exchange(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n", answers=1)
    assert transport.closed
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK")
    assert transport.writes[0].endswith(b"content-length: 6\r\n\r\n")
