"""What a second process adds on this machine, for CPU-bound Python.

Every ratio of ``serve --workers 2`` against one process, and of Tidings against a
gateway that runs in one process, rests on what the machine's second core is worth.
On a virtual machine it can be worth much less than the first: two virtual CPUs may
be two hardware threads of one core on the host, or share it with other guests. This
bench measures it: a fixed amount of interpreter work (building, reading and
serialising small dicts and strings, the kind of work a request handler does) in one
process alone, then in two processes at once, alternating, and prints

- the second process's worth: the work done a second by two processes at once over
  that of one alone (2.0 on two free cores);
- how much slower each process runs beside the other (its CPU time for the same
  work, paired over alone): the cost per message that a second server process pays.

    .venv/bin/python bench/cores.py [--rounds 5] [--work 400000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from multiprocessing.synchronize import Barrier


def work(amount: int) -> int:
    total = 0
    for number in range(amount):
        body = f"benchmark message {number}"
        record = {"to": f"+39333{number:07d}", "body": body, "segments": len(body) // 160 + 1}
        total += len(json.dumps(record)) + len(str(record["to"]).upper())
    return total


def timed(amount: int, start: Barrier, results: multiprocessing.Queue[tuple[float, float]]) -> None:
    start.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    work(amount)
    results.put((time.perf_counter() - wall, time.process_time() - cpu))


def run(processes: int, amount: int) -> tuple[float, float]:
    """(wall seconds until all finish, mean CPU seconds of one process)."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results: multiprocessing.Queue[tuple[float, float]] = context.Queue()
    workers = [
        context.Process(target=timed, args=(amount, start, results)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    measured = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join()
    return max(wall for wall, _ in measured), statistics.fmean(cpu for _, cpu in measured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", type=int, default=400_000, help="iterations per process")
    options = parser.parse_args()
    if options.rounds > 50 or options.work > 10_000_000:
        raise SystemExit("bounded: rounds <= 50, work <= 10,000,000")
    worth: list[float] = []
    slowdown: list[float] = []
    print(f"{multiprocessing.cpu_count()} CPUs; {options.work} iterations per process")
    print("round  one alone: wall s (cpu s)  two at once: wall s (cpu s each)  worth  slowdown")
    for number in range(1, options.rounds + 1):
        alone_wall, alone_cpu = run(1, options.work)
        pair_wall, pair_cpu = run(2, options.work)
        worth.append(2 * alone_wall / pair_wall)
        slowdown.append(pair_cpu / alone_cpu)
        print(
            f"{number:>5}  {alone_wall:>10.3f} ({alone_cpu:.3f})  "
            f"{pair_wall:>19.3f} ({pair_cpu:.3f})  {worth[-1]:>5.2f}  {slowdown[-1]:>8.2f}"
        )
    print(
        f"two processes do {statistics.median(worth):.2f} times the work of one "
        f"({min(worth):.2f} to {max(worth):.2f}); each runs "
        f"{statistics.median(slowdown):.2f} times slower beside the other "
        f"({min(slowdown):.2f} to {max(slowdown):.2f})"
    )


if __name__ == "__main__":
    main()
