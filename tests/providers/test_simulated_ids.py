"""The simulator's ids for the messages it takes: their format and their order."""

from __future__ import annotations

import re
import time

from tidings.providers.simulator.provider import simulated_id


def test_a_simulated_id_is_sbx_and_24_hex_digits() -> None:
    assert re.fullmatch(r"sbx\.[0-9a-f]{24}", simulated_id())


def test_simulated_ids_made_later_sort_after_earlier_ones() -> None:
    first = [simulated_id() for _ in range(50)]
    time.sleep(0.002)
    later = [simulated_id() for _ in range(50)]
    assert max(first) < min(later)


def test_simulated_ids_made_in_the_same_millisecond_differ() -> None:
    assert len({simulated_id() for _ in range(2_000)}) == 2_000
