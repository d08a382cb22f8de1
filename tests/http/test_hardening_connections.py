"""The real server limits request heads and times out slow clients (issue 16, item 9).

``tidings serve`` runs in a subprocess with one-second read timeouts; the clients
are raw sockets, because HTTP clients will not send what an attacker sends. No
assertion is about time: each test waits (bounded) for the server to answer or
to close the connection, which today's server never does.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support.processes import TIDINGS, cli_env, free_port, stop, wait_ready

# A hang guard for reads: far longer than the server's one-second timeouts.
PATIENCE = 30.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    folder = tmp_path_factory.mktemp("connections")
    port = free_port()
    env = cli_env(
        folder / "data",
        TIDINGS_SERVER__HEADER_TIMEOUT_SECONDS="1",
        TIDINGS_SERVER__BODY_TIMEOUT_SECONDS="1",
    )
    with (folder / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [*TIDINGS, "serve", "--demo", "--port", str(port), "--no-dispatch"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        yield port
    finally:
        stop(process)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_a_normal_request_is_served(server: int) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert _read_all(sock).startswith(b"HTTP/1.1 200")


def test_a_large_header_is_refused(server: int) -> None:
    with _connect(server) as sock:
        big = b"a" * 200_000
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + big + b"\r\n\r\n")
        assert _read_all(sock).startswith(b"HTTP/1.1 431")


def test_a_32_mb_header_is_not_taken_in(server: int) -> None:
    sent = 0
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        chunk = b"a" * 65536
        try:
            while sent < 32 * 1_048_576:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
            answer = _read_all(sock)
        except (BrokenPipeError, ConnectionResetError):
            answer = b""
    assert sent < 32 * 1_048_576
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431")


def test_a_request_head_that_never_ends_times_out(server: int) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert _read_all(sock).startswith(b"HTTP/1.1 408")


def test_a_dribbled_request_head_times_out(server: int) -> None:
    # One byte at a time, each well within any idle timeout: the head as a whole
    # must still arrive in time.
    closed = False
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sock.settimeout(0.2)
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline and not closed:
            try:
                sock.sendall(b"X")
                closed = sock.recv(65536) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
    assert closed


def test_a_connection_that_sends_nothing_is_closed(server: int) -> None:
    with _connect(server) as sock:
        # Nothing of a request came, so there is nothing to answer: just closed.
        assert _read_all(sock) == b""


def test_a_body_that_stops_coming_times_out(server: int) -> None:
    with _connect(server) as sock:
        sock.sendall(
            b"POST /sandbox/api/v4/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"username":'
        )
        assert _read_all(sock).startswith(b"HTTP/1.1 408")


def test_a_huge_body_without_a_token_is_answered_before_it_is_sent(server: int) -> None:
    # Only the first 64 KiB of a 60 MB body is ever sent: the answer cannot wait for it.
    with _connect(server) as sock:
        sock.sendall(
            b"POST /sandbox/api/v4/sms/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 62914560\r\n\r\n"
            + b'{"body":"x","recipients":['
            + b'{"to":"+393331234000"},' * 2800
        )
        answer = _read_all(sock)
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 401")
    assert b"connection: close" in head
