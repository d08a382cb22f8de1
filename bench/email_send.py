"""The smtp kind against a plain aiosmtplib loop, into one local SMTP sink.

    .venv/bin/python bench/email_send.py [messages] [connections] [processes] [rounds] [senders]

Sends ``messages`` (2,000) emails through :class:`SmtpProvider` (its pool of
``connections`` (4) connections, each message rendered from the stored request,
DKIM-signed twice, with a VERP return path and DSN parameters, by the server's own
:class:`DomainMail` with the keys given instead of read from the database) into an
aiosmtpd sink on loopback that offers DSN and PIPELINING, as relays do (Postfix,
SES, Postmark). The provider is given ``senders`` (32) messages at a time, as the
dispatcher gives it up to ``TIDINGS_DELIVERY__EMAIL_CONCURRENCY`` (32): they are
prepared concurrently and wait for a connection of its pool.

Two baselines in the same run, over as many connections into the same sink:

* **the plain loop** (the issue's baseline): aiosmtplib's ``sendmail`` of
  pre-rendered, unsigned messages; its CPU counted around the sending only.
* **the plain loop building its messages**: what a user writes with the standard
  library: an ``EmailMessage`` (From, To, Subject, Date, Message-ID, the text) built
  per message and sent with aiosmtplib's ``send_message``; the building counted.
  Neither signs, nor pipelines (aiosmtplib cannot), nor asks for DSN.

The rendering and signing take the server's path (:func:`signed_mime_soon`), with
each of the comma-separated ``processes`` (``0,1``: on the loop, then a signing
pool of one worker, as ``TIDINGS_EMAIL__SIGNING_PROCESSES``) in turn, ``rounds``
(3) times, each round also timing both baselines, so that a busy machine's noise
falls on all alike. Prints, per setting, emails per second against each baseline
of the same round (goal: at least 0.7 of the plain loop), the CPU time per email of
this process (client, sink and the pool's feeding threads) and of the pool's
workers, and what DKIM and the rendering cost per message (measured alone).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP as ServerSMTP

from tidings.channels.email.stored import render_outbound_email
from tidings.core.clock import SystemClock
from tidings.core.environments import Environment
from tidings.core.ids import new_id
from tidings.domains.keys import new_keys
from tidings.domains.outbound import DomainMail
from tidings.domains.signing import SigningKeys, sign
from tidings.domains.signing_pool import SigningPool
from tidings.domains.verp import Verp
from tidings.providers.base import OutboundMessage, ProviderDeps
from tidings.providers.registry import ProviderIdentity
from tidings.providers.smtp.config import SmtpConfig
from tidings.providers.smtp.provider import OUTBOUND_KEY, SmtpProvider

BODY = "Hello,\n\nyour order has shipped and will be with you on Tuesday.\n" * 8


class Sink:
    """Takes every message, keeps a count; offers DSN and PIPELINING like a relay
    (aiosmtpd reads pipelined commands in order; it does not advertise it itself)."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        responses.insert(-1, "250-DSN")
        responses.insert(-1, "250-PIPELINING")
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


class GivenKeys:
    """The domain service's one question of :class:`DomainMail`, answered without a
    database (the real service caches the answer for a minute anyway)."""

    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys

    async def signing_keys(self, account_id: str, environment: Any, domain: str) -> SigningKeys:
        return self.keys


def outbound_mail(keys: SigningKeys, verp: Verp, processes: int) -> DomainMail:
    """The server's outbound mail service (render, sign, VERP), keys given."""
    return DomainMail(GivenKeys(keys), verp, signing_processes=processes)  # type: ignore[arg-type]


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
    port: int, messages: list[OutboundMessage], connections: int, signer: DomainMail, senders: int
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


async def plain_loop_building(
    port: int, messages: list[OutboundMessage], connections: int
) -> tuple[float, float]:
    """Seconds and CPU seconds of building each message with the standard library's
    ``EmailMessage`` and sending it with ``send_message``, as a user's own loop does."""
    chunks = [messages[i::connections] for i in range(connections)]

    def build(item: OutboundMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = item.content["from"]
        email["To"] = item.to
        email["Subject"] = item.content["subject"]
        email["Date"] = format_datetime(datetime.now(UTC))
        email["Message-ID"] = make_msgid(domain="example.com")
        email.set_content(item.content["text"])
        return email

    async def one(chunk: list[OutboundMessage]) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as smtp:
            for item in chunk:
                await smtp.send_message(build(item))

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
    server's children, not this process's). Every child of the fork server is
    counted: ``worker_pids`` may name fewer than all of a larger pool's workers
    (one worker can answer both of the start's questions)."""
    if pool is None or not pool.worker_pids:
        return 0.0
    server = _stat(pool.worker_pids[0])[1]
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat(int(entry))
        except OSError:
            continue  # ended meanwhile
        if fields[1] == server:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name: state, ppid, ..."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


async def main(
    count: int, connections: int, settings: list[int], rounds: int, senders: int
) -> None:
    generated = new_keys()
    keys = SigningKeys("example.com", "td000000", generated.rsa_private_pem, generated.ed25519_seed)
    verp = Verp(b"k" * 32, "bounces.example.com")
    signers: dict[int, DomainMail] = {}
    for processes in settings:
        signers[processes] = outbound_mail(keys, verp, processes)
        if processes:
            # Started before the timing (the server starts it with its first email).
            started = time.perf_counter()
            await signers[processes].prepare(message(0), date=datetime.now(UTC))
            print(f"signing pool of {processes} started in {time.perf_counter() - started:.2f} s")
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: DsnServer(sink, hostname="sink"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # Per setting: (emails/s, CPU here, CPU in the workers) per round.
    results: dict[int, list[tuple[float, float, float]]] = {p: [] for p in settings}
    # Per baseline: (emails/s, CPU per email) per round.
    plain: list[tuple[float, float]] = []
    building: list[tuple[float, float]] = []
    try:
        for _ in range(rounds):
            plain_s, plain_cpu = await plain_loop(
                port, [message(n) for n in range(count)], connections
            )
            plain.append((count / plain_s, plain_cpu / count))
            built_s, built_cpu = await plain_loop_building(
                port, [message(n) for n in range(count)], connections
            )
            building.append((count / built_s, built_cpu / count))
            for processes, signer in signers.items():
                started, pool_started = time.process_time(), worker_cpu(signer.pool)
                provider_s = await through_provider(
                    port, [message(n) for n in range(count)], connections, signer, senders
                )
                here = (time.process_time() - started) / count
                there = (worker_cpu(signer.pool) - pool_started) / count
                results[processes].append((count / provider_s, here, there))
        assert sink.count == rounds * (len(settings) + 2) * count, sink.count
    finally:
        server.close()
        await server.wait_closed()
        for signer in signers.values():
            await signer.close()
    sample = [message(n) for n in range(min(count, 500))]
    per_message = dkim_cost(keys, sample)
    rendering = render_cost(sample)
    print(
        f"{count} emails over {connections} connections, {senders} at a time through the"
        f" provider, {rounds} rounds (settings in turn)"
    )
    for label, baseline in (
        ("plain aiosmtplib loop (pre-rendered)", plain),
        ("plain loop building each EmailMessage", building),
    ):
        print(
            f"  {label}: {statistics.median(r for r, _ in baseline):6.0f} emails/s (median),"
            f" CPU per email {ms(c for _, c in baseline)}"
        )
    for processes, rows in results.items():
        to_plain = " ".join(f"{r / p:.2f}" for (r, _, _), (p, _) in zip(rows, plain, strict=True))
        to_building = " ".join(
            f"{r / b:.2f}" for (r, _, _), (b, _) in zip(rows, building, strict=True)
        )
        print(
            f"  signing processes {processes}: {statistics.median(r for r, _, _ in rows):6.0f}"
            f" emails/s (median); ratio to the plain loop {to_plain} (goal >= 0.7),"
            f" to the building loop {to_building}; CPU per email: this process"
            f" {ms(h for _, h, _ in rows)}, pool {ms(t for _, _, t in rows)}"
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
