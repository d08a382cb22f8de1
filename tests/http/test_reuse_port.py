"""``serve --workers N``'s sockets: each worker listens on a socket of its own on the
one address, and the kernel spreads connections over them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.processes import free_port
from tests.support.sockets import handed_to_a_worker
from tidings.http.reuse_port import REUSE_PORT, ReusePortSocket, listening_on, reuse_port_socket

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


def test_only_the_sockets_that_listen_on_the_port_are_counted() -> None:
    port = free_port()
    with reuse_port_socket("127.0.0.1", port) as supervisor:
        # Bound, as the supervisor's socket is, but not listening.
        assert listening_on(port) == 0
        workers = [handed_to_a_worker(supervisor) for _ in range(2)]
        try:
            workers[0].listen(8)
            assert listening_on(port) == 1
            workers[1].listen(8)
            assert listening_on(port) == 2
            with socket.create_connection(("127.0.0.1", port)):
                # A connection to the port is not a listener.
                assert listening_on(port) == 2
        finally:
            for worker in workers:
                worker.close()
        assert listening_on(port) == 0


def test_the_socket_tables_are_read_by_port_and_state(tmp_path: Path) -> None:
    head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
    ipv4 = tmp_path / "tcp"
    ipv4.write_text(
        head
        + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n"
        + "   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0\n"
        + "   2: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n"
    )
    ipv6 = tmp_path / "tcp6"
    ipv6.write_text(
        head
        + "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A"
        + " 00000000:00000000 00:00000000 00000000     0\n"
    )
    missing = tmp_path / "absent"
    # Port 8080 (1F90): one IPv4 listener (the established row is not one), one IPv6.
    assert listening_on(8080, (ipv4, ipv6, missing)) == 2
    assert listening_on(8081, (ipv4, ipv6)) == 1
    assert listening_on(8082, (ipv4, ipv6)) == 0
