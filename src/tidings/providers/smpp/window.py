"""One bind's window and its throttle pause: at most ``window`` ``submit_sm`` outstanding,
and an ``ESME_RTHROTTLED`` that pauses the whole bind without reordering it.

Every PDU takes a window slot before it is written and keeps it until its final
answer, so the SMSC never sees more than ``window`` unanswered ``submit_sm`` on
this bind. Each PDU is numbered (a ticket) when it first goes out. A 0x58 answer
pauses the bind (1 s, doubling while the SMSC keeps throttling, up to 8 s): new
PDUs and the throttled ones wait at the gate, and when the pause ends they are let
through in ticket order, so a throttled PDU goes out again before everything
submitted after it (Jasmin#425 requeued the one message with a delay instead,
reordering the bind). A submission that would wait for the pause longer than the
provider's ``throttleWaitSeconds`` (counted from its start), or whose PDU was
throttled ``MAX_THROTTLES`` times, is handed back to the dispatcher as a
``ThrottledError`` (attempt given back, pace halved) instead of outliving the
dispatcher's deadline.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable

from tidings.providers.errors import RetryableDeliveryError
from tidings.providers.smpp import pdus
from tidings.providers.smpp.pdus import Pdu
from tidings.providers.smpp.session import Session
from tidings.providers.smpp.status_codes import ESME_ROK, ESME_RTHROTTLED, error_for

PAUSE_MIN_SECONDS = 1.0
PAUSE_MAX_SECONDS = 8.0
MAX_THROTTLES = 5

Pace = Callable[[], Awaitable[None]]


class Gate:
    """Lets waiters through in ticket order once a pause is over."""

    def __init__(self) -> None:
        self._until = 0.0
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def paused(self) -> bool:
        return asyncio.get_running_loop().time() < self._until

    @property
    def resumes_at(self) -> float:
        return self._until

    async def through(self, ticket: int) -> None:
        if not self.paused and not self._waiting:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (ticket, future))
        self._arm()
        try:
            await future
        except asyncio.CancelledError:
            self._waiting = [item for item in self._waiting if item[1] is not future]
            heapq.heapify(self._waiting)
            raise

    def pause(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._until = max(self._until, loop.time() + seconds)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(max(self._until, loop.time()), self._release)

    def _release(self) -> None:
        self._timer = None
        if self.paused:
            self._arm()
            return
        waiting, self._waiting = self._waiting, []
        # Futures resolved in ticket order wake their tasks in that order, and each
        # writes its PDU before yielding: the wire sees ticket order.
        while waiting:
            _, future = heapq.heappop(waiting)
            if not future.done():
                future.set_result(None)


class Window:
    """Submissions on one bind."""

    def __init__(self, size: int, response_timeout: float, throttle_wait: float = 5.0) -> None:
        self.size = size
        self._throttle_wait = throttle_wait
        self._slots = asyncio.Semaphore(size)
        self._gate = Gate()
        self._tickets = itertools.count()
        self._response_timeout = response_timeout
        self._pause = PAUSE_MIN_SECONDS
        self.in_flight = 0
        self.throttled = 0

    async def submit(self, session: Session, bodies: list[bytes], pace: Pace) -> list[str]:
        """Submit the PDUs in order (pipelined within the window); their message ids.

        The first error (after resubmitting throttled ones) is raised once every
        part has its answer."""
        give_up_at = asyncio.get_running_loop().time() + self._throttle_wait
        if len(bodies) == 1:
            # A message sent whole (most of them): its one answer awaited here, with no
            # task and no gather around it.
            [body] = bodies
            ticket, answer = await self._write(session, body, give_up_at)
            return [await self._finish(session, body, ticket, answer, pace, give_up_at)]
        finishing: list[asyncio.Task[str]] = []
        try:
            for index, body in enumerate(bodies):
                if index:
                    await pace()
                ticket, answer = await self._write(session, body, give_up_at)
                finishing.append(
                    asyncio.ensure_future(
                        self._finish(session, body, ticket, answer, pace, give_up_at)
                    )
                )
        except BaseException:
            for task in finishing:
                task.cancel()
            raise
        try:
            results = await asyncio.gather(*finishing, return_exceptions=True)
        except asyncio.CancelledError:
            for task in finishing:
                task.cancel()
            raise
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [result for result in results if isinstance(result, str)]

    async def _write(
        self, session: Session, body: bytes, give_up_at: float
    ) -> tuple[int, asyncio.Future[Pdu]]:
        """Take a slot and write the PDU (once the gate lets it through); its ticket
        and its answer. The slot is the caller's to release (:meth:`_finish` does)."""
        await self._slots.acquire()
        try:
            ticket = next(self._tickets)
            self._within(give_up_at)
            await self._gate.through(ticket)
            return ticket, self._send(session, body)
        except BaseException:
            self._slots.release()
            raise

    def _send(self, session: Session, body: bytes) -> asyncio.Future[Pdu]:
        self.in_flight += 1
        try:
            return session.request(pdus.SUBMIT_SM, body)
        except BaseException:
            self.in_flight -= 1
            raise

    def _within(self, give_up_at: float) -> None:
        """Hand the submission back when the bind's pause outlasts its wait."""
        if self._gate.paused and self._gate.resumes_at > give_up_at:
            raise error_for(ESME_RTHROTTLED)

    async def _finish(
        self,
        session: Session,
        body: bytes,
        ticket: int,
        answer: asyncio.Future[Pdu],
        pace: Pace,
        give_up_at: float,
    ) -> str:
        throttles = 0
        try:
            while True:
                try:
                    pdu = await asyncio.wait_for(answer, self._response_timeout)
                except TimeoutError:
                    raise RetryableDeliveryError(
                        "smpp_no_response",
                        "The SMSC did not answer the submit_sm in time; it will be "
                        "submitted again (the SMS may arrive twice).",
                    ) from None
                finally:
                    self.in_flight -= 1
                if pdu.status == ESME_ROK and pdu.command_id == pdus.SUBMIT_SM | pdus.RESPONSE:
                    self._pause = PAUSE_MIN_SECONDS
                    return pdus.read_message_id(pdu.body)
                if pdu.status != ESME_RTHROTTLED:
                    raise error_for(pdu.status or 0xFF)
                throttles += 1
                self.throttled += 1
                if throttles > MAX_THROTTLES:
                    raise error_for(pdu.status)
                if not self._gate.paused:
                    # One pause per burst of 0x58 answers; longer while they go on.
                    self._gate.pause(self._pause)
                    self._pause = min(self._pause * 2, PAUSE_MAX_SECONDS)
                self._within(give_up_at)
                # A resubmission is one more PDU against the agreed rate.
                await pace()
                await self._gate.through(ticket)
                answer = self._send(session, body)
        finally:
            self._slots.release()
