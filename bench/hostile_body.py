"""Huge unauthenticated bodies against the real server, and what it costs everyone else.

    .venv/bin/python bench/hostile_body.py [clients] [megabytes] [rounds]

Starts ``tidings serve`` on loopback (a fresh data directory, dispatch off), then:

1. the baseline: ``GET /healthz`` alone, one request every 10 ms;
2. the attack: ``clients`` (3) clients at once each POST a ``megabytes`` (60)
   JSON body to ``/sandbox/api/v4/sms/bulk`` without a token, streaming it as fast
   as loopback takes it, ``rounds`` (10) times one after the other, while
   ``/healthz`` is asked every 10 ms as in 1.

Prints, per hostile request, its status and how long it took to be answered
(and how much of the body had been sent by then); the server's peak memory above
its idle memory (from ``/proc``: VmHWM after resetting it through
``clear_refs``, and RSS sampled every 5 ms); and ``/healthz`` latency during the
attack against the baseline, as a ratio. The goals (issue 16): an answer of 401
or 413 within 100 ms, under 100 MB of memory above idle, ``/healthz`` under
100 ms throughout. Linux only (``/proc``).
"""

from __future__ import annotations

import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadgen import free_port

PATH = "/sandbox/api/v4/sms/bulk"
PROBE_INTERVAL = 0.010
CHUNK = 65536


@dataclass
class Hostile:
    status: int = 0
    seconds: float = float("nan")
    sent: int = 0
    error: str = ""


def _status_memory(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` memory field, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _get(port: int, path: str) -> tuple[int, float]:
    """One request on a new connection: (status, seconds)."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), time.perf_counter() - started


def _start(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env["TIDINGS_DATA_DIR"] = str(data_dir)
    env["TIDINGS_LOG_LEVEL"] = "WARNING"
    process = subprocess.Popen(
        [sys.executable, "-m", "tidings", "serve", "--demo", "--port", str(port), "--no-dispatch"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _get(port, "/readyz")[0] == 200:
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not become ready")


def _probe(port: int, stop: threading.Event, seconds: float | None = None) -> list[float]:
    """``/healthz`` every PROBE_INTERVAL until ``stop`` (or for ``seconds``)."""
    latencies: list[float] = []
    until = time.monotonic() + seconds if seconds is not None else float("inf")
    while not stop.is_set() and time.monotonic() < until:
        status, took = _get(port, "/healthz")
        if status == 200:
            latencies.append(took)
        time.sleep(PROBE_INTERVAL)
    return latencies


def _valid_json(size: int) -> Iterator[bytes]:
    """``size`` bytes of one valid bulk request (as the client of issue 16 sent), in chunks."""
    recipient = b'{"to":"+393331234000"},'
    closing = b'{"to":"+393331234000"}]}'
    chunk = b'{"body":"x","recipients":['
    left = size
    while left:
        while len(chunk) < CHUNK and left - len(chunk) > len(recipient) + len(closing):
            chunk += recipient
        if left - len(chunk) <= len(recipient) + len(closing):
            chunk += closing
            chunk += b" " * (left - len(chunk))
        yield chunk
        left -= len(chunk)
        chunk = b""


def _hostile(port: int, size: int, result: Hostile) -> None:
    """POST ``size`` bytes without a token, reading the answer while sending."""
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    body = _valid_json(size)
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.setblocking(False)
            pending = head
            remaining = size
            answer = b""
            while b"\r\n" not in answer:
                readable, writable, _ = select.select(
                    [sock], [sock] if pending or remaining > 0 else [], [], 30
                )
                if readable:
                    data = sock.recv(65536)
                    if not data:
                        break
                    answer += data
                    continue
                if writable:
                    if not pending:
                        pending = next(body)
                        remaining -= len(pending)
                    written = sock.send(pending)
                    result.sent += written
                    pending = pending[written:]
            result.seconds = time.perf_counter() - started
            result.status = int(answer.split(b" ", 2)[1]) if answer else 0
    except OSError as error:
        result.seconds = time.perf_counter() - started
        result.error = type(error).__name__


def _sample_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _status_memory(pid, "VmRSS"))
        time.sleep(0.005)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    size = (int(sys.argv[2]) if len(sys.argv) > 2 else 60) * 1_048_576
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = _start(port, Path(folder) / "data")
        try:
            _probe(port, threading.Event(), seconds=1.0)  # warm up
            baseline = _probe(port, threading.Event(), seconds=3.0)
            idle = _status_memory(server.pid, "VmRSS")
            # Reset the peak so that VmHWM measures the attack, not the start-up.
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")

            stop = threading.Event()
            sampled = [idle]
            sampler = threading.Thread(target=_sample_rss, args=(server.pid, stop, sampled))
            during: list[float] = []
            prober = threading.Thread(target=lambda: during.extend(_probe(port, stop)))
            results = [Hostile() for _ in range(clients * rounds)]

            def attack(mine: list[Hostile]) -> None:
                for result in mine:
                    _hostile(port, size, result)

            hostile = [
                threading.Thread(target=attack, args=(results[n::clients],)) for n in range(clients)
            ]
            sampler.start()
            prober.start()
            time.sleep(0.2)
            for thread in hostile:
                thread.start()
            for thread in hostile:
                thread.join()
            time.sleep(0.5)  # whatever the server still does after answering
            stop.set()
            prober.join()
            sampler.join()
            peak = max(_status_memory(server.pid, "VmHWM"), sampled[0])
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(
        f"{clients} clients x {rounds} unauthenticated {size // 1_048_576} MB bodies "
        f"to POST {PATH}:"
    )
    statuses = sorted({str(result.status or result.error) for result in results})
    times = [result.seconds for result in results]
    print(
        f"  statuses {', '.join(statuses)}; answered in median {_ms(statistics.median(times))}"
        f", max {_ms(max(times))}; at most {max(r.sent for r in results) / 1_048_576:.2f} MB "
        "of a body sent before the answer"
    )
    above = (peak - idle) / 1_048_576
    print(f"server memory: idle {idle / 1_048_576:.0f} MB, peak {above:+.1f} MB above idle")
    base_median, base_max = statistics.median(baseline), max(baseline)
    attack_median = statistics.median(during) if during else float("nan")
    attack_max = max(during) if during else float("nan")
    print(
        f"/healthz alone:        median {_ms(base_median)}  max {_ms(base_max)}"
        f"  ({len(baseline)} requests)"
    )
    print(
        f"/healthz under attack: median {_ms(attack_median)}  max {_ms(attack_max)}"
        f"  ({len(during)} requests)"
    )
    print(
        f"ratio under attack / alone: median {attack_median / base_median:.2f}x, "
        f"max {attack_max / base_max:.2f}x"
    )
    answered = all(r.status in (401, 413) and r.seconds < 0.1 for r in results)
    goals = {
        "401/413 within 100 ms": answered,
        "peak under 100 MB above idle": above < 100,
        "/healthz under 100 ms throughout": attack_max < 0.1,
    }
    for goal, met in goals.items():
        print(f"  {'met ' if met else 'MISSED'}  {goal}")


if __name__ == "__main__":
    main()
