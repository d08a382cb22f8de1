"""A listening socket of its own for each of ``serve --workers N``'s processes.

uvicorn binds one socket in its supervisor and hands it to every worker, so the
workers share one queue of incoming connections, and whichever wakes first takes
what is waiting: a pool of keep-alive clients that connects at once (64 clients of
a benchmark, an application's pool at its start) could land 56 connections on one
worker and 8 on the other, one core serving most of the requests while the other
idles, and it stays so for as long as the connections live.

With ``SO_REUSEPORT`` each worker listens on a socket of its own, on the same
address, and the kernel spreads new connections over them by a hash of their
addresses. :class:`ReusePortSocket` is what the supervisor binds (it never listens,
so it takes no connection): sent to a worker process, it arrives as a new socket
bound to the same address with ``SO_REUSEPORT``, on which that worker listens. A
worker the supervisor starts again gets a new one the same way.

Each worker starts listening when its own start is done, so for a moment after the
first answers, the others may not listen yet, and every connection made then goes to
the first: a client pool opened right after a health check would stay on one worker.
``/readyz`` therefore answers 503 until as many sockets listen on its port as ``serve``
started workers (:func:`listening_on` counts them in the kernel's socket tables).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

# Linux spreads connections over the sockets that share a port; other systems accept
# the option without doing so, and keep uvicorn's one shared socket there.
REUSE_PORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class ReusePortSocket(socket.socket):
    """A socket with ``SO_REUSEPORT`` that, pickled (as ``multiprocessing`` does for a
    worker), is made anew on the other side, bound to the same address."""

    def __reduce__(self) -> tuple[Any, ...]:
        host, port = self.getsockname()[:2]
        return (reuse_port_socket, (host, port))


def reuse_port_socket(host: str, port: int) -> ReusePortSocket:
    """A new socket bound to ``(host, port)`` beside others bound there the same way."""
    sock = ReusePortSocket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


# The kernel's TCP socket tables: a row per socket, its local address as hex
# ``address:port`` in the second column, its state in the fourth (0A: listening).
SOCKET_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
LISTENING = "0A"


def listening_on(port: int, tables: tuple[Path, ...] = SOCKET_TABLES) -> int:
    """How many TCP sockets of this network namespace listen on ``port``, IPv4 and
    IPv6. A socket that is bound but does not listen (the supervisor's) is not one."""
    count = 0
    for table in tables:
        try:
            rows = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and fields[3] == LISTENING:
                count += int(fields[1].rpartition(":")[2], 16) == port
    return count
