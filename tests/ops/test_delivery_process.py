"""``tidings serve --delivery-process``: the embedded mode with its delivery side in a
process of its own on the same SQLite file. A waiting send is answered with its
verdict, pushed by the local bus; every accepted message ends delivered exactly
once, across a SIGKILL of the delivery process (started again by ``serve``), and the
API process's ``/metrics`` counts the delivery processes' submissions; and stopping
``serve`` stops the delivery process too."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.support.load import make_login, send_many, sqlite_scalar, sqlite_statuses, token_for
from tests.support.metrics import metric_total
from tests.support.processes import cli_env, free_port, run_cli, start_serve, stop, wait_ready

COUNT = 200
# Bounds against a hang, not speed checks.
DEADLINE_SECONDS = 120.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _until(check: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen in {DEADLINE_SECONDS} s")


async def _waiting_answers(base: str, token: str, count: int) -> list[dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{base}/sandbox/api/v4/sms/send",
                    json={"to": f"+39334{index:07d}", "body": f"waited {index}"},
                )
                for index in range(count)
            )
        )
    assert {answer.status_code for answer in answers} == {200}
    return [answer.json() for answer in answers]


@pytest.mark.slow
def test_the_delivery_side_in_a_process_of_its_own(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _, username, password = make_login(data_dir)
    database = data_dir / "tidings.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    server = start_serve(
        data_dir, port, log, "--delivery-process", TIDINGS_RATE_LIMIT__PER_MINUTE="1000000"
    )
    try:
        wait_ready(base, server)
        _until(lambda: len(_children(server.pid)) == 1, "the delivery process's start")
        [first_worker] = _children(server.pid)
        token = asyncio.run(token_for(base, username, password))

        # A waiting send's answer is its verdict, recorded by the other process.
        answers = asyncio.run(_waiting_answers(base, token, 20))
        assert {answer["status"] for answer in answers} == {"sent"}

        waited = asyncio.run(send_many(base, token, COUNT, prefer_async=False, tag="waited"))
        queued = asyncio.run(send_many(base, token, COUNT, prefer_async=True, tag="queued"))

        # The delivery process dies without a word; serve starts another.
        os.kill(first_worker, signal.SIGKILL)
        _until(
            lambda: [pid for pid in _children(server.pid) if pid != first_worker],
            "the delivery process's restart",
        )
        after = asyncio.run(send_many(base, token, COUNT, prefer_async=True, tag="after"))
        accepted = set(waited) | set(queued) | set(after) | {str(a["id"]) for a in answers}
        assert len(accepted) == 3 * COUNT + 20

        def all_delivered() -> bool:
            statuses = sqlite_statuses(database)
            return all(statuses.get(mid) == "delivered" for mid in accepted)

        _until(all_delivered, "every message's delivery")
        # Each with one sent and one delivered event, whatever the kill interrupted.
        doubled = sqlite_scalar(
            database,
            "SELECT count(*) FROM (SELECT message_id, status FROM message_events "
            "GROUP BY message_id, status HAVING count(*) > 1)",
        )
        assert doubled == 0
        # The API process submits nothing itself: its scrape shows the delivery
        # processes' submissions, the killed one's included.
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        submitted = metric_total(metrics, "tidings_provider_submissions_total", outcome="accepted")
        assert submitted >= len(accepted)
        [worker] = _children(server.pid)
    finally:
        stop(server, timeout=60)
    # Stopping serve stopped the delivery process: nothing is left running.
    _until(lambda: not _alive(worker), "the delivery process's stop")
    text = log.read_text()
    assert "Traceback" not in text
    assert "the delivery process exited" in text


@pytest.mark.slow
def test_a_delivery_process_whose_server_was_killed_stops_by_itself(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    make_login(data_dir)
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_serve(data_dir, port, log, "--delivery-process")
    try:
        wait_ready(f"http://127.0.0.1:{port}", server)
        _until(lambda: len(_children(server.pid)) == 1, "the delivery process's start")
        [worker] = _children(server.pid)
        server.kill()
        server.wait(timeout=30)
        _until(lambda: not _alive(worker), "the orphaned delivery process's stop")
    finally:
        stop(server)
    assert "is gone: stopping" in log.read_text()


def test_a_delivery_process_is_refused_where_it_cannot_work(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    nothing_to_deliver = run_cli(
        ["serve", "--port", str(free_port()), "--delivery-process", "--no-dispatch"], env
    )
    assert nothing_to_deliver.returncode == 1
    assert "--no-dispatch does not deliver" in nothing_to_deliver.stderr
    # PostgreSQL has NOTIFY and runs its workers by itself (nothing is connected to).
    postgres = run_cli(
        ["serve", "--port", str(free_port())],
        {
            **env,
            "TIDINGS_DELIVERY_PROCESS": "true",
            "TIDINGS_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/none",
        },
    )
    assert postgres.returncode == 1
    assert "is for the embedded mode (SQLite)" in postgres.stderr
    assert "Traceback" not in nothing_to_deliver.stderr + postgres.stderr
