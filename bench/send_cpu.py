"""CPU time per single send, in one process, without the network.

``bench/send.py`` measures what a client sees, through uvicorn and loopback; on a
machine shared with other work its rates move by a factor of two from run to run,
and the server's CPU per request moves with them (batches get smaller as the rate
falls). This drives the application's ASGI callable directly, in the process that
runs it with its whole delivery side (group committer, dispatcher, the simulated
provider, the inbox), from ``--concurrency`` tasks, and reports the process's CPU
time per request over several rounds: the smallest is the least disturbed by other
work. A round's CPU runs until the process is idle again, so it holds the whole of
each message's delivery (the receipt, or all of it for ``async``). uvicorn's own
share is not in it (see ``bench/send.py``'s ``healthz`` row).

    .venv/bin/python bench/send_cpu.py [--requests 3000] [--rounds 5]
        [--concurrency 64] [--rows send,async,prod,prodasync,healthz] [--no-dispatch]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import fresh_instance, tidings


def prepare_data_dir() -> None:
    """A fresh data directory with a migrated database and a user, in os.environ."""
    _, env, account = fresh_instance("tidings-bench-cpu-")
    user = ["users", "create", "--account", account, "--username", "bench"]
    tidings([*user, "--password", "bench-pass"], env)
    # The ``prod`` row: production, each send paid from credits, through a configured
    # provider (the simulator kind, which sends nothing).
    tidings(["credits", "add", account, "100000000"], env)
    tidings(["providers", "add", account, "sms", "simulator", "--config", "{}"], env)
    os.environ.clear()
    os.environ.update(env)


class Call:
    """One request to an ASGI app: its scope, body, and the answer's status."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        raw += [(b"host", b"127.0.0.1:8000"), (b"content-length", str(len(body)).encode())]
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        self.headers = headers
        self.body = body

    async def __call__(self, app: Any) -> tuple[int, bytes]:
        sent = False
        finished = asyncio.Event()
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    finished.set()

        await app(dict(self.scope, state={}), receive, send)
        return status, b"".join(chunks)


async def drive(app: Any, call: Call, requests: int, concurrency: int) -> tuple[float, float, int]:
    """Send ``requests`` calls from ``concurrency`` tasks: CPU seconds, wall seconds,
    and the number answered with a 2xx."""
    left = requests
    good = 0

    async def worker() -> None:
        nonlocal left, good
        while left > 0:
            left -= 1
            status, _ = await call(app)
            good += 200 <= status < 300

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - wall
    await settle()
    return time.process_time() - cpu, wall, good


async def settle(quiet_cpu: float = 0.002, step: float = 0.1) -> None:
    """Wait until the delivery side has finished what the requests started (the
    receipts, or the whole delivery of sends that did not wait): the process uses
    almost no CPU for a moment. That CPU counts in the requests'."""
    while True:
        before = time.process_time()
        await asyncio.sleep(step)
        if time.process_time() - before < quiet_cpu:
            return


async def main_async(options: argparse.Namespace) -> None:
    import tidings.app
    from tidings.app import create_app
    from tidings.settings import Settings

    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        # As the serving process does once started (app_from_environment).
        gc.collect()
        gc.freeze()
        thresholds = getattr(tidings.app, "GC_THRESHOLDS", None)
        if thresholds is not None:  # (older trees, for comparisons)
            gc.set_threshold(*thresholds)
        login = Call(
            "POST",
            "/sandbox/api/v4/auth/token",
            {"Content-Type": "application/json"},
            json.dumps({"username": "bench", "password": "bench-pass"}).encode(),
        )
        status, answer = await login(app)
        assert status == 200, answer
        token = json.loads(answer)["token"]
        status, answer = await Call("POST", "/api/v4/auth/token", login.headers, login.body)(app)
        assert status == 200, answer
        production = json.loads(answer)["token"]
        body = json.dumps({"to": "+393331234567", "body": "Your code is 123456"}).encode()
        auth = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        paid = {"Content-Type": "application/json", "Authorization": f"Bearer {production}"}
        rows = {
            "send": Call("POST", "/sandbox/api/v4/sms/send", auth, body),
            "async": Call(
                "POST", "/sandbox/api/v4/sms/send", {**auth, "Prefer": "respond-async"}, body
            ),
            "prod": Call("POST", "/api/v4/sms/send", paid, body),
            "prodasync": Call(
                "POST", "/api/v4/sms/send", {**paid, "Prefer": "respond-async"}, body
            ),
            "healthz": Call("GET", "/healthz", {}, b""),
        }
        print(f"{'row':>8} {'cpu us/req (min)':>17} {'median':>7} {'req/s (best)':>13} {'ok':>6}")
        for name in options.rows.split(","):
            call = rows[name]
            await drive(app, call, options.requests // 3, options.concurrency)  # warm up
            cpus: list[float] = []
            rates: list[float] = []
            good = 0
            for _ in range(options.rounds):
                cpu, wall, good = await drive(app, call, options.requests, options.concurrency)
                cpus.append(cpu / options.requests * 1e6)
                rates.append(options.requests / wall)
            print(
                f"{name:>8} {min(cpus):>17.0f} {statistics.median(cpus):>7.0f} "
                f"{max(rates):>13.0f} {good:>6}"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rows", default="send,async,prod,healthz")
    parser.add_argument(
        "--no-dispatch",
        action="store_true",
        help="accept only (as `serve --no-dispatch`): the sends' own cost, no delivery",
    )
    options = parser.parse_args()
    prepare_data_dir()
    if options.no_dispatch:
        os.environ["TIDINGS_DISPATCH"] = "false"
    import uvloop

    uvloop.run(main_async(options))


if __name__ == "__main__":
    main()
