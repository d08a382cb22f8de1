"""A small HTTP/1.1 load generator on raw asyncio streams, and the helpers every
bench that starts servers shares (a free loopback port, waiting for a server, a
fresh Tidings data directory with an account, the ``tidings`` command).

httpx costs more CPU per request than the endpoints being measured, and on a
two-core machine the client shares the CPU with the server; this keeps the
client's share small, so ratios between endpoints stay meaningful. Keep-alive
connections, one request in flight per connection. Given the server's process id,
it also reads the server's CPU time (user + system, from ``/proc``) over the measured
stretch: CPU per request is much less sensitive to other work on a shared machine
than the rate is.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PYTHON = sys.executable


def tidings(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    """Run ``tidings <args>`` in ``env``; its standard output."""
    done = subprocess.run(
        [PYTHON, "-m", "tidings", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        input=stdin,
    )
    return done.stdout.strip()


def fresh_instance(prefix: str) -> tuple[Path, dict[str, str], str]:
    """A new data directory with a key ring, a migrated database and an account named
    Bench: the directory, the environment to run ``tidings`` in (no rate limit, warnings
    only, none of the caller's own ``TIDINGS_`` settings) and the account's id."""
    data = Path(tempfile.mkdtemp(prefix=prefix))
    # Removed when the bench ends (each run's database grows to tens of megabytes).
    atexit.register(shutil.rmtree, data, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(
        TIDINGS_DATA_DIR=str(data),
        TIDINGS_RATE_LIMIT__PER_MINUTE="100000000",
        TIDINGS_LOG_LEVEL="WARNING",
    )
    env["TIDINGS_SECRETS_KEYS"] = tidings(["secrets", "new-key", "--id", "bench"], env)
    tidings(["migrate"], env)
    account = tidings(["accounts", "create", "Bench"], env)
    return data, env, account


def login_token(port: int, username: str, password: str, *, sandbox: bool = False) -> str:
    """A bearer token for ``username`` from the Tidings on ``port`` (a day long)."""
    prefix = "/sandbox" if sandbox else ""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{prefix}/api/v4/auth/token",
        data=json.dumps({"username": username, "password": password, "expiresIn": 86400}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        return str(json.loads(answer.read())["token"])


def free_port() -> int:
    """A port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, timeout: float = 30) -> None:
    """Return once ``url`` answers (any status), or raise TimeoutError. For a Tidings
    server, wait on ``/readyz`` with :func:`wait_ready` instead: with ``--workers N``
    the first worker answers before the others listen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


def wait_ready(base_url: str, timeout: float = 60) -> None:
    """Return once ``base_url``'s ``/readyz`` answers 200 (with ``serve --workers N``:
    once every worker listens, so that the clients' connections spread over all of
    them), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base_url}/readyz", timeout=1).close()
            return
        except OSError:  # refused, or an HTTPError: 503 while starting
            time.sleep(0.1)
    raise TimeoutError(f"{base_url}/readyz")


@dataclass
class Result:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    # The server's CPU seconds over the measured stretch, when its pid was given.
    server_cpu: float | None = None

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def cpu_us(self) -> float:
        """The server's CPU time per answered request, in microseconds."""
        if self.server_cpu is None or not self.requests:
            return float("nan")
        return self.server_cpu / self.requests * 1e6

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def p99_ms(self) -> float:
        return self.percentile(0.99) * 1000


def build_request(
    host: str, port: int, path: str, body: bytes, headers: dict[str, str], method: str = "POST"
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process ``pid`` and its live children (the
    workers of ``serve --workers N``) have used, from ``/proc``."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:].strip())
    if length:
        await reader.readexactly(length)
    return status


async def run(
    host: str,
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
    method: str = "POST",
    server_pid: int | None = None,
) -> Result:
    request = build_request(host, port, path, body, headers, method)
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                sent = time.perf_counter()
                if sent >= stop_at:
                    return
                writer.write(request)
                status = await _read_response(reader)
                done = time.perf_counter()
                if sent >= measure_from:
                    if 200 <= status < 300:
                        counts["ok"] += 1
                        latencies.append(done - sent)
                    else:
                        counts["errors"] += 1
        finally:
            writer.close()

    cpu: list[float] = []

    async def cpu_meter() -> None:
        if server_pid is None:
            return
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu.append(process_cpu(server_pid))
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
        cpu.append(process_cpu(server_pid))

    await asyncio.gather(cpu_meter(), *(connection() for _ in range(concurrency)))
    server_cpu = cpu[1] - cpu[0] if len(cpu) == 2 else None
    return Result(concurrency, counts["ok"], counts["errors"], seconds, latencies, server_cpu)
