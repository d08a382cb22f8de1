"""The inbox survives a SIGKILL between storing a report and applying it.

A real ``tidings serve`` process sends production SMS through a ``simulator``
provider whose receipts are stored at once and due an hour later, so when the server
is killed (SIGKILL, no shutdown) every receipt is in the inbox, stored and not yet
applied. The hour then passes while it is down (the stored reports are made due), and
after a restart on the same data directory every message reaches ``delivered`` with
its receipt applied exactly once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.providers.helpers import ORDINARY, top_up
from tests.support.databases import migrate_to_head, run_in_own_loop
from tests.support.processes import TIDINGS, cli_env, free_port, stop, wait_ready
from tests.support.providers import add_provider
from tests.support.users import PASSWORD, create_test_user
from tidings.app import create_app

COUNT = 30


def _prepare(data_dir: Path) -> tuple[str, str]:
    """A migrated database with an account that has credits and a simulator provider;
    (username, provider id)."""
    database = (f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}", None)
    settings = make_settings(data_dir, database)

    async def prepare() -> tuple[str, str]:
        app = create_app(settings)
        try:
            await migrate_to_head(app)
            user = await create_test_user(app, "crash@example.com")
            await top_up(app, user.account_id)
            provider_id = await add_provider(app, user.account_id, "sms")
            return user.username, provider_id
        finally:
            await app.state.ctx.runtime.writer.close()
            await app.state.ctx.engine.dispose()

    return run_in_own_loop(prepare)


def _start(data_dir: Path, port: int, log: Path, **env: str) -> subprocess.Popen[str]:
    with log.open("a") as output:
        return subprocess.Popen(
            [*TIDINGS, "serve", "--port", str(port)],
            env=cli_env(data_dir, **env),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _rows(database: Path, query: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(database, timeout=30) as connection:
        return list(connection.execute(query, params).fetchall())


@pytest.mark.slow
def test_sigkill_between_storing_and_applying_a_report(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    username, provider_id = _prepare(data_dir)
    database = data_dir / "tidings.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    common = {
        "TIDINGS_RATE_LIMIT__PER_MINUTE": "1000000",
        "TIDINGS_PROVIDERS__INBOX_POLL_SECONDS": "0.1",
    }
    log = tmp_path / "serve.log"
    server = _start(data_dir, port, log, TIDINGS_SANDBOX__RECEIPT_DELAY_SECONDS="3600", **common)
    try:
        wait_ready(base, server)
        with httpx.Client(base_url=base, timeout=30) as client:
            token = client.post(
                "/api/v4/auth/token", json={"username": username, "password": PASSWORD}
            ).json()["token"]
            sent = []
            for index in range(COUNT):
                answer = client.post(
                    "/api/v4/sms/send",
                    json={"to": ORDINARY, "body": f"crash {index}"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["status"] == "sent", answer.text
                sent.append(answer.json()["id"])
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        stop(server)

    # At the kill: every receipt stored (one per message), none applied.
    pending = _rows(
        database,
        "SELECT count(*) FROM inbox_events WHERE provider_id = ? AND state = 'pending'",
        provider_id,
    )
    assert pending == [(COUNT,)], pending
    statuses = dict(_rows(database, "SELECT id, status FROM messages"))  # type: ignore[arg-type]
    assert {statuses[message_id] for message_id in sent} == {"sent"}

    # The hour passes while the server is down.
    with sqlite3.connect(database, timeout=30) as connection:
        connection.execute("UPDATE inbox_events SET due_at = '2000-01-01 00:00:00.000000'")
    connection.close()

    server = _start(data_dir, port, log, **common)
    try:
        wait_ready(base, server)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statuses = dict(_rows(database, "SELECT id, status FROM messages"))  # type: ignore[arg-type]
            if all(statuses[message_id] == "delivered" for message_id in sent):
                break
            time.sleep(0.2)
    finally:
        stop(server)
    statuses = dict(_rows(database, "SELECT id, status FROM messages"))  # type: ignore[arg-type]
    assert {statuses[message_id] for message_id in sent} == {"delivered"}, log.read_text()[-3000:]
    delivered = dict(
        _rows(  # type: ignore[arg-type]
            database,
            "SELECT message_id, count(*) FROM message_events WHERE status = 'delivered' "
            "GROUP BY message_id",
        )
    )
    assert {delivered.get(message_id) for message_id in sent} == {1}
    states = _rows(database, "SELECT state, count(*) FROM inbox_events GROUP BY state")
    assert states == [("done", COUNT)], states
