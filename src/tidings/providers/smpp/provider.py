"""The ``smpp`` provider: ``binds`` transceiver sessions to one SMSC account, in this process.

:meth:`SmppProvider.start` (called by the directory for persistent kinds, or by
the first ``send``) opens the binds (:class:`~.session.BindKeeper`), which then
stay up to receive receipts and contacts' messages even when nothing is sent.
``send`` builds the message's ``submit_sm`` bodies (:mod:`.submission`), picks the
bound session with the fewest outstanding requests and submits every part there,
in order, through that bind's :class:`~.window.Window` (window, 0x58 pause);
the dispatcher already took one slot of the agreed rate for the message, and each
further PDU (the other parts, resubmissions) takes one more on the same shared
schedule, so ``throughputPerSecond`` counts PDUs (Jasmin#708). The answer is one
:class:`ProviderRef` per part, its id normalised as receipts' ids are (numbered
when there are several).

A ``submit_sm`` left unanswered past the response timer, or lost with its bind,
is retried by the dispatcher: the SMSC may have taken it, so the SMS may arrive
twice, as with every gateway.

Every ``deliver_sm`` is stored in the inbox, committed, before its
``deliver_sm_resp`` (:mod:`.receipts` says how it is read back); those a bind
read while the previous ones were being stored are stored together, in one
insert. The parts of a
concatenated SMS a contact sends are each stored as they come, and joined here
(by sender, reference and total) into one stored message when the last arrives;
parts still missing after ``PART_TIMEOUT_SECONDS`` are given up and what came is
stored as the message, saying how many parts are missing. The join lives in
memory: parts whose group was not complete when the process stopped stay stored
as parts and are not joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from tidings.providers.base import (
    Accepted,
    OutboundMessage,
    ProviderDeps,
    ProviderRef,
    RawReport,
)
from tidings.providers.errors import ConfigurationError, ConnectionDown
from tidings.providers.pacing import ProviderPacer, provider_rate
from tidings.providers.registry import ProviderIdentity
from tidings.providers.smpp.config import SmppConfig
from tidings.providers.smpp.pdus import ShortMessage
from tidings.providers.smpp.receipts import normalise_id, split_udh, stored_report
from tidings.providers.smpp.session import BindKeeper, BindRefused, Session
from tidings.providers.smpp.status_codes import CREDENTIALS, describe, error_for
from tidings.providers.smpp.submission import build
from tidings.providers.smpp.window import Window

log = logging.getLogger("tidings.providers.smpp")

PART_TIMEOUT_SECONDS = 300.0


@dataclass
class _Parts:
    total: int
    first_seen: float
    payloads: dict[int, dict[str, Any]] = field(default_factory=dict)


class SmppProvider:
    kind = "smpp"

    def __init__(self, identity: ProviderIdentity, config: SmppConfig, deps: ProviderDeps) -> None:
        self.id = identity.id
        self.channel = identity.channel
        self._config = config
        self._deps = deps
        self._keepers: list[BindKeeper] = []
        self._windows: dict[int, Window] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        self._reference = random.randrange(256)
        self._pacer = ProviderPacer(deps.writer) if config.throughput_per_second else None
        self._parts: dict[tuple[str, int, int], _Parts] = {}
        self.part_timeout = PART_TIMEOUT_SECONDS

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open the binds (once); they stay up until :meth:`close`."""
        if self._started or self._closed:
            return
        self._started = True
        for number in range(self._config.binds):
            keeper = BindKeeper(self._config, self._on_deliver, name=f"smpp-{self.id}-{number}")
            self._keepers.append(keeper)
            self._windows[id(keeper)] = Window(
                self._config.window,
                self._config.response_timeout_seconds,
                self._config.throttle_wait_seconds,
            )
            self._spawn(keeper.run(), keeper.name)
        self._spawn(self._sweep_parts(), f"smpp-{self.id}-parts")
        # Each bind's first attempt, bounded: so that whoever started it can tell at
        # once (``refused``) that the SMSC refused the credentials.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.response_timeout_seconds):
                for keeper in self._keepers:
                    await keeper.attempted.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for keeper in self._keepers:
            with contextlib.suppress(Exception):
                await keeper.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def refused(self) -> ConfigurationError | None:
        """Why the SMSC will not bind this account, once it refused the credentials."""
        return next((k.refused for k in self._keepers if k.refused is not None), None)

    # -- sending ---------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> Accepted:
        if self._closed:
            raise ConnectionDown("smpp_closed", "The SMPP provider is shutting down.")
        await self.start()
        keeper = await self._bound()
        session = keeper.session
        if session is None:
            raise ConnectionDown("smpp_not_bound", "The SMPP bind was lost.")
        self._reference = (self._reference + 1) % 256
        submission = build(message, self._config, self._reference)
        window = self._windows[id(keeper)]
        ids = await window.submit(session, submission.bodies(), self._pace)
        # A message sent whole names no part: its receipt delivers it without the
        # count of its parts being looked up.
        whole = len(ids) == 1
        return Accepted(
            tuple(
                ProviderRef(
                    normalise_id(found) if found else f"noid.{message.id}.{part}",
                    None if whole else part,
                )
                for part, found in enumerate(ids, start=1)
            )
        )

    async def _bound(self) -> BindKeeper:
        ready = [keeper for keeper in self._keepers if keeper.ready]
        if not ready:
            refused = self.refused
            if refused is not None:
                raise refused
            waits = [
                asyncio.ensure_future(keeper.wait_ready(self._config.response_timeout_seconds))
                for keeper in self._keepers
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            ready = [keeper for keeper in self._keepers if keeper.ready]
        if not ready:
            refused = self.refused
            if refused is not None:
                raise refused
            problem = self._keepers[0].last_problem if self._keepers else "not started"
            raise ConnectionDown("smpp_not_bound", f"No SMPP bind is up: {problem}.")
        return min(ready, key=lambda keeper: self._windows[id(keeper)].in_flight)

    async def _pace(self) -> None:
        if self._pacer is None:
            return
        rate = provider_rate(self.id, self._config.throughput_per_second)
        slot = await self._pacer.next_slot(rate)
        delay = slot - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def check(self) -> str:
        config = self._config
        session = Session(config, self._refuse_deliveries, name=f"smpp-{self.id}-check")
        try:
            await session.open()
        except BindRefused as refused:
            if refused.status in CREDENTIALS:
                raise error_for(refused.status) from None
            raise ConnectionDown(
                "smpp_bind_failed", f"The SMSC refused the bind: {describe(refused.status)}."
            ) from None
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            raise ConnectionDown(
                "provider_unreachable",
                f"Cannot reach {config.host}:{config.port} ({type(error).__name__}).",
            ) from None
        await session.close()
        return (
            f"Bound to {config.host}:{config.port} as {config.system_id!r} and unbound; "
            "nothing was sent."
        )

    @staticmethod
    async def _refuse_deliveries(messages: list[ShortMessage]) -> None:
        # A check's bind stores nothing: the SMSC delivers again on the real binds.
        raise RuntimeError("a check bind does not take deliveries")

    # -- receiving -------------------------------------------------------------------

    async def _on_deliver(self, messages: list[ShortMessage]) -> None:
        """Store a batch of deliver_sm (and the joined messages they complete), in one
        insert; the session answers them only after this returned."""
        base = self._config.receipt_id_base
        at = self._deps.clock.now()
        reports: list[RawReport] = []
        completed: list[tuple[str, int, int]] = []
        for message in messages:
            report = stored_report(message, received_at=at, id_base=base)
            reports.append(report)
            if message.is_receipt or message.is_acknowledgement:
                continue
            _, part = split_udh(message)
            if part is None or part[1] <= 1:
                continue
            report.payload["kind"] = "mo_part"
            group = (message.source, part[0], part[1])
            parts = self._parts.setdefault(group, _Parts(part[1], time.monotonic()))
            parts.payloads[part[2]] = report.payload
            if len(parts.payloads) >= parts.total and group not in completed:
                completed.append(group)
        # A group completes once, with every part this batch brought.
        reports.extend(self._joined(self._parts[group]) for group in completed)
        await self._deps.inbox.store(self.id, reports)
        for group in completed:
            self._parts.pop(group, None)

    def _joined(self, parts: _Parts) -> RawReport:
        ordered = [parts.payloads[number] for number in sorted(parts.payloads)]
        digest = hashlib.sha256(
            "|".join(part["shortMessage"] for part in ordered).encode()
            + ordered[0]["source"].encode()
        ).hexdigest()[:40]
        payload = {
            "kind": "mo",
            "id": digest,
            "parts": ordered,
            "missing": parts.total - len(ordered),
            "receivedAt": ordered[-1]["receivedAt"],
        }
        return RawReport(f"mo:{digest}", payload)

    async def _sweep_parts(self) -> None:
        while True:
            await asyncio.sleep(min(self.part_timeout / 4, 30.0))
            now = time.monotonic()
            for group, parts in list(self._parts.items()):
                if now - parts.first_seen < self.part_timeout:
                    continue
                try:
                    await self._deps.inbox.store(self.id, [self._joined(parts)])
                except Exception:
                    log.exception("storing an incomplete inbound SMS failed; trying again")
                    continue
                self._parts.pop(group, None)
