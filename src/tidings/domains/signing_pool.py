"""Rendering and DKIM-signing outgoing mail, here or in a small pool of processes.

:func:`signed_mime` is the whole job (the MIME from the stored request, a
``Feedback-ID`` for bulk mail, both DKIM signatures); it is a pure function of the
message, the keys and the date (the signatures' ``t=`` is the date), so the same
bytes come out wherever it runs.

:class:`SigningPool` runs it in other processes (``TIDINGS_EMAIL__SIGNING_PROCESSES``),
so that the CPU it takes (about 0.9 ms a message: rendering 0.36 ms, both signatures
0.5 ms) is not taken from the event loop's thread, which the GIL makes the only one
doing Python work in this process. What crosses to a worker is plain data: the
message's fields (its content dict), the keys' four strings and the date; what comes
back is the signed bytes. Messages asked for during one turn of the event loop go
to a worker together (up to :data:`BATCH` at a time, one job): each hand-off costs
this process CPU (the executor's queue-feeding thread, pickling, waking the loop
when the answer is back), measured at 0.41-0.48 ms a message handed over alone
and 0.09 ms in batches of 8, with the dispatcher's 32 messages in flight
(docs/performance.md). Each message of a batch still gets its own answer: one that
fails in the worker fails alone. A worker keeps the parsed keys (:mod:`.signing`'s caches,
keyed by the key material itself), so a key is parsed once per worker, not per
message.

The pool is started on the first message it is asked to sign (a process that never
sends production mail never starts it), from a worker thread (starting a process
takes a moment), with the ``forkserver`` start method: a process running an event
loop and threads must not ``fork`` (a lock held by another thread at that moment
stays held in the child forever). A pool found broken (a worker killed: the OOM
killer, an operator) is replaced and the message signed again in the new one; if
that one breaks too (the message itself may be what kills workers), the message is
signed in this process. So a message is never lost or failed because of the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import pickle
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

from tidings.channels.email.stored import render_outbound_email
from tidings.channels.email.tracking import is_marketing
from tidings.domains.signing import SigningKeys, sign
from tidings.providers.base import OutboundMessage

log = logging.getLogger("tidings.domains.signing")

_FIELDS = tuple(field.name for field in dataclasses.fields(OutboundMessage))


def signed_mime(message: OutboundMessage, keys: SigningKeys, date: datetime) -> bytes:
    """The message as it goes on the wire: rendered, a ``Feedback-ID`` for bulk mail,
    both DKIM signatures (``t=`` the date's second)."""
    data = render_outbound_email(message, date=date)
    if is_marketing(message.content):
        campaign = _campaign(message)
        data = f"Feedback-ID: {campaign}:{message.account_id}:bulk:tidings\r\n".encode() + data
    return sign(data, keys, timestamp=int(date.timestamp()))


def _campaign(message: OutboundMessage) -> str:
    tags = [str(tag) for tag in message.content.get("tags") or []]
    campaign = next((tag for tag in tags if tag.lower() not in ("marketing", "bulk")), "bulk")
    return "".join(ch for ch in campaign if ch.isalnum() or ch in "-_.")[:40] or "bulk"


# What crosses to a worker for one message: its fields, the keys' strings, the date.
Job = tuple[tuple[Any, ...], tuple[str, str, str, str], datetime]

# At most this many messages in one hand-off: larger batches save little more here
# (0.05 ms at 16) and make the first message of a batch wait for the last.
BATCH = 8


def _signed_in_worker(
    fields: tuple[Any, ...], keys: tuple[str, str, str, str], date: datetime
) -> bytes:
    """A worker's job: the message and keys rebuilt from plain data, then
    :func:`signed_mime`."""
    return signed_mime(OutboundMessage(*fields), SigningKeys(*keys), date)


def _signed_batch_in_worker(jobs: list[Job]) -> list[tuple[bool, Any]]:
    """A worker's job for several messages: ``(True, bytes)`` or ``(False, the
    error)`` for each, so one message's failure is its own."""
    results: list[tuple[bool, Any]] = []
    for job in jobs:
        try:
            results.append((True, _signed_in_worker(*job)))
        except Exception as error:
            results.append((False, _sendable(error)))
    return results


def _sendable(error: Exception) -> Exception:
    """The error as it can cross back (an error that does not pickle would fail the
    whole batch's answer)."""
    try:
        pickle.dumps(error)
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def _watch(parent: int) -> None:
    """A worker's initializer: end the worker when the process it signs for is gone.
    Killed (SIGKILL, the OOM killer), that process never shuts its pool down, and a
    worker waiting for work would wait forever (its queue never reaches its end), and
    keep the fork server alive too."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent, 0)
            except (ProcessLookupError, PermissionError):  # gone, or its pid reused
                os._exit(0)

    threading.Thread(target=watch, name="signing-parent-watch", daemon=True).start()


def _pid() -> int:
    """Run once when a pool starts: the worker is up (and tests learn its pid)."""
    return os.getpid()


def default_processes() -> int:
    """One worker where there is a second CPU for it; none (sign on the loop) else."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0


class SigningPool:
    """:func:`signed_mime` in ``processes`` worker processes, started when first
    needed, replaced when broken, shut down by :meth:`close`."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a signing pool needs at least one process")
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._starting = asyncio.Lock()
        self._closed = False
        # How many times a broken pool was replaced (logged; tests read it).
        self.replaced = 0
        # The workers' process ids as of the last start (tests kill one).
        self.worker_pids: tuple[int, ...] = ()
        # The batch being gathered this turn of the loop, and for which executor.
        self._batch: list[tuple[Job, asyncio.Future[bytes]]] | None = None
        self._batch_executor: ProcessPoolExecutor | None = None
        # How many hand-offs (jobs) went to the workers (tests read it).
        self.handoffs = 0

    async def signed_mime(
        self, message: OutboundMessage, keys: SigningKeys, date: datetime
    ) -> bytes:
        fields = tuple(getattr(message, name) for name in _FIELDS)
        material = (keys.domain, keys.selector, keys.rsa_private_pem, keys.ed25519_seed)
        for _ in range(2):
            executor = await self._running()
            if executor is None:
                break
            try:
                return await self._in_batch(executor, (fields, material, date))
            except BrokenProcessPool:
                self._replace(executor, message.id)
        # Closed, or broken twice in a row: this process signs it (in a thread, so a
        # large message does not hold the loop), with the same bytes as a worker's.
        return await asyncio.to_thread(signed_mime, message, keys, date)

    def _in_batch(self, executor: ProcessPoolExecutor, job: Job) -> asyncio.Future[bytes]:
        """The job joins this turn's batch (handed over at the end of the turn, or
        at once when full); its answer comes back on the future."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()
        batch = self._batch
        if batch is None or self._batch_executor is not executor:
            batch = self._batch = []
            self._batch_executor = executor
            loop.call_soon(self._hand_over, executor, batch)
        batch.append((job, answer))
        if len(batch) >= BATCH:
            self._batch = None  # the next message starts another
        return answer

    def _hand_over(
        self, executor: ProcessPoolExecutor, batch: list[tuple[Job, asyncio.Future[bytes]]]
    ) -> None:
        if self._batch is batch:
            self._batch = None
        try:
            done = executor.submit(_signed_batch_in_worker, [job for job, _ in batch])
        except (BrokenProcessPool, RuntimeError):
            # Broken, or shut down meanwhile: each message is signed again (or here).
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(BrokenProcessPool("the signing pool is gone"))
            return
        self.handoffs += 1
        loop = asyncio.get_running_loop()

        def back(finished: Future[list[tuple[bool, Any]]]) -> None:
            # Called in the executor's thread: the answers are set on the loop's.
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._answer, batch, finished)

        done.add_done_callback(back)

    @staticmethod
    def _answer(
        batch: list[tuple[Job, asyncio.Future[bytes]]], done: Future[list[tuple[bool, Any]]]
    ) -> None:
        """Each message's own answer (one whose sender gave up is skipped). A batch
        the executor cancelled (it was shut down as broken) is signed again."""
        error = (
            BrokenProcessPool("the signing pool was shut down")
            if done.cancelled()
            else done.exception()
        )
        results = done.result() if error is None else [(False, error)] * len(batch)
        for (_, answer), (ok, value) in zip(batch, results, strict=True):
            if answer.done():
                continue
            if ok:
                answer.set_result(value)
            else:
                answer.set_exception(value)

    async def _running(self) -> ProcessPoolExecutor | None:
        if self._executor is not None or self._closed:
            return self._executor
        async with self._starting:
            if self._executor is None and not self._closed:
                executor = self._new_executor()
                try:
                    # Starting the fork server and the workers blocks for a while (they
                    # import the rendering and signing code): not on the loop's thread.
                    self.worker_pids = await asyncio.to_thread(self._start, executor)
                except (BrokenProcessPool, OSError, RuntimeError) as error:
                    log.warning("the signing pool did not start: %s", error)
                    executor.shutdown(wait=False, cancel_futures=True)
                    return None
                self._executor = executor
        return self._executor

    def _new_executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        # Imported once in the fork server, so each worker starts with it loaded.
        context.set_forkserver_preload([__name__])
        return ProcessPoolExecutor(
            self.processes, mp_context=context, initializer=_watch, initargs=(os.getpid(),)
        )

    def _start(self, executor: ProcessPoolExecutor) -> tuple[int, ...]:
        pids = {executor.submit(_pid).result() for _ in range(self.processes)}
        return tuple(sorted(pids))

    def _replace(self, executor: ProcessPoolExecutor, message_id: str) -> None:
        """Forget a broken pool (once, however many messages found it broken); the
        next message starts a new one."""
        if self._executor is executor:
            self._executor = None
            self.replaced += 1
            log.warning("the signing pool broke (a worker died); %s is signed again", message_id)
        executor.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Stop the workers (after the messages they have); later messages are signed
        in this process."""
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
