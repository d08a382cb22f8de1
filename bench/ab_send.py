"""Two trees side by side: the same sends to a server from each, in alternating rounds.

On a shared machine a rate moves by a fifth between identical runs, and the
machine's speed by half from one day to the next (docs/performance.md), so a change
measured against a run from earlier can read as noise either way. This starts
``tidings serve`` from this tree and from another commit (checked out in a temporary
git worktree, removed at the end) at once, each on a fresh data directory, and
drives them in turns: each round sends to one and then to the other, the order
alternating, so both meet the same machine within seconds. It prints, for each
tree, the median and best of its rounds' rates, and the median of the server's CPU
per request (from ``/proc``, its workers included).

    .venv/bin/python bench/ab_send.py --base REV [--row async] [--rounds 8]
        [--seconds 2] [--concurrency 64] [--workers 2] [--no-dispatch]

Rows: ``send`` and ``async`` are sandbox SMS (waiting for the verdict, or with
``Prefer: respond-async``); ``prod`` and ``prodasync`` the same in production, paid
from credits and sent through a ``simulator`` provider. ``--no-dispatch`` serves
without delivering (the cost of accepting alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from loadgen import (  # noqa: E402
    Result,
    free_port,
    fresh_instance,
    login_token,
    run,
    tidings,
    wait_ready,
)

PYTHON = sys.executable
BODY = json.dumps({"to": "+393331234567", "body": "Your code is 123456"}).encode()
ROWS = {
    # name: (production, respond-async)
    "send": (False, False),
    "async": (False, True),
    "prod": (True, False),
    "prodasync": (True, True),
}


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    token: str
    rounds: list[Result] = field(default_factory=list)


def start(name: str, source: Path, options: argparse.Namespace) -> Server:
    """``tidings serve`` with ``source`` first on the import path, on a fresh data
    directory (migrated by that tree's own command line)."""
    os.environ["PYTHONPATH"] = str(source)
    _, env, account = fresh_instance(f"tidings-bench-ab-{name}-")
    user = ["users", "create", "--account", account, "--username", "bench"]
    tidings([*user, "--password", "pw-bench-ab"], env)
    tidings(["credits", "add", account, "100000000"], env)
    tidings(["providers", "add", account, "sms", "simulator", "--config", "{}"], env)
    if options.no_dispatch:
        env["TIDINGS_DISPATCH"] = "false"
    port = free_port()
    serve = [PYTHON, "-m", "tidings", "serve", "--port", str(port)]
    serve += ["--workers", str(options.workers)]
    process = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}")
    production, _ = ROWS[options.row]
    token = login_token(port, "bench", "pw-bench-ab", sandbox=not production)
    return Server(name, process, port, token)


async def one_round(server: Server, options: argparse.Namespace) -> Result:
    production, respond_async = ROWS[options.row]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"}
    if respond_async:
        headers["Prefer"] = "respond-async"
    path = "/api/v4/sms/send" if production else "/sandbox/api/v4/sms/send"
    return await run(
        "127.0.0.1",
        server.port,
        path,
        BODY,
        headers,
        concurrency=options.concurrency,
        seconds=options.seconds,
        warmup=0.3,
        server_pid=server.process.pid,
    )


async def alternate(servers: list[Server], options: argparse.Namespace) -> None:
    for number in range(options.rounds):
        for server in servers if number % 2 == 0 else servers[::-1]:
            server.rounds.append(await one_round(server, options))
            # The deliveries of what was just accepted finish before the other's turn.
            await asyncio.sleep(options.settle)


def report(servers: list[Server]) -> None:
    print(f"{'tree':>24} {'req/s (median)':>15} {'best':>7} {'cpu us/req':>11} {'errors':>7}")
    for server in servers:
        rates = [result.throughput for result in server.rounds]
        cpus = [result.cpu_us for result in server.rounds]
        errors = sum(result.errors for result in server.rounds)
        print(
            f"{server.name:>24} {statistics.median(rates):>15.0f} {max(rates):>7.0f} "
            f"{statistics.median(cpus):>11.0f} {errors:>7}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare this tree with")
    parser.add_argument("--row", choices=sorted(ROWS), default="async")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--settle", type=float, default=1.0, help="pause after each round (s)")
    parser.add_argument("--no-dispatch", dest="no_dispatch", action="store_true")
    options = parser.parse_args()
    if options.rounds > 40 or options.seconds > 30 or options.concurrency > 512:
        sys.exit("bounded load only: rounds <= 40, seconds <= 30, concurrency <= 512")
    worktree = Path(tempfile.mkdtemp(prefix="tidings-bench-ab-tree-")) / "tree"
    git = ["git", "-C", str(ROOT)]
    subprocess.run([*git, "worktree", "add", "--detach", str(worktree), options.base], check=True)
    servers: list[Server] = []
    try:
        servers.append(start(f"base {options.base[:12]}", worktree / "src", options))
        servers.append(start("this tree", ROOT / "src", options))
        asyncio.run(alternate(servers, options))
        report(servers)
    finally:
        for server in servers:
            server.process.terminate()
            server.process.wait(timeout=30)
        subprocess.run([*git, "worktree", "remove", "--force", str(worktree)], check=False)


if __name__ == "__main__":
    main()
