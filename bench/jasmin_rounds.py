"""Jasmin and Tidings in alternating rounds, with the median of each side and of the
paired ratios.

A single back-to-back pair says little on a shared two-core machine: the same run
of either side moves by 40 % within minutes (docs/performance.md, "Beside Jasmin, in
rounds"). This driver repeats the pair: each round runs Jasmin's own client
(``bench.py`` of the peer setup, against its ``/send``) and ``bench/jasmin_client.py``
(Tidings' ``POST /api/v4/sms/send``, on a fresh data directory each time) at every
concurrency, Jasmin first in odd rounds and Tidings first in even ones, so that a
machine slowing down through the session weighs on both sides alike. It prints
every run, then for each concurrency and mode:

- the median accept rate of each side, and of the end-to-end rates;
- the median of the rounds' ratios (Tidings / Jasmin, each round's pair measured
  within a minute of each other), with the smallest and the largest;
- whether every message accepted by Tidings was stored and reached its final status.

Both sides need the peer setup running (``setup.sh`` of the Jasmin peer: jasmind, its
RabbitMQ and Redis, and the fake SMSC on 127.0.0.1:2775).

    .venv/bin/python bench/jasmin_rounds.py [--rounds 5] [-n 5000] [-c 16,64]
        [--modes async,waiting] [--workers 2] [--set NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jasmin_client import setting

BENCH = Path(__file__).resolve().parent
PEER = Path(os.environ.get("TIDINGS_JASMIN_PEER", "/work/shared/peers/jasmin"))
PEER_PYTHON = Path.home() / ".cache" / "peer-jasmin-venv" / "bin" / "python"


def last_json(path: Path) -> dict[str, Any]:
    lines = path.read_text().splitlines()
    if not lines:
        raise RuntimeError(f"{path} holds no result")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def jasmin_run(options: argparse.Namespace, concurrency: int, out: Path) -> dict[str, Any]:
    command = [str(options.peer_python), str(options.peer / "bench.py")]
    command += ["-n", str(options.n), "-c", str(concurrency), "--json", str(out)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return last_json(out)


def tidings_runs(options: argparse.Namespace, mode: str, out: Path) -> list[dict[str, Any]]:
    """One fresh server, each concurrency in turn."""
    before = len(out.read_text().splitlines()) if out.exists() else 0
    command = [sys.executable, str(BENCH / "jasmin_client.py"), "--start"]
    command += ["-n", str(options.n), "-c", options.concurrency, "--json", str(out)]
    command += ["--workers", str(options.workers)]
    if mode == "async":
        command.append("--async")
    for name, value in options.settings:
        command += ["--set", f"{name}={value}"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [json.loads(line) for line in out.read_text().splitlines()[before:]]


def durable(result: dict[str, Any]) -> bool:
    """Every accepted message stored and at its final status, none lost or doubled."""
    statuses: dict[str, int] = result["statuses"]
    final = "delivered" if result["receipts"] else "sent"
    accepted: int = result["http_ok"]
    return bool(
        result["http_errors"] == 0
        and statuses.get(final, 0) == accepted
        and sum(statuses.values()) == accepted
        and result["never_arrived"] == 0
        and result["smsc_duplicates"] == 0
    )


def line(label: str, result: dict[str, Any]) -> str:
    return (
        f"  {label:<16} c={result['concurrency']:<3} accepted {result['http_accept_rps']:>8.1f}/s"
        f"  end to end {result['e2e_rate']:>8.1f}/s  p99 {result['lat_ms']['p99']} ms"
    )


def summary(
    options: argparse.Namespace,
    jasmin: dict[int, list[dict[str, Any]]],
    tidings: dict[tuple[str, int], list[dict[str, Any]]],
) -> None:
    print("\nmedians over the rounds (ratios: Tidings / Jasmin of the same round)")
    for concurrency in sorted(jasmin):
        theirs = jasmin[concurrency]
        accept = statistics.median(r["http_accept_rps"] for r in theirs)
        e2e = statistics.median(r["e2e_rate"] for r in theirs)
        print(
            f"  c={concurrency:<3} Jasmin          accepted {accept:>8.1f}/s  "
            f"end to end {e2e:>7.1f}/s"
        )
        for mode in options.modes:
            ours = tidings[(mode, concurrency)]
            pairs = list(zip(ours, theirs, strict=True))
            ratios = [o["http_accept_rps"] / t["http_accept_rps"] for o, t in pairs]
            e2e_ratios = [o["e2e_rate"] / t["e2e_rate"] for o, t in pairs]
            every = all(durable(o) for o in ours)
            print(
                f"  c={concurrency:<3} Tidings {mode:<7} accepted "
                f"{statistics.median(o['http_accept_rps'] for o in ours):>8.1f}/s  end to end "
                f"{statistics.median(o['e2e_rate'] for o in ours):>7.1f}/s  ratio "
                f"{statistics.median(ratios):.2f} ({min(ratios):.2f} to {max(ratios):.2f}), "
                f"end to end {statistics.median(e2e_ratios):.2f}; "
                f"p99 {statistics.median(o['lat_ms']['p99'] for o in ours):.1f} ms; "
                f"{'every message stored and final' if every else 'SOME MESSAGES NOT FINAL'}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("-c", "--concurrency", default="16,64")
    parser.add_argument("--modes", default="async,waiting", help="async, waiting or both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", dest="settings", type=setting, action="append", default=[])
    parser.add_argument("--peer", type=Path, default=PEER, help="the Jasmin peer's folder")
    parser.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    parser.add_argument("--json", type=Path, default=None, help="append every run as JSON")
    options = parser.parse_args()
    options.modes = [mode for mode in options.modes.split(",") if mode]
    if not set(options.modes) <= {"async", "waiting"} or not options.modes:
        sys.exit("--modes: async, waiting or both")
    if options.rounds > 20 or options.n > 50000:
        sys.exit("bounded load only: rounds <= 20, n <= 50000")
    levels = [int(c) for c in options.concurrency.split(",")]

    folder = Path(tempfile.mkdtemp(prefix="tidings-jasmin-rounds-"))
    print(
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; {options.rounds} rounds of {options.n} "
        f"messages at {options.concurrency} clients; Tidings --workers {options.workers}"
    )
    # Jasmin's own benchmark warms it up once (bench.sh), Tidings' client each start.
    warm = [str(options.peer_python), str(options.peer / "bench.py"), "-n", "200", "-c", "16"]
    subprocess.run([*warm, "--stall-s", "15"], check=True, stdout=subprocess.DEVNULL)

    jasmin: dict[int, list[dict[str, Any]]] = {c: [] for c in levels}
    tidings: dict[tuple[str, int], list[dict[str, Any]]] = {
        (mode, c): [] for mode in options.modes for c in levels
    }
    for number in range(1, options.rounds + 1):
        print(f"round {number} ({'Jasmin' if number % 2 else 'Tidings'} first)")

        def run_jasmin() -> None:
            for concurrency in levels:
                result = jasmin_run(options, concurrency, folder / "jasmin.jsonl")
                jasmin[concurrency].append(result)
                print(line("Jasmin", result))

        def run_tidings() -> None:
            for mode in options.modes:
                for result in tidings_runs(options, mode, folder / f"tidings-{mode}.jsonl"):
                    tidings[(mode, result["concurrency"])].append(result)
                    print(line(f"Tidings {mode}", result))

        for step in (run_jasmin, run_tidings) if number % 2 else (run_tidings, run_jasmin):
            step()
        sys.stdout.flush()
    summary(options, jasmin, tidings)
    if options.json is not None:
        with options.json.open("a") as out:
            for name in ("jasmin.jsonl", "tidings-async.jsonl", "tidings-waiting.jsonl"):
                if (folder / name).exists():
                    out.write((folder / name).read_text())


if __name__ == "__main__":
    main()
