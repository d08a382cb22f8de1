"""Single sends in the scale-out mode (PostgreSQL), beside the embedded mode.

Starts ``tidings serve`` on a fresh SQLite data directory (the embedded mode),
and ``tidings serve --no-dispatch`` with one ``tidings worker`` on a fresh schema
of a PostgreSQL database (the scale-out mode), all at once, and sends sandbox SMS
to each with ``bench/loadgen.py``, the modes taking turns (``--rounds``, 5: each
row's seconds in five stretches per mode, one mode then the other, so that a
busy moment of a shared machine falls on both): ``send`` waits for the
simulated provider's verdict (in the scale-out mode the worker records it and the
API process hears of it by NOTIFY), ``send, async`` is answered once stored
(``Prefer: respond-async``). Prints requests per second, p50 and p99 latency, and
the CPU time per request of the API process and of the worker (microseconds,
from ``/proc``; PostgreSQL's own processes are not counted).

``--steps N`` then times N waiting sends one at a time in the scale-out mode, from
outside, by a connection that listens on both of its channels: from the request to
the work ``NOTIFY`` (the API process stored the message and committed), from there
to the verdict's ``NOTIFY`` (the worker claimed, submitted and recorded), and from
there to the answer (the API process read the verdict back and answered), each
followed by one send to the embedded mode. Prints the median of each step, and of
both modes' totals.

    .venv/bin/python bench/send_scaleout.py [--seconds 5] [--concurrency 1,16,64]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--only scale-out]
        [--rounds 5] [--steps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
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
from loadgen import Result, build_request, free_port, process_cpu, run, wait_ready
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
        [
            *("users", "create", "--account", account),
            *("--username", "bench", "--password", "bench-pass"),
        ],
        env,
    )


@contextlib.contextmanager
def deployment(name: str, env: dict[str, str], scale_out: bool) -> Iterator[Deployment]:
    port = free_port()
    serve = [PYTHON, "-m", "tidings", "serve", "--port", str(port)]
    api = subprocess.Popen([*serve, "--no-dispatch"] if scale_out else serve, env=env)
    worker = subprocess.Popen([PYTHON, "-m", "tidings", "worker"], env=env) if scale_out else None
    try:
        wait_ready(f"http://127.0.0.1:{port}", timeout=90)
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
    target: Deployment,
    headers: dict[str, str],
    body: bytes,
    level: int,
    seconds: float,
    warmup: float,
) -> tuple[Result, float | None]:
    """The load's result, and the worker's CPU seconds over the same measured stretch."""

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


def _merge(parts: list[tuple[Result, float | None]]) -> tuple[Result, float | None]:
    """The rounds of one row as one result (requests, latencies and CPU added up)."""
    results = [result for result, _ in parts]
    cpus = [result.server_cpu for result in results]
    workers = [cpu for _, cpu in parts]
    merged = Result(
        results[0].concurrency,
        sum(result.requests for result in results),
        sum(result.errors for result in results),
        sum(result.seconds for result in results),
        [latency for result in results for latency in result.latencies],
        None if None in cpus else sum(cpu for cpu in cpus if cpu is not None),
    )
    worker = None if None in workers else sum(cpu for cpu in workers if cpu is not None)
    return merged, worker


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[float, float]:
    """Send one request on a kept-alive connection: when it was sent, and answered."""
    sent = time.perf_counter()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
    await reader.readexactly(length)
    return sent, time.perf_counter()


async def _steps(
    targets: list[Deployment],
    dsn: str,
    schema: str,
    body: bytes,
    count: int,
) -> dict[str, float]:
    """Median milliseconds of each step of a waiting send, one send at a time, each
    scale-out send followed by one to the embedded mode (its total only)."""
    heard: dict[str, asyncio.Queue[float]] = {"work": asyncio.Queue(), "verdicts": asyncio.Queue()}
    listener = await asyncpg.connect(dsn, timeout=10)
    for topic, queue in heard.items():
        await listener.add_listener(
            f"tidings_{topic}_{schema}",
            lambda *_args, queue=queue: queue.put_nowait(time.perf_counter()),
        )
    clients = []
    for target in targets:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {target.token}"}
        path = "/sandbox/api/v4/sms/send"
        request = build_request("127.0.0.1", target.port, path, body, headers)
        clients.append((target, *await asyncio.open_connection("127.0.0.1", target.port), request))
    steps: dict[str, list[float]] = {
        "stored": [],
        "verdict": [],
        "answered": [],
        "total": [],
        "embedded total": [],
    }

    def first_after(queue: asyncio.Queue[float], moment: float) -> float | None:
        found = None
        while not queue.empty():
            at = queue.get_nowait()
            if at >= moment and found is None:
                found = at
        return found

    try:
        for index in range(count + 10):
            for target, reader, writer, request in clients:
                await asyncio.sleep(0.03)  # let the last send's receipt settle
                for queue in heard.values():
                    while not queue.empty():
                        queue.get_nowait()
                sent, done = await _one(reader, writer, request)
                if index < 10:
                    continue  # warm-up
                if target.worker is None:
                    steps["embedded total"].append(done - sent)
                    continue
                await asyncio.sleep(0.005)  # notifications read from the socket by now
                stored = first_after(heard["work"], sent)
                verdict = first_after(heard["verdicts"], stored or sent)
                if stored is None or verdict is None:
                    continue  # a step not heard
                steps["stored"].append(stored - sent)
                steps["verdict"].append(verdict - stored)
                steps["answered"].append(done - verdict)
                steps["total"].append(done - sent)
    finally:
        for _target, _reader, writer, _request in clients:
            writer.close()
        await listener.close()
    return {name: statistics.median(values) * 1000 for name, values in steps.items() if values}


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
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="each row's seconds split into this many rounds, the modes taking turns",
    )
    parser.add_argument(
        "--steps", type=int, default=0, help="then time this many scale-out sends step by step"
    )
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
    rounds = max(1, options.rounds)
    print(
        f"{'mode':>9} {'clients':>7} {'endpoint':>12} {'req/s':>7} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'api us':>7} {'wkr us':>7} {'errors':>6}"
    )
    try:
        with contextlib.ExitStack() as stack:
            # Every mode is up at once and they take turns, so a busy moment of a
            # shared machine falls on both rather than on one.
            targets = []
            for name, env, scale_out in modes:
                _prepare(env)
                targets.append(stack.enter_context(deployment(name, env, scale_out)))
            for level in levels:
                for row in ("send", "send, async"):
                    parts: dict[str, list[tuple[Result, float | None]]] = {
                        target.name: [] for target in targets
                    }
                    for turn in range(rounds):
                        for target in targets:
                            headers = {"Content-Type": "application/json"}
                            headers["Authorization"] = f"Bearer {target.token}"
                            if row != "send":
                                headers["Prefer"] = "respond-async"
                            part = asyncio.run(
                                _measure(
                                    target,
                                    headers,
                                    body,
                                    level,
                                    options.seconds / rounds,
                                    warmup=1.0 if turn == 0 else 0.3,
                                )
                            )
                            parts[target.name].append(part)
                            # Let the receipts of the last stretch settle before the next.
                            time.sleep(0.3)
                    for target in targets:
                        result, worker_cpu = _merge(parts[target.name])
                        worker_us = (
                            f"{worker_cpu / result.requests * 1e6:>7.0f}"
                            if worker_cpu is not None and result.requests
                            else f"{'-':>7}"
                        )
                        print(
                            f"{target.name:>9} {level:>7} {row:>12} {result.throughput:>7.0f} "
                            f"{result.p50_ms:>8.2f} {result.p99_ms:>8.2f} "
                            f"{result.cpu_us:>7.0f} {worker_us} {result.errors:>6}",
                            flush=True,
                        )
            if options.steps and any(target.worker is not None for target in targets):
                medians = asyncio.run(
                    _steps(targets[::-1], options.postgres, schema, body, options.steps)
                )
                print(
                    f"steps (median ms of {options.steps} sends): "
                    + ", ".join(f"{name} {value:.2f}" for name, value in medians.items()),
                    flush=True,
                )
    finally:
        if any(scale_out for _, _, scale_out in modes):
            asyncio.run(_execute(options.postgres, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
