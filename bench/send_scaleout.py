"""Single sends in the scale-out mode (PostgreSQL), beside the embedded mode.

Starts, one after the other: ``tidings serve`` on a fresh SQLite data directory
(the embedded mode), then ``tidings serve --no-dispatch`` and one ``tidings
worker`` on a fresh schema of a PostgreSQL database (the scale-out mode), and
sends sandbox SMS to each with ``bench/loadgen.py``: ``send`` waits for the
simulated provider's verdict (in the scale-out mode the worker records it and the
API process hears of it by NOTIFY), ``send, async`` is answered once stored
(``Prefer: respond-async``). Prints requests per second, p50 and p99 latency, and
the CPU time per request of the API process and of the worker (microseconds,
from ``/proc``; PostgreSQL's own processes are not counted).

    .venv/bin/python bench/send_scaleout.py [--seconds 5] [--concurrency 1,16,64]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--only scale-out]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import Result, free_port, process_cpu, run, wait_up
from send import tidings

PYTHON = sys.executable


@dataclass
class Deployment:
    name: str
    port: int
    token: str
    api: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes] | None


async def _execute(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _prepare(env: dict[str, str]) -> None:
    env["TIDINGS_SECRETS_KEYS"] = tidings(["secrets", "new-key", "--id", "bench"], env)
    tidings(["migrate"], env)
    account = tidings(["accounts", "create", "Bench"], env)
    tidings(
        ["users", "create", "--account", account, "--username", "bench"]
        + ["--password", "bench-pass"],
        env,
    )


@contextlib.contextmanager
def deployment(name: str, env: dict[str, str], scale_out: bool) -> Iterator[Deployment]:
    port = free_port()
    serve = [PYTHON, "-m", "tidings", "serve", "--port", str(port)]
    api = subprocess.Popen([*serve, "--no-dispatch"] if scale_out else serve, env=env)
    worker = subprocess.Popen([PYTHON, "-m", "tidings", "worker"], env=env) if scale_out else None
    try:
        wait_up(f"http://127.0.0.1:{port}/healthz", timeout=90)
        token = httpx.post(
            f"http://127.0.0.1:{port}/sandbox/api/v4/auth/token",
            json={"username": "bench", "password": "bench-pass", "expiresIn": 86400},
        ).json()["token"]
        yield Deployment(name, port, token, api, worker)
    finally:
        for process in (api, worker):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


async def _measure(
    target: Deployment, headers: dict[str, str], body: bytes, level: int, seconds: float
) -> tuple[Result, float | None]:
    """The load's result, and the worker's CPU seconds over the same measured stretch."""
    warmup = 1.0

    async def worker_cpu() -> float | None:
        if target.worker is None:
            return None
        await asyncio.sleep(warmup)
        before = process_cpu(target.worker.pid)
        await asyncio.sleep(seconds)
        return process_cpu(target.worker.pid) - before

    result, cpu = await asyncio.gather(
        run(
            "127.0.0.1",
            target.port,
            "/sandbox/api/v4/sms/send",
            body,
            headers,
            concurrency=level,
            seconds=seconds,
            warmup=warmup,
            server_pid=target.api.pid,
        ),
        worker_cpu(),
    )
    return result, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TIDINGS_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1/test"),
        help="A PostgreSQL database; the run makes a schema there and drops it after.",
    )
    parser.add_argument("--only", default="", help="embedded or scale-out (default: both)")
    options = parser.parse_args()
    levels = [int(x) for x in options.concurrency.split(",")]

    base = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    base.update(TIDINGS_RATE_LIMIT__PER_MINUTE="100000000", TIDINGS_LOG_LEVEL="WARNING")
    modes: list[tuple[str, dict[str, str], bool]] = []
    if options.only in ("", "embedded"):
        data = Path(tempfile.mkdtemp(prefix="tidings-bench-"))
        modes.append(("embedded", {**base, "TIDINGS_DATA_DIR": str(data)}, False))
    schema = f"bench_{secrets.token_hex(4)}"
    if options.only in ("", "scale-out"):
        data = Path(tempfile.mkdtemp(prefix="tidings-bench-"))
        url = options.postgres.replace("postgresql://", "postgresql+asyncpg://", 1)
        env = {**base, "TIDINGS_DATA_DIR": str(data), "TIDINGS_DATABASE_URL": url}
        env["TIDINGS_DATABASE_SCHEMA"] = schema
        asyncio.run(_execute(options.postgres, f'CREATE SCHEMA "{schema}"'))
        modes.append(("scale-out", env, True))

    body = json.dumps({"to": "+393331234567", "body": "Your code is 123456"}).encode()
    print(
        f"{'mode':>9} {'clients':>7} {'endpoint':>12} {'req/s':>7} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'api us':>7} {'wkr us':>7} {'errors':>6}"
    )
    try:
        for name, env, scale_out in modes:
            _prepare(env)
            with deployment(name, env, scale_out) as target:
                auth = {"Content-Type": "application/json"}
                auth["Authorization"] = f"Bearer {target.token}"
                rows = [("send", auth), ("send, async", {**auth, "Prefer": "respond-async"})]
                for level in levels:
                    for row, headers in rows:
                        result, worker_cpu = asyncio.run(
                            _measure(target, headers, body, level, options.seconds)
                        )
                        worker_us = (
                            f"{worker_cpu / result.requests * 1e6:>7.0f}"
                            if worker_cpu is not None and result.requests
                            else f"{'-':>7}"
                        )
                        print(
                            f"{name:>9} {level:>7} {row:>12} {result.throughput:>7.0f} "
                            f"{result.p50_ms:>8.2f} {result.p99_ms:>8.2f} "
                            f"{result.cpu_us:>7.0f} {worker_us} {result.errors:>6}",
                            flush=True,
                        )
                        # Let the receipts of the last row settle before the next.
                        time.sleep(1)
    finally:
        if any(scale_out for _, _, scale_out in modes):
            asyncio.run(_execute(options.postgres, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
