"""The smtp kind against a plain aiosmtplib loop, into one local SMTP sink.

    .venv/bin/python bench/email_send.py [messages] [connections] [processes] [rounds] [senders]

Sends ``messages`` (2,000) emails through :class:`SmtpProvider` (its pool of
``connections`` (4) connections, each message rendered from the stored request,
DKIM-signed twice, with a VERP return path and DSN parameters) and then the same
number of pre-rendered, unsigned messages with a plain aiosmtplib loop over as many
connections, both into an aiosmtpd sink on loopback in the same run. The provider
is given ``senders`` (32) messages at a time, as the dispatcher gives it up to
``TIDINGS_DELIVERY__EMAIL_CONCURRENCY`` (32): they are prepared concurrently and
wait for a connection of its pool.

The rendering and signing take the server's path (:func:`signed_mime_soon`), with
each of the comma-separated ``processes`` (``0,1``: on the loop, then a signing
pool of one worker, as ``TIDINGS_EMAIL__SIGNING_PROCESSES``) in turn, ``rounds``
(3) times, each round also timing the plain loop, so that a busy machine's noise
falls on all alike. Prints, per setting, emails per second against the plain loop
of the same round (goal: at least 0.7), the CPU time per email of this process
(client, sink and the pool's feeding threads) and of the pool's workers, and what
DKIM and the rendering cost per message (measured alone).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP as ServerSMTP

from tidings.channels.email.stored import render_outbound_email
from tidings.core.clock import SystemClock
from tidings.core.environments import Environment
from tidings.core.ids import new_id
from tidings.domains.keys import new_keys
from tidings.domains.outbound import signed_mime_soon
from tidings.domains.signing import SigningKeys, sign
from tidings.domains.signing_pool import SigningPool
from tidings.domains.verp import Verp
from tidings.providers.base import OutboundMessage, ProviderDeps
from tidings.providers.registry import ProviderIdentity
from tidings.providers.smtp.config import SmtpConfig
from tidings.providers.smtp.provider import OUTBOUND_KEY, PreparedMail, SmtpProvider

BODY = "Hello,\n\nyour order has shipped and will be with you on Tuesday.\n" * 8


class Sink:
    """Takes every message, keeps a count; offers DSN like a relay."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        responses.insert(-1, "250-DSN")
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 2.0.0 Ok"


class DsnServer(ServerSMTP):  # type: ignore[misc]
    def _getparams(self, params: Any) -> Any:
        result = super()._getparams(params)
        if result is not None:
            for name in ("RET", "ENVID", "NOTIFY", "ORCPT"):
                result.pop(name, None)
        return result


class NoInbox:
    async def store(self, provider_id: str, reports: Any) -> int:
        return 0


class Signer:
    """The outbound mail service's work without its database (the keys are given):
    render and sign (:func:`signed_mime_soon`, as the service does), VERP."""

    def __init__(self, keys: SigningKeys, verp: Verp, pool: SigningPool | None) -> None:
        self.keys, self.verp, self.pool = keys, verp, pool

    async def prepare(self, message: OutboundMessage, *, date: datetime) -> PreparedMail:
        data = await signed_mime_soon(message, self.keys, date, self.pool)
        return PreparedMail(data, self.verp.address(message.id), (message.to,))


def message(n: int) -> OutboundMessage:
    to = f"user{n}@example.org"
    content = {
        "from": "News <news@example.com>",
        "to": [to],
        "cc": [],
        "bcc": [],
        "replyTo": None,
        "subject": f"Your order {n}",
        "text": BODY,
        "html": None,
        "headers": [],
        "attachments": [],
        "tags": [],
        "tracking": {},
    }
    return OutboundMessage(
        id=new_id("msg"),
        account_id="acc_bench",
        environment=Environment.PRODUCTION,
        channel="email",
        to=to,
        sender="news@example.com",
        body=BODY,
        content=content,
        attempt=1,
    )


async def through_provider(
    port: int, messages: list[OutboundMessage], connections: int, signer: Signer, senders: int
) -> float:
    config = SmtpConfig(host="127.0.0.1", port=port, security="none", max_connections=connections)
    deps = ProviderDeps(
        clock=SystemClock(), writer=None, inbox=NoInbox(), extras={OUTBOUND_KEY: signer}
    )  # type: ignore[arg-type]
    identity = ProviderIdentity(
        "prv_bench", "acc_bench", Environment.PRODUCTION, "email", "smtp", "bench"
    )
    provider = SmtpProvider(identity, config, deps)
    queue: asyncio.Queue[OutboundMessage] = asyncio.Queue()
    for item in messages:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await provider.send(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(senders)))
    elapsed = time.perf_counter() - started
    assert provider.pool.opened == connections, provider.pool.opened
    await provider.close()
    return elapsed


async def plain_loop(
    port: int, messages: list[OutboundMessage], connections: int
) -> tuple[float, float]:
    """Seconds and CPU seconds of sending (the rendering beforehand not counted)."""
    date = datetime.now(UTC)
    rendered = [(item.to, render_outbound_email(item, date=date)) for item in messages]
    chunks = [rendered[i::connections] for i in range(connections)]

    async def one(chunk: list[tuple[str, bytes]]) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as smtp:
            for to, data in chunk:
                await smtp.sendmail("news@example.com", [to], data)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(chunk) for chunk in chunks))
    return time.perf_counter() - started, time.process_time() - cpu


def render_cost(messages: list[OutboundMessage]) -> float:
    date = datetime.now(UTC)
    started = time.perf_counter()
    for item in messages:
        render_outbound_email(item, date=date)
    return (time.perf_counter() - started) / len(messages)


def dkim_cost(keys: SigningKeys, messages: list[OutboundMessage]) -> float:
    date = datetime.now(UTC)
    rendered = [render_outbound_email(item, date=date) for item in messages]
    started = time.perf_counter()
    for data in rendered:
        sign(data, keys)
    return (time.perf_counter() - started) / len(rendered)


def worker_cpu(pool: SigningPool | None) -> float:
    """CPU seconds the pool's workers have used (from /proc: they are the fork
    server's children, not this process's)."""
    if pool is None:
        return 0.0
    total = 0
    for pid in pool.worker_pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


async def main(
    count: int, connections: int, settings: list[int], rounds: int, senders: int
) -> None:
    generated = new_keys()
    keys = SigningKeys("example.com", "td000000", generated.rsa_private_pem, generated.ed25519_seed)
    verp = Verp(b"k" * 32, "bounces.example.com")
    signers: dict[int, Signer] = {}
    for processes in settings:
        pool = SigningPool(processes) if processes else None
        signers[processes] = Signer(keys, verp, pool)
        if pool is not None:
            # Started before the timing (the server starts it with its first email).
            started = time.perf_counter()
            await signers[processes].prepare(message(0), date=datetime.now(UTC))
            print(f"signing pool of {processes} started in {time.perf_counter() - started:.2f} s")
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: DsnServer(sink, hostname="sink"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # Per setting: (ratio to the round's plain loop, CPU here, CPU in the workers).
    results: dict[int, list[tuple[float, float, float]]] = {p: [] for p in settings}
    plain: list[tuple[float, float]] = []
    try:
        for _ in range(rounds):
            plain_s, plain_cpu = await plain_loop(
                port, [message(n) for n in range(count)], connections
            )
            plain.append((count / plain_s, plain_cpu / count))
            for processes, signer in signers.items():
                started, pool_started = time.process_time(), worker_cpu(signer.pool)
                provider_s = await through_provider(
                    port, [message(n) for n in range(count)], connections, signer, senders
                )
                here = (time.process_time() - started) / count
                there = (worker_cpu(signer.pool) - pool_started) / count
                results[processes].append((count / provider_s / (count / plain_s), here, there))
        assert sink.count == rounds * (len(settings) + 1) * count, sink.count
    finally:
        server.close()
        await server.wait_closed()
        for signer in signers.values():
            if signer.pool is not None:
                await signer.pool.close()
    sample = [message(n) for n in range(min(count, 500))]
    per_message = dkim_cost(keys, sample)
    rendering = render_cost(sample)
    print(
        f"{count} emails over {connections} connections, {senders} at a time through the"
        f" provider, {rounds} rounds (settings in turn)"
    )
    print(
        f"  plain aiosmtplib loop (pre-rendered): {statistics.median(r for r, _ in plain):8.0f}"
        f" emails/s (median), CPU per email {ms(c for _, c in plain)}"
    )
    for processes, rows in results.items():
        ratios = " ".join(f"{ratio:.2f}" for ratio, _, _ in rows)
        print(
            f"  signing processes {processes}: ratio {ratios} (goal >= 0.7); CPU per email:"
            f" this process {ms(h for _, h, _ in rows)}, pool {ms(t for _, _, t in rows)}"
        )
    print(f"  DKIM (Ed25519 + RSA-2048) per message: {per_message * 1000:.2f} ms")
    print(f"  rendering the MIME per message (render_outbound_email): {rendering * 1000:.2f} ms")


def ms(values: Any) -> str:
    """Min to max, in milliseconds."""
    items = sorted(values)
    return f"{items[0] * 1000:.2f}-{items[-1] * 1000:.2f} ms"


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(
            int(args[0]) if args else 2000,
            int(args[1]) if len(args) > 1 else 4,
            [int(p) for p in args[2].split(",")] if len(args) > 2 else [0, 1],
            int(args[3]) if len(args) > 3 else 3,
            int(args[4]) if len(args) > 4 else 32,
        )
    )
