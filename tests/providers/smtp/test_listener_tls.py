"""The listener offers STARTTLS when given a certificate, and refuses reports over its
size limit (nothing stored)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
import trustme
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.fakes.dns import FakeDns
from tests.fakes.reports import dsn
from tests.fakes.smtp import FakeRelay
from tests.providers.helpers import FAST, app_running
from tests.providers.smtp.conftest import BOUNCES
from tests.providers.smtp.test_reports import listener_port, sent_through_relay
from tests.support.messages import wait_for
from tidings.providers.registry import KindRegistry
from tidings.providers.simulator import SIMULATOR
from tidings.providers.smtp import SMTP
from tidings.settings import Settings

LIMIT = 4096


@pytest.fixture
def listener_ca(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert(BOUNCES)
    cert_file, key_file = tmp_path / "listener.pem", tmp_path / "listener.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return ca, cert_file, key_file


@pytest.fixture
def settings(
    data_dir: Path,
    sqlite_url: tuple[str, str | None],
    dns_server: FakeDns,
    listener_ca: tuple[trustme.CA, Path, Path],
) -> Settings:
    _, cert_file, key_file = listener_ca
    return make_settings(
        data_dir,
        sqlite_url,
        **FAST,
        email={"bounce_domain": BOUNCES, "recheck_seconds": 0},
        inbound_smtp={
            "host": "127.0.0.1",
            "port": 0,
            "max_message_bytes": LIMIT,
            "tls_cert_file": str(cert_file),
            "tls_key_file": str(key_file),
        },
        dns={"nameservers": dns_server.nameservers},
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with app_running(settings, kinds=KindRegistry([SIMULATOR, SMTP])) as application:
        yield application


async def test_reports_over_starttls_and_the_size_limit(
    app: FastAPI,
    client: httpx.AsyncClient,
    ready: dict[str, Any],
    relay: FakeRelay,
    listener_ca: tuple[trustme.CA, Path, Path],
) -> None:
    message_id, _, verp = await sent_through_relay(client, ready, relay, "tls@example.org")
    ca, _, _ = listener_ca
    context = ssl.create_default_context()
    ca.configure_trust(context)
    port = await listener_port(app)
    report = dsn(
        recipient="tls@example.org", action="delivered", status="2.0.0", envelope_id=message_id
    )
    assert len(report) < LIMIT
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, start_tls=False, tls_context=context
    ) as smtp:
        await smtp.ehlo()
        assert smtp.supports_extension("starttls")
        await smtp.starttls(server_hostname=BOUNCES)
        await smtp.sendmail("", [verp], report)
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await smtp.sendmail("", [verp], report + b"x" * LIMIT)
        assert refused.value.code == 552
    await wait_for(client, ready["token"], message_id, {"delivered"}, base="")
    assert app.state.ctx.runtime.email.listener.handler.stored == 1
