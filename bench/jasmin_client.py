"""Tidings' SMS send driven the way the Jasmin peer benchmark drives Jasmin's ``/send``.

The Jasmin comparison (docs/performance.md, "Beside Jasmin") runs Jasmin's own load
client against Jasmin, then this one against Tidings, back to back, with the same
message count, the same concurrency and the same fake SMSC: the one the peer setup
starts (``/work/shared/peers/jasmin/fake_smsc.py`` on 127.0.0.1:2775, password
``secret``, arrivals counted per run tag at ``http://127.0.0.1:2780/stats?tag=``).
It measures what that client measures, defined the same way:

- the accept rate: successful answers / the send phase's wall time, with the
  answers' p50/p90/p99/max latency;
- the end-to-end rate: messages the SMSC received / (last ``submit_sm`` - first
  request), and the SMSC-side rate (first to last ``submit_sm``);
- never arrived (accepted, not seen by the SMSC) and duplicates (seen twice).

What differs from Jasmin's ``GET /send?username=..&password=..``: each request is a
``POST /api/v4/sms/send`` with a JSON body and a bearer token from
``POST /api/v4/auth/token``, waiting for the verdict (the default) or with
``Prefer: respond-async``. Each text is ``<tag>:<seq> benchmark message <seq>``
(GSM-7, one segment), as Jasmin's client sends.

Beyond that client, it checks in Tidings' database (``--start`` knows where it is)
that every accepted id is stored and ends ``sent``, or ``delivered`` when the SMSC
sends receipts, and reports the rate to the last ``delivered`` and the serving
process's CPU time per message (less sensitive to a busy machine than the rates).

    # Tidings started here, on a fresh data directory, its smpp provider on the peer SMSC:
    .venv/bin/python bench/jasmin_client.py --start -n 5000 -c 16,64 [--receipts] [--async]
        [--workers N] [--delivery-process] [--set NAME=VALUE ...]
    # or against a running Tidings:
    .venv/bin/python bench/jasmin_client.py --port 8000 --username u --password p

``--py-spy DIR`` (with ``--start``) samples the serving process (and its workers)
during each run into ``DIR/<tag>-c<clients>.txt`` (py-spy's collapsed stacks).
``--set NAME=VALUE`` (with ``--start``) gives the server a setting for the run, as
``TIDINGS_<NAME>``: ``--set dispatch=false`` measures accepting alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.append(str(BENCH))

from loadgen import free_port, fresh_instance, login_token, tidings, wait_ready  # noqa: E402

PYTHON = sys.executable
TICKS = os.sysconf("SC_CLK_TCK")


class Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        for attempt in (1, 2):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
                assert self.reader is not None
                self.writer.write(request)
                return await self._answer(self.reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                close = True
        body = await reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def smsc_stats(port: int, tag: str) -> dict[str, Any]:
    """The peer SMSC's counters for one run tag."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /stats?tag={tag} HTTP/1.0\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    return dict(json.loads(data.split(b"\r\n\r\n", 1)[1]))


def percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process, its waited-for children and its live ones
    (``serve --delivery-process``'s delivery process, ``serve --workers N``'s workers),
    in seconds."""
    if pid is None:
        return float("nan")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid:
            total += sum(int(value) for value in fields[11:15]) / TICKS
        elif int(fields[1]) == pid:
            total += sum(int(value) for value in fields[11:13]) / TICKS
    return total


@dataclass
class Target:
    port: int
    token: str
    database: Path | None = None
    pid: int | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


# -- one run -------------------------------------------------------------------------------


async def send_phase(
    target: Target, count: int, concurrency: int, tag: str, wait: bool
) -> tuple[float, list[float], list[str], dict[str, int]]:
    """(seconds, latencies, accepted ids, error samples) of ``count`` sends."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {target.token}"}
    if not wait:
        headers["Prefer"] = "respond-async"
    numbers = iter(range(count))
    latencies: list[float] = []
    ids: list[str] = []
    errors: dict[str, int] = {}

    async def worker() -> None:
        connection = Connection(target.port)
        for number in numbers:
            body = json.dumps(
                {
                    "to": f"+39333{number % 10000:07d}",
                    "from": "BENCH",
                    "body": f"{tag}:{number} benchmark message {number}",
                }
            ).encode()
            started = time.perf_counter()
            try:
                status, answer = await connection.post("/api/v4/sms/send", body, headers)
            except Exception as error:  # refused or reset twice
                status, answer = 0, repr(error).encode()
            latencies.append(time.perf_counter() - started)
            found = json.loads(answer) if 200 <= status < 300 else None
            # Accepted: stored, and not refused by the provider (with receipts on, the
            # receipt may already have delivered it when the verdict is answered).
            if found is not None and found.get("status") in ("queued", "sent", "delivered"):
                ids.append(found["id"])
            else:
                key = f"{status} {answer[:80]!r}"
                errors[key] = errors.get(key, 0) + 1
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, ids, errors


def statuses(database: Path, ids: list[str]) -> dict[str, int]:
    """How many of ``ids`` are in each status (a missing id counts as ``missing``)."""
    counts: dict[str, int] = {}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        found = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for status, number in db.execute(
                f"SELECT status, count(*) FROM messages WHERE id IN ({marks}) GROUP BY status",
                chunk,
            ):
                counts[status] = counts.get(status, 0) + number
                found += number
    if found < len(ids):
        counts["missing"] = len(ids) - found
    return counts


async def settle(
    target: Target, ids: list[str], final: str, idle: float
) -> tuple[dict[str, int], float | None]:
    """Wait until every id is ``final`` (or nothing changed for ``idle`` s); the
    counts and the time the last one got there."""
    if target.database is None:
        return {}, None
    last: dict[str, int] = {}
    changed = time.monotonic()
    while True:
        counts = statuses(target.database, ids)
        if counts.get(final, 0) >= len(ids):
            return counts, last_status_at(target.database, ids, final)
        if counts != last:
            last, changed = counts, time.monotonic()
        elif time.monotonic() - changed > idle:
            return counts, None
        await asyncio.sleep(0.2)


def last_status_at(database: Path, ids: list[str], status: str) -> float | None:
    latest: float | None = None
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            (found,) = db.execute(
                f"SELECT max(at) FROM message_events WHERE status = ? AND applied "
                f"AND message_id IN ({marks})",
                [status, *chunk],
            ).fetchone()
            if found is not None:
                from datetime import datetime

                value = datetime.fromisoformat(str(found)).timestamp()
                latest = value if latest is None else max(latest, value)
    return latest


async def run(
    target: Target, options: argparse.Namespace, count: int, concurrency: int
) -> dict[str, Any]:
    tag = f"T{uuid.uuid4().hex[:8]}"
    spy = None
    if options.py_spy is not None and target.pid is not None:
        # Samples of the serving process for the whole run, as collapsed stacks.
        options.py_spy.mkdir(parents=True, exist_ok=True)
        out = options.py_spy / f"{tag}-c{concurrency}.txt"
        command = [str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(target.pid)]
        command += ["--format", "raw", "--rate", "200", "--nonblocking", "--subprocesses"]
        command += ["--output", str(out)]
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu_before = cpu_seconds(target.pid)
    first_request = time.time()
    send_s, latencies, ids, errors = await send_phase(
        target, count, concurrency, tag, not options.respond_async
    )
    http_end = time.time()
    cpu_send = cpu_seconds(target.pid) - cpu_before

    # The SMSC drains (as Jasmin's client waits for it).
    seen, changed = -1, time.time()
    while True:
        stats = await smsc_stats(options.smsc_stats_port, tag)
        if stats["tag_unique"] != seen:
            seen, changed = stats["tag_unique"], time.time()
        if seen >= len(ids) or time.time() - changed > options.stall_s:
            break
        await asyncio.sleep(0.2)
    final = "delivered" if options.receipts else "sent"
    counts, final_at = await settle(target, ids, final, options.stall_s)
    cpu_all = cpu_seconds(target.pid) - cpu_before
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)

    ordered = sorted(latencies)
    arrived, last, first = stats["tag_unique"], stats["tag_last"], stats["tag_first"]
    return {
        "target": "tidings",
        "tag": tag,
        "n": count,
        "concurrency": concurrency,
        "wait": not options.respond_async,
        "receipts": options.receipts,
        "http_ok": len(ids),
        "http_errors": sum(errors.values()),
        "http_error_samples": errors,
        "http_send_s": round(send_s, 3),
        "http_accept_rps": round(len(ids) / send_s, 1),
        "lat_ms": {
            "p50": round(percentile(ordered, 0.50) * 1000, 2),
            "p90": round(percentile(ordered, 0.90) * 1000, 2),
            "p99": round(percentile(ordered, 0.99) * 1000, 2),
            "max": round(ordered[-1] * 1000, 2) if ordered else None,
            "mean": round(statistics.fmean(ordered) * 1000, 2) if ordered else None,
        },
        "smsc_arrived": arrived,
        "smsc_duplicates": stats["tag_count"] - arrived,
        "never_arrived": len(ids) - arrived,
        "e2e_s": round(last - first_request, 3) if last else None,
        "e2e_rate": round(arrived / (last - first_request), 1) if last else 0.0,
        "smsc_side_rate": round(arrived / (last - first), 1) if last and last > first else None,
        "drain_lag_after_http_s": round(last - http_end, 3) if last else None,
        "statuses": counts,
        f"{final}_rate": round(len(ids) / (final_at - first_request), 1) if final_at else None,
        "server_cpu_ms_per_msg_send_phase": round(cpu_send * 1000 / max(1, len(ids)), 3),
        "server_cpu_ms_per_msg_total": round(cpu_all * 1000 / max(1, len(ids)), 3),
    }


def show(result: dict[str, Any]) -> None:
    lat = result["lat_ms"]
    mode = "wait" if result["wait"] else "async"
    print(
        f"[tidings] n={result['n']} c={result['concurrency']} {mode} HTTP: "
        f"{result['http_accept_rps']} req/s ok={result['http_ok']} err={result['http_errors']} "
        f"p50={lat['p50']}ms p90={lat['p90']}ms p99={lat['p99']}ms max={lat['max']}ms "
        f"(send phase {result['http_send_s']}s)"
    )
    final = "delivered" if result["receipts"] else "sent"
    print(
        f"[tidings]   SMSC: arrived={result['smsc_arrived']} "
        f"never_arrived={result['never_arrived']} dups={result['smsc_duplicates']} "
        f"e2e_rate={result['e2e_rate']}/s ({result['e2e_s']}s) "
        f"smsc_side_rate={result['smsc_side_rate']}/s drain_lag={result['drain_lag_after_http_s']}s"
    )
    print(
        f"[tidings]   stored: {result['statuses']} {final}_rate={result[f'{final}_rate']}/s "
        f"server CPU {result['server_cpu_ms_per_msg_send_phase']} ms/msg in the send phase, "
        f"{result['server_cpu_ms_per_msg_total']} ms/msg in all"
    )
    if result["http_error_samples"]:
        print("[tidings]   error samples:", result["http_error_samples"])


# -- starting Tidings ------------------------------------------------------------------------


def start_tidings(options: argparse.Namespace) -> Target:
    """A fresh data directory, a production account whose ``smpp`` provider binds
    to the peer SMSC, and ``tidings serve`` on a free port."""
    data, env, account = fresh_instance("tidings-bench-jasmin-")
    login = ["--username", "bench", "--password", "pw-bench"]
    tidings(["users", "create", "--account", account, *login], env)
    tidings(["credits", "add", account, "100000000"], env)
    config = {
        "host": "127.0.0.1",
        "port": options.smsc_port,
        "systemId": "tidings",
        "defaultSender": "BENCH",
        "window": options.window,
        "binds": options.binds,
        "registeredDelivery": options.receipts,
    }
    add = ["providers", "add", account, "sms", "smpp", "--config", json.dumps(config)]
    tidings([*add, "--secrets-stdin"], env, stdin=json.dumps({"password": options.smsc_password}))
    port = free_port()
    # Settings for this run (``--set delivery__sends_first=false``), as environment.
    env.update({f"TIDINGS_{name.upper()}": value for name, value in options.settings})
    serve = [PYTHON, "-m", "tidings", "serve", "--port", str(port)]
    serve += ["--workers", str(options.workers)]
    if options.delivery_process:
        serve.append("--delivery-process")
    server = subprocess.Popen(serve, env=env)
    wait_ready(f"http://127.0.0.1:{port}")
    return Target(
        port, login_token(port, "bench", "pw-bench"), data / "tidings.db", server.pid, [server]
    )


async def main_async(options: argparse.Namespace, target: Target) -> None:
    if options.warmup:
        warm = await run(target, options, options.warmup, 16)
        print(f"[tidings] warmup {options.warmup}: {warm['http_accept_rps']} req/s")
    for concurrency in [int(c) for c in options.concurrency.split(",")]:
        result = await run(target, options, options.n, concurrency)
        show(result)
        if options.json:
            with open(options.json, "a") as out:
                out.write(json.dumps(result) + "\n")


def setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("-c", "--concurrency", default="16,64")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--async",
        dest="respond_async",
        action="store_true",
        help="Prefer: respond-async (answered once stored)",
    )
    parser.add_argument(
        "--receipts",
        action="store_true",
        help="registeredDelivery on; wait for every message to be delivered",
    )
    parser.add_argument("--start", action="store_true", help="start Tidings on a fresh data dir")
    parser.add_argument(
        "--delivery-process",
        action="store_true",
        help="with --start: tidings serve --delivery-process",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="with --start: tidings serve --workers N"
    )
    parser.add_argument(
        "--set",
        dest="settings",
        type=setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --start: a server setting, e.g. delivery__sends_first=false (repeatable)",
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--username", default="bench")
    parser.add_argument("--password", default="pw-bench")
    parser.add_argument("--smsc-port", type=int, default=2775)
    parser.add_argument("--smsc-password", default="secret")
    parser.add_argument("--smsc-stats-port", type=int, default=2780)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--binds", type=int, default=1)
    parser.add_argument("--stall-s", type=float, default=30)
    parser.add_argument("--json", default=None, help="append each result as a JSON line")
    parser.add_argument(
        "--py-spy", dest="py_spy", type=Path, default=None, help="sample the server into DIR"
    )
    options = parser.parse_args()
    if options.n > 100000 or max(int(c) for c in options.concurrency.split(",")) > 512:
        sys.exit("bounded load only: n <= 100000, concurrency <= 512")
    if options.start:
        target = start_tidings(options)
    else:
        target = Target(options.port, login_token(options.port, options.username, options.password))
    print(
        f"[tidings] {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; port {target.port}, SMSC 127.0.0.1:"
        f"{options.smsc_port}, receipts={options.receipts}, window={options.window}"
    )
    try:
        asyncio.run(main_async(options, target))
    finally:
        for process in target.processes:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
