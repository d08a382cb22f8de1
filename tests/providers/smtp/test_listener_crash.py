"""A real ``tidings serve`` with the bounce listener, killed with SIGKILL the moment
it has answered ``250`` to a bounce: after a restart on the same data directory the
bounce is applied (the message ``undelivered``, the address suppressed), once.

The report is a committed inbox row before the ``250`` (see
``test_reports.py::test_a_report_is_committed_before_the_listener_answers``);
whether the killed process had applied it yet or not, nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import make_settings
from tests.fakes.reports import deliver, dsn
from tests.fakes.smtp import FakeRelay, relay_certificates
from tests.providers.helpers import top_up
from tests.providers.smtp.conftest import BOUNCES, relay_config
from tests.support.databases import migrate_to_head
from tests.support.processes import TIDINGS, cli_env, free_port, stop
from tests.support.providers import add_provider
from tests.support.users import PASSWORD, create_test_user
from tidings.app import create_app
from tidings.core.environments import Environment
from tidings.domains.models import EmailDomain
from tidings.domains.service import DomainScope


async def _prepare(data_dir: Path, relay: FakeRelay) -> str:
    """A migrated database with an account that has credits, a verified example.com
    and an smtp provider on the relay; the username."""
    database = (f"sqlite+aiosqlite:///{data_dir / 'tidings.db'}", None)
    app = create_app(make_settings(data_dir, database, dispatch=False))
    try:
        await migrate_to_head(app)
        user = await create_test_user(app, "crash@example.com")
        await top_up(app, user.account_id)
        domains = app.state.ctx.runtime.email.domains
        row = await domains.create(
            DomainScope(user.account_id, Environment.PRODUCTION), "example.com"
        )
        async with app.state.ctx.sessions() as session:
            await session.execute(
                update(EmailDomain)
                .where(EmailDomain.id == row.id)
                .values(status="verified", verified_at=row.created_at)
            )
            await session.commit()
        await add_provider(app, user.account_id, "email", "smtp", config=relay_config(relay))
        return user.username
    finally:
        await app.state.ctx.runtime.writer.close()
        await app.state.ctx.engine.dispose()


def _start(data_dir: Path, port: int, smtp_port: int, log: Path) -> subprocess.Popen[str]:
    env = cli_env(
        data_dir,
        TIDINGS_EMAIL__BOUNCE_DOMAIN=BOUNCES,
        TIDINGS_INBOUND_SMTP__HOST="127.0.0.1",
        TIDINGS_INBOUND_SMTP__PORT=str(smtp_port),
        TIDINGS_RATE_LIMIT__PER_MINUTE="1000000",
        TIDINGS_PROVIDERS__INBOX_POLL_SECONDS="0.1",
    )
    with log.open("a") as output:
        return subprocess.Popen(
            [*TIDINGS, "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )


async def _ready(base: str, smtp_port: int, server: subprocess.Popen[str]) -> None:
    """The HTTP API answers and the listener takes connections (bounded)."""
    async with asyncio.timeout(90), httpx.AsyncClient(base_url=base, timeout=5) as client:
        while True:
            assert server.poll() is None, "the server exited"
            try:
                if (await client.get("/readyz")).status_code == 200:
                    _, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
                    writer.close()
                    return
            except (httpx.HTTPError, OSError):
                pass
            await asyncio.sleep(0.2)


def _rows(database: Path, query: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(database, timeout=30) as connection:
        return list(connection.execute(query, params).fetchall())


@pytest.mark.slow
async def test_sigkill_after_250_loses_no_bounce(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    ca_file, context = relay_certificates(tmp_path)
    relay = FakeRelay(ca_file)
    await relay.start(context)
    server: subprocess.Popen[str] | None = None
    try:
        username = await _prepare(data_dir, relay)
        port, smtp_port = free_port(), free_port()
        base = f"http://127.0.0.1:{port}"
        log = tmp_path / "serve.log"
        server = _start(data_dir, port, smtp_port, log)
        await _ready(base, smtp_port, server)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            token = (
                await client.post(
                    "/api/v4/auth/token", json={"username": username, "password": PASSWORD}
                )
            ).json()["token"]
            sent = await client.post(
                "/api/v4/email/send",
                json={
                    "to": "gone@example.org",
                    "from": "news@example.com",
                    "subject": "Hi",
                    "text": "hello",
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            assert sent.status_code == 200, sent.text
            assert sent.json()["status"] == "sent", sent.text
        message_id = sent.json()["id"]
        [received] = await relay.wait_for(1)
        report = dsn(
            recipient="gone@example.org", action="failed", status="5.1.1", envelope_id=message_id
        )
        await deliver(smtp_port, received.mail_from, report)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)

        database = data_dir / "tidings.db"
        stored = _rows(
            database,
            "SELECT count(*) FROM inbox_events WHERE dedupe_key LIKE ?",
            f"mail:{message_id}:%",
        )
        assert stored == [(1,)], log.read_text()[-3000:]

        server = _start(data_dir, port, smtp_port, log)
        await _ready(base, smtp_port, server)
        async with asyncio.timeout(60):
            while _rows(database, "SELECT status FROM messages WHERE id = ?", message_id) != [
                ("undelivered",)
            ]:
                await asyncio.sleep(0.2)
    finally:
        if server is not None:
            stop(server)
        await relay.stop()
    bounced = _rows(
        database,
        "SELECT count(*) FROM message_events WHERE message_id = ? AND kind = 'bounced'",
        message_id,
    )
    assert bounced == [(1,)]
    suppressed = _rows(
        database, "SELECT count(*) FROM email_suppressions WHERE address = 'gone@example.org'"
    )
    assert suppressed == [(1,)]
