"""Rate-limit windows shared by processes through a file: the same readings as the
in-memory counter, one count across counters and processes, windows that end."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from tidings.core.shared_windows import SLOTS, SharedWindowCounter
from tidings.core.windows import FixedWindowCounter


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_reads_as_the_in_memory_counter(tmp_path: Path) -> None:
    clock = Clock()
    shared = SharedWindowCounter(tmp_path / "windows", 60, clock=clock)
    memory = FixedWindowCounter(60, monotonic=clock)
    steps = [("hit", "a", 3), ("hit", "a", 3), ("peek", "a", 3), ("hit", "b", 1)]
    steps += [("hit", "a", 3), ("hit", "a", 3), ("peek", "a", 3), ("hit", "b", 1)]
    for index, (operation, key, limit) in enumerate(steps):
        clock.now += 7.3 * index
        assert getattr(shared, operation)(key, limit) == getattr(memory, operation)(key, limit)
        assert shared.count(key) == memory.count(key)
    shared.reset("a")
    memory.reset("a")
    assert shared.hit("a", 3) == memory.hit("a", 3)
    assert shared.count("a") == 1
    shared.close()


def test_counters_on_one_file_count_together(tmp_path: Path) -> None:
    clock = Clock()
    first = SharedWindowCounter(tmp_path / "windows", 60, clock=clock)
    second = SharedWindowCounter(tmp_path / "windows", 60, clock=clock)
    first.hit("acct:1:production", 3)
    second.hit("acct:1:production", 3)
    third = first.hit("acct:1:production", 3)
    assert (third.remaining, third.exceeded) == (0, False)
    fourth = second.hit("acct:1:production", 3)
    assert fourth.exceeded and fourth.remaining == 0
    assert second.count("acct:2:production") == 0
    first.close()
    second.close()


def test_a_window_ends_and_a_clock_set_back_starts_a_new_one(tmp_path: Path) -> None:
    clock = Clock()
    counter = SharedWindowCounter(tmp_path / "windows", 60, clock=clock)
    for _ in range(5):
        counter.hit("k", 3)
    assert counter.peek("k", 3).reset_seconds == 60
    clock.now += 59.5
    assert counter.count("k") == 5 and counter.peek("k", 3).reset_seconds == 1
    clock.now += 0.5
    assert counter.count("k") == 0
    counter.hit("k", 3)
    clock.now -= 3_600  # the machine's clock set back an hour
    assert counter.count("k") == 0
    counter.close()


def test_a_full_neighbourhood_gives_the_oldest_slot(tmp_path: Path) -> None:
    clock = Clock()
    counter = SharedWindowCounter(tmp_path / "windows", 60, clock=clock, slots=4)
    for index in range(4):
        clock.now += 1
        counter.hit(f"key-{index}", 10)
    clock.now += 1
    counter.hit("key-new", 10)  # four live windows in four slots: key-0's is taken
    assert counter.count("key-new") == 1
    assert [counter.count(f"key-{index}") for index in (1, 2, 3)] == [1, 1, 1]
    counter.close()


def test_a_file_of_another_size_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "windows"
    path.write_bytes(b"\xff" * 100)
    counter = SharedWindowCounter(path, 60)
    assert counter.count("k") == 0
    assert path.stat().st_size == SLOTS * 32
    counter.close()


def _hits(path: str, count: int) -> None:
    counter = SharedWindowCounter(Path(path), 60)
    for _ in range(count):
        counter.hit("acct:shared:sandbox", 1_000_000)
    counter.close()


def test_processes_counting_at_once_lose_no_count(tmp_path: Path) -> None:
    path = tmp_path / "windows"
    SharedWindowCounter(path, 60).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hits, args=(str(path), 2_000)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    counter = SharedWindowCounter(path, 60)
    assert counter.count("acct:shared:sandbox") == 6_000
    counter.close()
