"""Sends before deliveries, while the writer is congested.

A process that serves the API and dispatches (the embedded mode) writes both through
one group committer: a send's message, and each delivery's verdict and receipts.
When clients send faster than the writer can store and deliver both, a client's
send waits behind the writes of deliveries, so the accept rate is held to the
delivery rate. A gateway that queues (Jasmin into RabbitMQ, a commercial API into
its own queue) answers first and delivers as its capacity allows.
:class:`SendPrecedence` gives Tidings that order while the writer is congested,
with no promise weakened: every send is committed before its answer, as always.

It keeps, over intervals of ``sends_first_pause_seconds``, how long sends' writes
waited to be committed. Sends *take precedence* from an interval in which at least
``MIN_SENDS_PER_SECOND`` sends waited ``ENTER_AT_MS`` on average or more, until one
in which they waited less than ``LEAVE_AT_MS`` (or too few came). Meanwhile:

- an asynchronous send (``Prefer: respond-async``) is stored due, for a dispatcher to
  claim, instead of being handed to this process's dispatcher at once; a waiting send
  is still handed over, as its client waits for the verdict;
- the dispatcher claims at most ``sends_first_claim_batch`` messages every
  ``sends_first_pause_seconds``: a floor (320 a second with the defaults, per
  process) under which delivery never falls, so the queue always drains, and fully
  once the sends slow down.

Only sends count, so a process busy with deliveries alone (a bulk campaign, a
``tidings worker``) never yields. ``TIDINGS_DELIVERY__SENDS_FIRST=false`` turns it
off: deliveries then keep pace with sends, and sends wait for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Sends' writes waited this long on average (ms) to be committed: the writer is
# congested; until they wait less than LEAVE_AT_MS, it still is ...
ENTER_AT_MS = 8.0
LEAVE_AT_MS = 3.0
# ... provided sends come at least this often.
MIN_SENDS_PER_SECOND = 100.0


class SendPrecedence:
    def __init__(
        self,
        *,
        enabled: bool = True,
        interval_seconds: float = 0.1,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._enabled = enabled
        self._interval_ns = int(interval_seconds * 1e9)
        self._now_ns = monotonic_ns
        self._since = monotonic_ns()
        self._stores = 0
        self._waited_ns = 0
        self.yielding = False

    def send_stored(self, waited_ns: int) -> None:
        """A send's write was committed ``waited_ns`` after it was handed to the writer."""
        self._stores += 1
        self._waited_ns += waited_ns
        self.sample()

    def sample(self) -> bool:
        """Whether sends take precedence now, decided anew once an interval has passed."""
        if not self._enabled:
            return False
        now = self._now_ns()
        elapsed = now - self._since
        if elapsed < self._interval_ns:
            return self.yielding
        stores = self._stores
        waited_ms = self._waited_ns / stores / 1e6 if stores else 0.0
        enough = stores >= MIN_SENDS_PER_SECOND * elapsed / 1e9
        threshold = LEAVE_AT_MS if self.yielding else ENTER_AT_MS
        self.yielding = enough and waited_ms >= threshold
        self._since, self._stores, self._waited_ns = now, 0, 0
        return self.yielding
