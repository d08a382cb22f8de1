"""``tidings worker``: the delivery side alone, for the scale-out mode.

Runs the dispatcher (and the simulated providers' network) against the shared
database until SIGTERM or SIGINT, then stops cleanly: no new claims, in-flight
submissions finish or hand their leases back.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from tidings.app import build_context
from tidings.core.clock import SystemClock
from tidings.settings import Settings

log = logging.getLogger("tidings.worker")


async def run_worker(settings: Settings) -> None:
    ctx = build_context(settings, SystemClock())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # No request waits here: the verdicts' notifications are for the API processes.
    await ctx.runtime.start(dispatch=True, serving=False)
    log.info("worker %s started", ctx.runtime.dispatcher.owner)
    try:
        await stop.wait()
    finally:
        log.info("worker stopping")
        await ctx.runtime.stop()
        await ctx.engine.dispose()
