"""``tidings worker``: the delivery side alone.

Runs the dispatcher (and the simulated providers' network) against the shared
database until SIGTERM or SIGINT, then stops cleanly: no new claims, in-flight
submissions finish or hand their leases back. The scale-out mode runs it on
PostgreSQL; ``tidings serve --delivery-process`` starts one on the embedded mode's
SQLite file (:mod:`tidings.delivery_process`), naming itself in
``TIDINGS_SERVE_PID``: should that process die without stopping the worker, the
worker stops by itself within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from tidings.app import build_context
from tidings.core.clock import SystemClock
from tidings.delivery_process import PARENT_ENV
from tidings.settings import Settings

log = logging.getLogger("tidings.worker")

PARENT_CHECK_SECONDS = 1.0


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once ``parent`` is no longer this process's parent (it died)."""
    while os.getppid() == parent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PARENT_CHECK_SECONDS)
        if stop.is_set():
            return
    log.warning("the serving process %d is gone: stopping", parent)
    stop.set()


async def run_worker(settings: Settings) -> None:
    ctx = build_context(settings, SystemClock())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # No request waits here: the verdicts' notifications are for the API processes.
    await ctx.runtime.start(dispatch=True, serving=False)
    log.info("worker %s started", ctx.runtime.dispatcher.owner)
    parent = os.environ.get(PARENT_ENV)
    watching = (
        asyncio.create_task(_watch_parent(int(parent), stop), name="parent-watch")
        if parent and parent.isdigit()
        else None
    )
    try:
        await stop.wait()
    finally:
        if watching is not None:
            watching.cancel()
        log.info("worker stopping")
        await ctx.runtime.stop()
        await ctx.engine.dispose()
