"""Single-send throughput and latency, against a bare FastAPI endpoint.

Starts two servers on loopback (a bare FastAPI app, and ``tidings serve`` on a
fresh SQLite data directory in the embedded mode), then sends sandbox SMS to
``POST /sandbox/api/v4/sms/send`` (each answer waits for the simulated
provider's verdict, as a real client sees it) and the same JSON to the bare
endpoint, at 1, 16 and 64 concurrent clients. Prints requests per second, p50
and p99 latency, the server's CPU time per request (microseconds, from ``/proc``),
and Tidings' throughput as a ratio of the bare endpoint's.

    .venv/bin/python bench/send.py [--seconds 5] [--concurrency 1,16,64]
        [--only send,healthz] [--py-spy DIR] [--workers N] [--delivery-process]

``--py-spy DIR`` samples the server with py-spy during each of Tidings' rows and
writes the samples, collapsed (``DIR/<row>-<clients>.txt``, one stack a line with
its count), for reading or a flame graph.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import Result, free_port, fresh_instance, run, tidings, wait_ready, wait_up

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def sample(folder: Path, row: str, level: int, pid: int, seconds: float) -> subprocess.Popen[bytes]:
    """Start py-spy on the server for ``seconds``, writing collapsed stacks."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{row.replace(', ', '-')}-{level}.txt"
    spy = Path(PYTHON).parent / "py-spy"
    command = [str(spy), "record", "--pid", str(pid), "--subprocesses", "--format", "raw"]
    command += ["--rate", "200"]
    command += ["--duration", str(int(seconds)), "--output", str(out), "--nonblocking"]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--only", default="", help="Comma-separated rows to run besides bare (send,async,healthz)."
    )
    parser.add_argument("--py-spy", dest="py_spy", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=1, help="tidings serve --workers")
    parser.add_argument(
        "--delivery-process",
        action="store_true",
        help="tidings serve --delivery-process (the CPU column then counts both processes)",
    )
    options = parser.parse_args()
    levels = [int(x) for x in options.concurrency.split(",")]
    only = {name.strip() for name in options.only.split(",") if name.strip()}

    _, env, account = fresh_instance("tidings-bench-")
    tidings(
        [
            "users",
            "create",
            "--account",
            account,
            "--username",
            "bench",
            "--password",
            "bench-pass",
        ],
        env,
    )

    bare_port, tidings_port = free_port(), free_port()
    uvicorn_common = ["--log-level", "warning", "--no-access-log", "--no-server-header"]
    bare = subprocess.Popen(
        [PYTHON, "-m", "uvicorn", "bare_app:app", "--port", str(bare_port), *uvicorn_common],
        cwd=Path(__file__).resolve().parent,
        env=env,
    )
    serve = ["serve", "--port", str(tidings_port), "--workers", str(options.workers)]
    if options.delivery_process:
        serve.append("--delivery-process")
    server = subprocess.Popen(
        [PYTHON, "-m", "tidings", *serve],
        env=env,
    )
    try:
        wait_up(f"http://127.0.0.1:{bare_port}/docs")
        wait_ready(f"http://127.0.0.1:{tidings_port}")
        token = httpx.post(
            f"http://127.0.0.1:{tidings_port}/sandbox/api/v4/auth/token",
            json={"username": "bench", "password": "bench-pass", "expiresIn": 86400},
        ).json()["token"]
        body = json.dumps({"to": "+393331234567", "body": "Your code is 123456"}).encode()
        json_header = {"Content-Type": "application/json"}
        auth = {**json_header, "Authorization": f"Bearer {token}"}

        print(
            f"{'clients':>7} {'endpoint':>12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'cpu us':>7} {'errors':>6} {'ratio':>6}"
        )
        # (name, port, path, body, headers, method); the first is the baseline.
        targets = [
            ("bare", bare_port, "/send", body, json_header, "POST"),
            ("send", tidings_port, "/sandbox/api/v4/sms/send", body, auth, "POST"),
            (
                "send, async",
                tidings_port,
                "/sandbox/api/v4/sms/send",
                body,
                {**auth, "Prefer": "respond-async"},
                "POST",
            ),
            ("healthz", tidings_port, "/healthz", b"", {}, "GET"),
        ]
        if only:
            targets = [
                target
                for target in targets
                if target[0] == "bare" or target[0].replace("send, ", "") in only
            ]
        pids = {bare_port: bare.pid, tidings_port: server.pid}
        for level in levels:
            baseline: Result | None = None
            for name, port, path, payload, headers, method in targets:
                spy = None
                if options.py_spy is not None and port == tidings_port:
                    spy = sample(options.py_spy, name, level, server.pid, options.seconds + 1)
                result: Result = asyncio.run(
                    run(
                        "127.0.0.1",
                        port,
                        path,
                        payload,
                        headers,
                        concurrency=level,
                        seconds=options.seconds,
                        method=method,
                        server_pid=pids[port],
                    )
                )
                ratio = (
                    "" if baseline is None else f" {result.throughput / baseline.throughput:>6.2f}"
                )
                baseline = baseline or result
                if spy is not None:
                    spy.wait()
                print(
                    f"{level:>7} {name:>12} {result.throughput:>9.0f} {result.p50_ms:>8.2f} "
                    f"{result.p99_ms:>8.2f} {result.cpu_us:>7.0f} {result.errors:>6}{ratio}"
                )
    finally:
        for process in (bare, server):
            process.terminate()
            process.wait(timeout=15)


if __name__ == "__main__":
    main()
