"""A SIGKILL with a full window: a real ``tidings serve`` submits to an SMSC that takes
every ``submit_sm`` and answers none, so its bind's window (10) fills; the server is
killed (no unbind, no shutdown), the SMSC starts answering (with receipts), and after
a restart on the same data directory every message ends ``delivered``, none lost.
The ones that were in the window are submitted again: the SMSC had them, so those
SMS go out twice, as with every gateway (the test counts them: at most the window)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.fakes.smsc import PASSWORD as SMSC_PASSWORD
from tests.fakes.smsc import SYSTEM_ID, Connection, FakeSMSC, Submitted
from tests.providers.helpers import top_up
from tests.support.databases import migrate_to_head, run_in_own_loop
from tests.support.processes import TIDINGS, cli_env, free_port, stop, wait_ready
from tests.support.providers import add_provider
from tests.support.users import PASSWORD, create_test_user
from tidings.app import create_app

COUNT = 20
WINDOW = 10


class MuteThenHappySMSC(FakeSMSC):
    """Takes submits without answering until ``speak`` is set; then answers, with receipts."""

    def __init__(self) -> None:
        super().__init__(receipts="both")
        self.speak = False

    def on_submit(self, connection: Connection, sequence: int, submitted: Submitted) -> None:
        if self.speak:
            self.answer(connection, sequence, submitted, 0)


@pytest.fixture
def smsc() -> Iterator[MuteThenHappySMSC]:
    """The SMSC in a thread with its own event loop (the test itself is synchronous)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = asyncio.run_coroutine_threadsafe(_started(), loop).result(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


async def _started() -> MuteThenHappySMSC:
    fake = MuteThenHappySMSC()
    await fake.start()
    return fake


def _prepare(data_dir: Path, port: int) -> str:
    database = (f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}", None)
    settings = make_settings(data_dir, database)

    async def prepare() -> str:
        app = create_app(settings)
        try:
            await migrate_to_head(app)
            user = await create_test_user(app, "crash@example.com")
            await top_up(app, user.account_id)
            config = {
                "host": "127.0.0.1",
                "port": port,
                "systemId": SYSTEM_ID,
                "password": SMSC_PASSWORD,
                "defaultSender": "Tidings",
                "window": WINDOW,
                "responseTimeoutSeconds": 60,
            }
            await add_provider(app, user.account_id, "sms", "smpp", config=config)
            return user.username
        finally:
            await app.state.ctx.runtime.writer.close()
            await app.state.ctx.engine.dispose()

    return run_in_own_loop(prepare)


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[str]:
    env = cli_env(
        data_dir,
        TIDINGS_RATE_LIMIT__PER_MINUTE="1000000",
        TIDINGS_PROVIDERS__INBOX_POLL_SECONDS="0.1",
        # A dead process's leases expire soon, and its submissions with them.
        TIDINGS_DELIVERY__LEASE_SECONDS="4",
        TIDINGS_DELIVERY__SEND_TIMEOUT_SECONDS="3",
        TIDINGS_DELIVERY__BACKOFF_BASE_SECONDS="0.2",
        TIDINGS_DELIVERY__BACKOFF_MAX_SECONDS="1",
    )
    with log.open("a") as output:
        return subprocess.Popen(
            [*TIDINGS, "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _statuses(database: Path) -> dict[str, str]:
    with sqlite3.connect(database, timeout=30) as connection:
        rows = connection.execute("SELECT id, status FROM messages").fetchall()
    connection.close()
    return {str(row[0]): str(row[1]) for row in rows}


def _until(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not in time: {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_sigkill_with_a_full_window(tmp_path: Path, smsc: MuteThenHappySMSC) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    username = _prepare(data_dir, smsc.port)
    database = data_dir / "tidings.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    server = _start(data_dir, port, log)
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
                    json={"to": "+393331234567", "body": f"crash {index}"},
                    headers={"Authorization": f"Bearer {token}", "Prefer": "respond-async"},
                )
                assert answer.status_code == 202, answer.text
                sent.append(answer.json()["id"])
        _until(lambda: len(smsc.submitted) >= WINDOW, "a full window", 60)
        assert smsc.max_outstanding == WINDOW
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        stop(server)
    # At the kill: the window's messages submitted and unanswered, the rest queued.
    assert len(smsc.submitted) == WINDOW
    assert set(_statuses(database).values()) <= {"queued"}

    smsc.speak = True
    server = _start(data_dir, port, log)
    try:
        wait_ready(base, server)
        _until(
            lambda: all(_statuses(database)[m] == "delivered" for m in sent),
            "every message delivered",
            120,
        )
    finally:
        stop(server)
    texts = [submitted.text for submitted in smsc.submitted]
    assert sorted(set(texts)) == sorted(f"crash {index}" for index in range(COUNT))
    twice = [text for text in set(texts) if texts.count(text) > 1]
    # Only what was in the window at the kill can have gone out twice.
    assert len(twice) <= WINDOW
    assert all(texts.count(text) <= 2 for text in twice)
    print(f"submitted twice after the SIGKILL: {len(twice)} of {COUNT}")
