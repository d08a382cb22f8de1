"""Nothing accepted is lost: SIGKILL the server during delivery, start it again.

500 sandbox SMS are accepted by a real ``tidings serve`` process, which is then
killed with SIGKILL while delivery is under way (receipts are slowed and the
dispatcher is narrowed so that plenty is still in flight). After a restart on the
same data directory, every accepted message reaches a final status.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.load import make_login, send_many, sqlite_scalar, sqlite_statuses, token_for
from tests.support.processes import free_port, start_serve, stop, wait_ready

COUNT = 500
FINAL = {"delivered", "read", "failed", "undelivered", "canceled"}


@pytest.mark.slow
def test_sigkill_during_delivery_loses_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _, username, password = make_login(data_dir)
    database = data_dir / "tidings.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    common = {
        "TIDINGS_DELIVERY__LEASE_SECONDS": "3",
        "TIDINGS_SANDBOX__RECOVERY_INTERVAL_SECONDS": "0.5",
        "TIDINGS_RATE_LIMIT__PER_MINUTE": "1000000",
    }
    slow = {
        **common,
        "TIDINGS_SANDBOX__RECEIPT_DELAY_SECONDS": "2",
        "TIDINGS_DELIVERY__SMS_CONCURRENCY": "8",
    }
    log = tmp_path / "serve.log"
    server = start_serve(data_dir, port, log, **slow)
    try:
        wait_ready(base, server)
        token = asyncio.run(token_for(base, username, password))
        accepted = asyncio.run(send_many(base, token, COUNT))
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        stop(server)
    assert len(set(accepted)) == COUNT

    at_kill = sqlite_statuses(database)
    assert set(accepted) <= set(at_kill), "an accepted message is missing from the database"
    in_flight = [mid for mid in accepted if at_kill[mid] not in FINAL]
    assert in_flight, "the kill came after delivery had finished: the test proved nothing"

    server = start_serve(data_dir, port, log, **common)
    try:
        wait_ready(base, server)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            statuses = sqlite_statuses(database)
            if all(statuses[mid] in FINAL for mid in accepted):
                break
            time.sleep(0.5)
    finally:
        stop(server)
    statuses = sqlite_statuses(database)
    unfinished = {mid: statuses[mid] for mid in accepted if statuses[mid] not in FINAL}
    assert not unfinished, f"{len(unfinished)} messages never reached a final status"
    assert {statuses[mid] for mid in accepted} == {"delivered"}
    reclaimed = sqlite_scalar(database, "SELECT coalesce(sum(attempts - 1), 0) FROM messages")
    not_final_at_kill = len(in_flight)
    print(
        f"\ncrash test: {COUNT} accepted, {not_final_at_kill} not final at the kill, "
        f"{reclaimed} submissions repeated after lease expiry"
    )
