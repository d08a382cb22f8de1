"""``tidings serve --workers 2`` on one SQLite file: both processes store, deliver and
answer, taking turns at the file's write lock (tidings.db.writer_lock), and every
accepted message ends delivered exactly once; they share one account's rate limit and
the signing key they made on their first start, and a scrape of ``/metrics`` counts
both processes' requests."""

from __future__ import annotations

import asyncio
import time
from dataclasses import astuple, dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.load import make_login, send_many, sqlite_scalar, sqlite_statuses, token_for
from tests.support.metrics import metric_total
from tests.support.processes import free_port, start_serve, stop, wait_ready
from tidings.http.reuse_port import listening_on

COUNT = 300


@dataclass(frozen=True)
class Instance:
    """A data directory with a user, and where its server will listen and log."""

    data_dir: Path
    username: str
    password: str
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _instance(tmp_path: Path) -> Instance:
    data_dir = tmp_path / "data"
    _, username, password = make_login(data_dir)
    return Instance(data_dir, username, password, free_port(), tmp_path / "serve.log")


@pytest.mark.slow
def test_two_serving_processes_share_the_file(tmp_path: Path) -> None:
    instance = _instance(tmp_path)
    data_dir, username, password, port, log = astuple(instance)
    base = instance.base
    database = data_dir / "tidings.db"
    server = start_serve(
        data_dir, port, log, "--workers", "2", TIDINGS_RATE_LIMIT__PER_MINUTE="1000000"
    )
    try:
        wait_ready(base, server)
        # Ready means both workers listen, so that clients that connect now spread
        # over both (http/reuse_port.py).
        assert listening_on(port) == 2
        token = asyncio.run(token_for(base, username, password))
        # Waiting sends: each answered with its verdict by the process that stored it.
        waited = asyncio.run(send_many(base, token, COUNT, prefer_async=False, tag="waited"))
        queued = asyncio.run(send_many(base, token, COUNT, prefer_async=True, tag="queued"))
        accepted = set(waited) | set(queued)
        assert len(accepted) == 2 * COUNT
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            statuses = sqlite_statuses(database)
            if all(statuses.get(mid) == "delivered" for mid in accepted):
                break
            time.sleep(0.5)
        statuses = sqlite_statuses(database)
        assert {statuses.get(mid) for mid in accepted} == {"delivered"}
        # Each submitted once, each with one sent and one delivered event.
        attempts = sqlite_scalar(database, "SELECT max(attempts) FROM messages")
        assert attempts == 1
        doubled = sqlite_scalar(
            database,
            "SELECT count(*) FROM (SELECT message_id, status FROM message_events "
            "GROUP BY message_id, status HAVING count(*) > 1)",
        )
        assert doubled == 0
    finally:
        stop(server)
    assert "Traceback" not in log.read_text()


@pytest.mark.slow
def test_the_processes_share_an_accounts_rate_limit(tmp_path: Path) -> None:
    instance = _instance(tmp_path)
    data_dir, username, password, port, log = astuple(instance)
    base = instance.base
    server = start_serve(data_dir, port, log, "--workers", "2", TIDINGS_RATE_LIMIT__PER_MINUTE="20")
    try:
        wait_ready(base, server)
        token = asyncio.run(token_for(base, username, password))
        # A new connection each time, so that both processes answer some of them.
        codes = [
            httpx.get(
                f"{base}/sandbox/api/v4/account",
                headers={"Authorization": f"Bearer {token}", "Connection": "close"},
                timeout=10,
            ).status_code
            for _ in range(60)
        ]
        # Twenty in the window for the account, whichever process counted them (the
        # login above was an anonymous request, counted by its address).
        assert codes.count(200) == 20
        assert codes.count(429) == 40
    finally:
        stop(server)
    assert "Traceback" not in log.read_text()


@pytest.mark.slow
def test_a_scrape_counts_every_processs_requests(tmp_path: Path) -> None:
    instance = _instance(tmp_path)
    data_dir, username, password, port, log = astuple(instance)
    base = instance.base
    closing = {"Connection": "close"}

    def scrape() -> float:
        # A new connection each time, as each request below: either process answers.
        text = httpx.get(f"{base}/metrics", headers=closing, timeout=10).text
        return metric_total(
            text, "tidings_http_requests_total", route="/api/v4/account", status="200"
        )

    requests = 40
    # No signing key yet: both workers make one on their first start, at once, and
    # must end up with the same (each request below, whichever worker answers, is 200).
    (data_dir / "jwt-secret").unlink()
    server = start_serve(
        data_dir, port, log, "--workers", "2", TIDINGS_RATE_LIMIT__PER_MINUTE="1000000"
    )
    try:
        wait_ready(base, server)
        token = asyncio.run(token_for(base, username, password))
        headers = {"Authorization": f"Bearer {token}", **closing}
        for _ in range(requests):
            answer = httpx.get(f"{base}/sandbox/api/v4/account", headers=headers, timeout=10)
            assert answer.status_code == 200
        # Every scrape, whichever process answers it, counts all of them.
        assert [scrape() for _ in range(8)] == [requests] * 8
        # Both processes answered some (each keeps its counts in a file of its own).
        assert len(list((data_dir / "metrics").glob("counter_*.db"))) >= 2
    finally:
        stop(server)
    # A new start counts from nothing: the files of the processes before it are gone.
    server = start_serve(data_dir, port, log, "--workers", "2")
    try:
        wait_ready(base, server)
        assert scrape() == 0
    finally:
        stop(server)
    assert "Traceback" not in log.read_text()
