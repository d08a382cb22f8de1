"""``tidings serve --delivery-process``: the embedded mode's delivery side in a
process of its own.

In one process the API and the delivery side (claims, submissions, verdicts,
receipts, webhooks) share one core. With this option ``serve`` starts
``tidings worker`` beside the API on the same SQLite file, and the API processes
only store and answer: the two sides run on two cores. They take turns at
SQLite's one writer through the writer lock (:mod:`tidings.db.writer_lock`), and
tell each other what was committed through the local bus
(:mod:`tidings.db.local_bus`): new work one way, verdicts for waiting requests
the other.

:class:`DeliveryProcess` starts the worker, starts it again (after a pause that
doubles up to 30 s) if it ever exits while serving, and stops it when ``serve``
stops. The worker is told the serving process's id, and stops by itself should
that process die without stopping it (``SIGKILL``): nothing is left running.
Messages are never at risk in either process's crash: each is committed before
it is answered, and a claim whose worker died is taken again when its lease
runs out.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

log = logging.getLogger("tidings.serve")

RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
# How long a stopping worker is given to finish what it submitted, beyond the
# dispatcher's own shutdown grace.
STOP_EXTRA_SECONDS = 15.0
# The environment variable that names the serving process to a worker it started.
PARENT_ENV = "TIDINGS_SERVE_PID"


class DeliveryProcess:
    def __init__(self, environment: dict[str, str], stop_grace_seconds: float) -> None:
        self._environment = {
            **environment,
            "TIDINGS_DISPATCH": "true",
            "TIDINGS_DELIVERY_PROCESS": "true",
            PARENT_ENV: str(os.getpid()),
        }
        self._stop_grace = stop_grace_seconds + STOP_EXTRA_SECONDS
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name="delivery-process", daemon=True)
        self.starts = 0

    def start(self) -> None:
        self._spawn()
        self._watcher.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tidings", "worker"], env=self._environment
            )
            self.starts += 1

    def _watch(self) -> None:
        delay = RESTART_FIRST_SECONDS
        while not self._stopping.is_set():
            process = self._process
            assert process is not None
            code = process.wait()
            if self._stopping.is_set():
                return
            log.error("the delivery process exited (%s); starting it again in %.0f s", code, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RESTART_MAX_SECONDS)
            self._spawn()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Ask the worker to stop (SIGTERM: no new claims, in-flight work finishes),
        and wait for it; killed if it outstays its grace."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=self._stop_grace)
        except subprocess.TimeoutExpired:
            log.error("the delivery process did not stop in %.0f s: killed", self._stop_grace)
            process.kill()
            process.wait()
