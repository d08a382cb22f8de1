"""SMS in over HTTP and out over SMPP: Tidings against the test SMSC, and Jasmin if running.

Starts the test SMSC of ``tests/fakes/smsc.py`` in its own process (receipts on or
off), ``tidings serve`` on a fresh SQLite data directory with one production
account whose ``smpp`` provider points at it, then sends N production SMS to
``POST /api/v4/sms/send`` (``Prefer: respond-async``) at each concurrency level,
and reports:

- the HTTP accept rate and its p50/p99 latency;
- the end-to-end rate: messages the SMSC received / (last ``submit_sm`` - first
  request); with receipts on, also the rate until the last receipt was answered
  (Tidings answers a ``deliver_sm`` only once it is stored);
- a raw submit loop in the same run: the same N through the ``smpp`` provider alone
  (no HTTP, no database), the ceiling the SMPP side allows;
- the ratio of Tidings' end-to-end rate to the raw loop's;
- ``sim/s``: the accept rate of the same requests for an account whose provider is
  the simulator (the HTTP and database side alone, for comparison);
- with receipts on, ``dlvd/s``: messages / (the last one ``delivered`` - first
  request), every receipt applied (read from the database every 50 ms);
- ``cpu ms``: the serving process's CPU time (user + system, from ``/proc``) from
  the first request until every message is at the SMSC (and, with receipts,
  ``delivered``), per message: less sensitive to a busy machine than the rates.

``--wait`` sends without ``Prefer: respond-async`` (the request waits for the
SMSC's answer); ``--no-raw`` and ``--no-sim`` skip the comparisons (a shorter run);
``--py-spy DIR`` samples the serving process during each level into
``DIR/smpp-c<clients>.txt`` (py-spy's collapsed stacks).

If Jasmin runs as /work/shared/peers/jasmin/README.md sets it up (HTTP on
127.0.0.1:1401), its own ``bench.py`` is run with the same N and concurrency and
its output printed beside ours; otherwise the bench says so.

    .venv/bin/python bench/smpp.py [-n 5000] [--concurrency 16,64] [--receipts both|off]
        [--wait] [--no-raw] [--no-sim] [--py-spy DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
JASMIN = Path("/work/shared/peers/jasmin")
BENCH = Path(__file__).resolve().parent
# The bench folder goes last: a bench named like a standard module (email.py) must
# not shadow it.
sys.path = [str(ROOT), str(ROOT / "src")] + [
    entry for entry in sys.path if Path(entry or ".").resolve() != BENCH
]
sys.path.append(str(BENCH))

from loadgen import free_port, fresh_instance, tidings, wait_ready  # noqa: E402


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- the SMSC process ------------------------------------------------------------------


async def serve_smsc(port: int, stats_port: int, receipts: str) -> None:
    """The test SMSC on ``port``; a connection to ``stats_port`` gets its counters."""
    from tests.fakes.smsc import HappySMSC

    smsc = HappySMSC(receipts=None if receipts == "off" else receipts)
    submitted_at: list[float] = []
    original = smsc.on_submit

    def on_submit(connection: Any, sequence: int, submitted: Any) -> None:
        submitted_at.append(time.time())
        original(connection, sequence, submitted)

    smsc.on_submit = on_submit  # type: ignore[method-assign]
    answered_at: list[float] = []
    deliver = smsc.deliver_sm

    async def timed_deliver(**kwargs: Any) -> int | None:
        status = await deliver(**kwargs)
        answered_at.append(time.time())
        return status

    smsc.deliver_sm = timed_deliver  # type: ignore[method-assign]
    smsc_server = await asyncio.start_server(smsc._serve, "127.0.0.1", port)

    async def stats(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode().strip()
        if line == "reset":
            submitted_at.clear()
            answered_at.clear()
            smsc.submitted.clear()
        writer.write(
            json.dumps(
                {
                    "submitted": len(submitted_at),
                    "first": submitted_at[0] if submitted_at else None,
                    "last": submitted_at[-1] if submitted_at else None,
                    "receipts": len(answered_at),
                    "last_receipt": answered_at[-1] if answered_at else None,
                    "max_outstanding": smsc.max_outstanding,
                    "binds": smsc.binds,
                }
            ).encode()
            + b"\n"
        )
        await writer.drain()
        writer.close()

    stats_server = await asyncio.start_server(stats, "127.0.0.1", stats_port)
    async with smsc_server, stats_server:
        await asyncio.Event().wait()


def smsc_stats(stats_port: int, command: str = "") -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", stats_port)) as sock:
        sock.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return dict(json.loads(data))


# -- the load client ---------------------------------------------------------------------


async def send_all(
    port: int, token: str, count: int, concurrency: int, tag: str, wait: bool = False
) -> tuple[float, list[float], int]:
    """POST ``count`` SMS over keep-alive connections; (seconds, latencies, errors)."""
    from loadgen import _read_response, build_request  # type: ignore[import-not-found]

    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if not wait:
        headers["Prefer"] = "respond-async"
    numbers = iter(range(count))
    latencies: list[float] = []
    errors = 0

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for number in numbers:
                body = json.dumps(
                    {"to": "+393331234567", "body": f"{tag}:{number} benchmark message {number}"}
                ).encode()
                sent = time.perf_counter()
                writer.write(build_request("127.0.0.1", port, "/api/v4/sms/send", body, headers))
                status = await _read_response(reader)
                if 200 <= status < 300:
                    latencies.append(time.perf_counter() - sent)
                else:
                    errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies, errors


def wait_for_smsc(stats_port: int, count: int, receipts: bool, idle: float = 30) -> dict[str, Any]:
    """The SMSC's counters once ``count`` arrived (and were receipted), or nothing
    new came for ``idle`` seconds."""
    seen, changed = -1, time.monotonic()
    while True:
        stats = smsc_stats(stats_port)
        progress = stats["submitted"] + stats["receipts"]
        if stats["submitted"] >= count and (not receipts or stats["receipts"] >= count):
            return stats
        if progress != seen:
            seen, changed = progress, time.monotonic()
        elif time.monotonic() - changed > idle:
            return stats
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process ``pid``, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def delivered(database: Path, account: str) -> int:
    """How many of the account's messages are ``delivered`` (read-only, beside the server)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        row = db.execute(
            "SELECT count(*) FROM messages WHERE account_id = ? AND status = 'delivered'",
            (account,),
        ).fetchone()
    return int(row[0])


def wait_delivered(database: Path, account: str, target: int, idle: float = 30) -> float | None:
    """When ``target`` of the account's messages were ``delivered`` (None: stalled)."""
    seen, changed = -1, time.monotonic()
    while True:
        count = delivered(database, account)
        if count >= target:
            return time.time()
        if count != seen:
            seen, changed = count, time.monotonic()
        elif time.monotonic() - changed > idle:
            return None
        time.sleep(0.05)


async def raw_loop(smsc_port: int, count: int, window: int) -> float:
    """The same count straight through the smpp provider (no HTTP, no database)."""
    from tests.providers.smpp.support import build, outbound
    from tidings.providers.smpp import SmppProvider

    class Target:
        port = smsc_port

    provider, _ = build(Target(), window=window)  # type: ignore[arg-type]
    assert isinstance(provider, SmppProvider)
    await provider.start()
    slots = asyncio.Semaphore(window)

    async def one(number: int) -> None:
        async with slots:
            await provider.send(outbound(body=f"raw:{number} benchmark message", number=number))

    start = time.perf_counter()
    await asyncio.gather(*(one(number) for number in range(count)))
    elapsed = time.perf_counter() - start
    await provider.close()
    return elapsed


# -- Tidings -----------------------------------------------------------------------------


def run_jasmin(count: int, concurrency: int) -> str:
    if not listening(1401):
        return (
            "Jasmin: not running (nothing on 127.0.0.1:1401); "
            f"{JASMIN}/setup.sh starts it, then run this bench again."
        )
    done = subprocess.run(
        [PYTHON, str(JASMIN / "bench.py"), "-n", str(count), "-c", str(concurrency)],
        capture_output=True,
        text=True,
        check=False,
        cwd=JASMIN,
    )
    return "Jasmin:\n" + (done.stdout + done.stderr).strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--receipts", choices=["off", "text", "tlv", "both"], default="both")
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--binds", type=int, default=1)
    parser.add_argument("--smsc", nargs=3, metavar=("PORT", "STATS", "RECEIPTS"))
    parser.add_argument("--wait", action="store_true", help="waiting sends, not respond-async")
    parser.add_argument("--no-raw", dest="raw", action="store_false")
    parser.add_argument("--no-sim", dest="sim", action="store_false")
    parser.add_argument("--py-spy", dest="py_spy", type=Path, default=None)
    options = parser.parse_args()
    if options.smsc:
        port, stats, receipts = options.smsc
        asyncio.run(serve_smsc(int(port), int(stats), receipts))
        return
    import httpx  # after the path is fixed: it imports the standard email package

    levels = [int(x) for x in options.concurrency.split(",")]
    receipts_on = options.receipts != "off"

    smsc_port, stats_port, http_port = free_port(), free_port(), free_port()
    smsc = subprocess.Popen(
        [PYTHON, __file__, "--smsc", str(smsc_port), str(stats_port), options.receipts]
    )
    data, env, account = fresh_instance("tidings-bench-smpp-")
    tidings(
        ["users", "create", "--account", account, "--username", "bench", "--password", "pw-bench"],
        env,
    )
    tidings(["credits", "add", account, "100000000"], env)
    config = {
        "host": "127.0.0.1",
        "port": smsc_port,
        "systemId": "tidings",
        "defaultSender": "Tidings",
        "window": options.window,
        "binds": options.binds,
        "registeredDelivery": receipts_on,
    }
    tidings(
        [
            "providers",
            "add",
            account,
            "sms",
            "smpp",
            "--config",
            json.dumps(config),
            "--secrets-stdin",
        ],
        env,
        stdin=json.dumps({"password": "secret"}),
    )
    # The same path with the simulated provider: what the HTTP side costs alone.
    baseline = tidings(["accounts", "create", "Baseline"], env)
    user = ["--username", "baseline", "--password", "pw-baseline"]
    tidings(["users", "create", "--account", baseline, *user], env)
    tidings(["credits", "add", baseline, "100000000"], env)
    tidings(["providers", "add", baseline, "sms", "simulator"], env)
    server = subprocess.Popen([PYTHON, "-m", "tidings", "serve", "--port", str(http_port)], env=env)
    try:
        wait_ready(f"http://127.0.0.1:{http_port}")
        token, base_token = (
            httpx.post(
                f"http://127.0.0.1:{http_port}/api/v4/auth/token",
                json={"username": name, "password": password, "expiresIn": 86400},
            ).json()["token"]
            for name, password in (("bench", "pw-bench"), ("baseline", "pw-baseline"))
        )
        print(
            f"smpp bench: n={options.n}, receipts={options.receipts}, window={options.window}, "
            f"binds={options.binds}, {'waiting' if options.wait else 'respond-async'} sends; "
            f"fake SMSC on 127.0.0.1:{smsc_port}"
        )
        database = data / "tidings.db"
        # Warm-up: the bind, the first requests' imports and caches.
        smsc_stats(stats_port, "reset")
        asyncio.run(send_all(http_port, token, 200, 16, "warmup", options.wait))
        wait_for_smsc(stats_port, 200, receipts_on)
        done = 0
        if receipts_on:
            done = 200
            wait_delivered(database, account, done)
        header = (
            f"{'clients':>7} {'accept/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'e2e/s':>7} "
            f"{'rcpt/s':>7} {'dlvd/s':>7} {'cpu ms':>6} {'raw/s':>7} {'ratio':>6} "
            f"{'lost':>5} {'errors':>6} {'sim/s':>7}"
        )
        print(header)
        for level in levels:
            smsc_stats(stats_port, "reset")
            spy = None
            if options.py_spy is not None:
                options.py_spy.mkdir(parents=True, exist_ok=True)
                out = options.py_spy / f"smpp-c{level}.txt"
                command = [str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(server.pid)]
                command += ["--format", "raw", "--rate", "200", "--nonblocking"]
                spy = subprocess.Popen(
                    [*command, "--output", str(out)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            cpu_before = cpu_seconds(server.pid)
            started = time.time()
            seconds, latencies, errors = asyncio.run(
                send_all(http_port, token, options.n, level, f"c{level}", options.wait)
            )
            stats = wait_for_smsc(stats_port, options.n, receipts_on)
            delivered_rate = float("nan")
            if receipts_on:
                done += options.n
                finished = wait_delivered(database, account, done)
                if finished is not None:
                    delivered_rate = options.n / max(1e-9, finished - started)
            cpu_ms = (cpu_seconds(server.pid) - cpu_before) * 1000 / options.n
            if spy is not None:
                spy.send_signal(2)
                spy.wait(timeout=60)
            e2e = stats["submitted"] / max(1e-9, (stats["last"] or started) - started)
            receipt_rate = (
                stats["receipts"] / max(1e-9, (stats["last_receipt"] or started) - started)
                if receipts_on
                else float("nan")
            )
            smsc_stats(stats_port, "reset")
            raw = float("nan")
            if options.raw:
                raw_seconds = asyncio.run(raw_loop(smsc_port, options.n, options.window))
                raw = options.n / raw_seconds
            sim = float("nan")
            if options.sim:
                sim_seconds, sim_latencies, _ = asyncio.run(
                    send_all(http_port, base_token, options.n, level, f"s{level}", options.wait)
                )
                sim = len(sim_latencies) / sim_seconds
            ordered = sorted(latencies)
            p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
            print(
                f"{level:>7} {len(latencies) / seconds:>9.0f} "
                f"{statistics.median(latencies) * 1000:>7.1f} {p99:>7.1f} {e2e:>7.0f} "
                f"{receipt_rate:>7.0f} {delivered_rate:>7.0f} {cpu_ms:>6.2f} "
                f"{raw:>7.0f} {e2e / raw:>6.2f} "
                f"{options.n - stats['submitted']:>5} {errors:>6} {sim:>7.0f}"
            )
        for level in levels:
            print(run_jasmin(options.n, level))
    finally:
        for process in (server, smsc):
            process.terminate()
            process.wait(timeout=15)


if __name__ == "__main__":
    main()
