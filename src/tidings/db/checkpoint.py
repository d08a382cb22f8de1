"""SQLite's WAL checkpoints, off the event loop.

By default SQLite folds its write-ahead log back into the database file inside
whichever commit pushes the log past 1,000 pages. Commits run on the event loop's
thread (the inline driver, :mod:`tidings.db.inline_sqlite`), so a large bulk write's
commit also paid for copying tens of megabytes and syncing them: a stall of a few
hundred milliseconds for every other request. Instead the engine's connections do
not checkpoint (``wal_autocheckpoint=0``), and a thread with its own connection runs
a ``PASSIVE`` checkpoint every half second: it copies what no reader still needs,
never waits for a lock, and holds no lock the loop waits for. Stopped when the
engine is disposed.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("tidings.db")

INTERVAL_SECONDS = 0.5


class Checkpointer:
    def __init__(self, path: Path, *, interval: float = INTERVAL_SECONDS) -> None:
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"sqlite-checkpoint-{path.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self._interval):
                if connection is None:
                    if not self._path.exists():
                        continue
                    connection = sqlite3.connect(self._path, timeout=0, check_same_thread=False)
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as error:
                    # Busy or locked: the next turn does it.
                    log.debug("WAL checkpoint skipped: %s", error)
        finally:
            if connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
