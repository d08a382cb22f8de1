"""``serve --workers N``'s sockets: each worker listens on a socket of its own on the
one address, and the kernel spreads connections over them."""

from __future__ import annotations

import pickle
import socket

import pytest

from tests.support.processes import free_port
from tidings.http.reuse_port import REUSE_PORT, ReusePortSocket, reuse_port_socket


def handed_to_a_worker(sock: socket.socket) -> socket.socket:
    """What multiprocessing does to hand a socket to a worker it spawns."""
    return pickle.loads(pickle.dumps(sock))  # noqa: S301 - our own bytes, just made


pytestmark = pytest.mark.skipif(not REUSE_PORT, reason="Linux only")


def test_a_worker_gets_a_socket_of_its_own_on_the_same_address() -> None:
    port = free_port()
    with (
        reuse_port_socket("127.0.0.1", port) as supervisor,
        handed_to_a_worker(supervisor) as worker,
    ):
        assert isinstance(worker, ReusePortSocket)
        assert worker.fileno() != supervisor.fileno()
        assert worker.getsockname() == ("127.0.0.1", port)
        assert worker.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1


def test_connections_are_spread_over_the_workers_sockets() -> None:
    port = free_port()
    with reuse_port_socket("127.0.0.1", port) as supervisor:
        workers = [handed_to_a_worker(supervisor) for _ in range(2)]
        for worker in workers:
            worker.listen(64)
            worker.setblocking(False)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
        try:
            taken = []
            for worker in workers:
                count = 0
                while True:
                    try:
                        connection, _ = worker.accept()
                    except BlockingIOError:
                        break
                    connection.close()
                    count += 1
                taken.append(count)
            # By a hash of each connection's addresses: all 32 on one socket would be
            # a chance of 1 in 2**31. The supervisor's socket never listens: none there.
            assert sum(taken) == 32
            assert min(taken) > 0
        finally:
            for client in clients:
                client.close()
            for worker in workers:
                worker.close()


def test_an_address_taken_without_reuse_port_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(OSError):
            reuse_port_socket("127.0.0.1", taken.getsockname()[1])
