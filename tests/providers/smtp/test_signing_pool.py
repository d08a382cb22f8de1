"""Rendering and signing in the signing pool: the same bytes as on the loop, started
only when first needed, messages in flight handed over together (each with its own
answer), and a killed worker neither loses nor fails a message.

A single-part message comes out byte for byte the same. A multipart one differs
only in its MIME boundaries, which the standard library draws at random each time
it renders (on the loop too): compared with the boundaries numbered in order, and
both DKIM signatures verified."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import dkim
import pytest

from tidings.channels.email.stored import UnresolvedSharedContent
from tidings.core.environments import Environment
from tidings.domains.keys import new_keys
from tidings.domains.outbound import DomainMail, signed_mime_soon
from tidings.domains.signing import SigningKeys
from tidings.domains.signing_pool import BATCH, SigningPool, signed_mime
from tidings.providers.base import OutboundMessage

DATE = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)


GENERATED = new_keys()
KEYS = SigningKeys("example.com", "td000001", GENERATED.rsa_private_pem, GENERATED.ed25519_seed)


@pytest.fixture
def keys() -> SigningKeys:
    return KEYS


@pytest.fixture
async def pool() -> AsyncIterator[SigningPool]:
    signing = SigningPool(1)
    yield signing
    await signing.close()


def txt_lookup(name: bytes, timeout: int = 5) -> bytes | None:
    """The DKIM records of :data:`KEYS`, as the sending domain publishes them."""
    records = {
        b"td000001-rsa._domainkey.example.com.": f"v=DKIM1; k=rsa; p={GENERATED.rsa_public}",
        b"td000001-ed._domainkey.example.com.": f"v=DKIM1; k=ed25519; p={GENERATED.ed25519_public}",
    }
    value = records.get(name)
    return value.encode() if value else None


def same_mime(first: bytes, second: bytes) -> bool:
    """Equal once each message's boundaries are numbered in order; both signed."""

    def numbered(data: bytes) -> bytes:
        for n, boundary in enumerate(re.findall(rb'boundary="([^"]+)"', data)):
            data = data.replace(boundary, b"boundary-%d" % n)
        # The signatures cover the boundaries: compared as verified, not as bytes.
        return data.split(b"\r\nFrom: ", 1)[1]

    for data in (first, second):
        verifier = dkim.DKIM(data)
        assert verifier.verify(idx=0, dnsfunc=txt_lookup)
        assert verifier.verify(idx=1, dnsfunc=txt_lookup)
    return numbered(first) == numbered(second)


def message(n: int, **content: Any) -> OutboundMessage:
    to = f"user{n}@example.org"
    return OutboundMessage(
        id=f"msg_{n:08d}",
        account_id="acc_pool",
        environment=Environment.PRODUCTION,
        channel="email",
        to=to,
        sender="news@example.com",
        body=None,
        content={
            "from": "News <news@example.com>",
            "to": [to],
            "cc": ["Ann <ann@example.net>"],
            "bcc": [],
            "replyTo": None,
            "subject": f"Your order {n} \u2013 shipped",
            "text": "Hello,\n\nyour order has shipped.\n",
            "html": "<p>Hello, <b>your order</b> has shipped.</p>",
            "headers": [],
            "attachments": [],
            "tags": [],
            "tracking": {},
            **content,
        },
        attempt=1,
    )


def samples() -> list[OutboundMessage]:
    large = base64.b64encode(os.urandom(200_000)).decode()
    return [
        message(2, tags=["marketing", "winter-sale"]),
        message(
            3,
            html=None,
            attachments=[{"filename": "a.bin", "contentType": "application/pdf", "content": large}],
        ),
    ]


async def test_the_pool_signs_the_bytes_the_loop_signs(
    keys: SigningKeys, pool: SigningPool
) -> None:
    # Single part (text only), and a marketing one: byte for byte.
    for item in (message(1, html=None), message(2, html=None, tags=["marketing", "sale"])):
        here = await signed_mime_soon(item, keys, DATE)
        there = await signed_mime_soon(item, keys, DATE, pool)
        assert there == here
        assert same_mime(there, here)
        assert there.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256;")
    assert b"\r\nFeedback-ID: sale:acc_pool:bulk:tidings\r\n" in there
    # Multipart (alternative; a 270 KB attachment, signed in a thread without a pool).
    for item in samples():
        here = await signed_mime_soon(item, keys, DATE)
        there = await signed_mime_soon(item, keys, DATE, pool)
        assert same_mime(there, here)
    assert pool.replaced == 0


async def test_messages_in_flight_go_over_together_and_each_gets_its_own_bytes(
    keys: SigningKeys, pool: SigningPool
) -> None:
    await pool.signed_mime(message(0), keys, DATE)
    handoffs = pool.handoffs
    items = [message(n, html=None) for n in range(100, 120)]
    # One whose rendering fails in the worker: it fails alone, not its batch.
    broken = message(99, html=None, shared="sc_gone")
    results = await asyncio.gather(
        *(pool.signed_mime(item, keys, DATE) for item in [*items[:5], broken, *items[5:]]),
        return_exceptions=True,
    )
    assert isinstance(results[5], UnresolvedSharedContent)
    signed = [*results[:5], *results[6:]]
    assert signed == [signed_mime(item, keys, DATE) for item in items]
    # 21 messages asked for in one turn of the loop: batches of at most BATCH.
    assert pool.handoffs - handoffs == -(-21 // BATCH)
    assert pool.replaced == 0


async def test_a_killed_worker_is_replaced_and_its_messages_signed(
    keys: SigningKeys, pool: SigningPool
) -> None:
    await pool.signed_mime(message(0), keys, DATE)
    (first,) = pool.worker_pids
    # Killed while idle: the next message finds the pool broken.
    os.kill(first, signal.SIGKILL)
    await _gone(first)
    assert same_mime(
        await pool.signed_mime(message(1), keys, DATE), signed_mime(message(1), keys, DATE)
    )
    assert pool.replaced == 1
    (second,) = pool.worker_pids
    assert second != first

    # Killed while messages are queued and running: every one still comes back, signed.
    items = [message(n) for n in range(10, 60)]
    tasks = [asyncio.create_task(pool.signed_mime(item, keys, DATE)) for item in items]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    os.kill(second, signal.SIGKILL)
    results = await asyncio.gather(*tasks)
    assert all(
        same_mime(result, signed_mime(item, keys, DATE))
        for result, item in zip(results, items, strict=True)
    )
    assert pool.replaced == 2
    assert second not in pool.worker_pids


async def test_a_closed_pool_signs_here(keys: SigningKeys) -> None:
    pool = SigningPool(1)
    await pool.close()
    single = message(1, html=None)
    assert await pool.signed_mime(single, keys, DATE) == signed_mime(single, keys, DATE)
    assert pool.worker_pids == ()


async def test_the_pool_starts_with_the_first_message_only() -> None:
    mail = DomainMail(domains=None, verp=None, signing_processes=1)  # type: ignore[arg-type]
    assert mail.pool is not None
    assert mail.pool.worker_pids == ()
    await mail.close()
    assert DomainMail(domains=None, verp=None, signing_processes=0).pool is None  # type: ignore[arg-type]


ORPHAN = """
import asyncio, sys
from tests.providers.smtp.test_signing_pool import DATE, KEYS, message
from tidings.domains.signing_pool import SigningPool

async def main():
    pool = SigningPool(1)
    await pool.signed_mime(message(1), KEYS, DATE)
    print(*pool.worker_pids, flush=True)
    await asyncio.sleep(600)

if __name__ == "__main__":
    asyncio.run(main())
"""


async def test_workers_end_when_their_process_is_killed(tmp_path: Any) -> None:
    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN)
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert parent.stdout is not None
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert pids
    finally:
        parent.kill()
        parent.wait()
    for pid in pids:
        await _gone(pid)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def _gone(pid: int) -> None:
    """Wait until the killed worker is reaped by its parent (the fork server)."""
    for _ in range(500):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.01)
