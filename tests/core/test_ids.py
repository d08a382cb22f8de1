"""Identifiers: ULIDs in Crockford base32 after a prefix, increasing as they are made."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core.ids import _encode, encode_run, new_id, new_ids

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def crockford(value: int) -> str:
    """The 26 digits of ``value``, one at a time (the ULID specification's way)."""
    digits = []
    for _ in range(26):
        digits.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(digits))


@given(st.integers(min_value=0, max_value=(1 << 128) - 1))
def test_an_id_spells_its_value_as_the_ulid_specification_does(value: int) -> None:
    # new_id spells its value with _encode; a run spells each value's head with it.
    assert _encode(value) == crockford(value)
    (made,) = encode_run("msg", range(value, value + 1))
    assert made == f"msg_{crockford(value)}"


@pytest.mark.parametrize("value", [0, 1, 1023, 1024, (1 << 80) - 1, 1 << 80, (1 << 128) - 1])
def test_edge_values_are_spelled_alike_one_at_a_time_and_in_runs(value: int) -> None:
    start = max(value - 2, 0)
    run = encode_run("evt", range(start, value + 1))
    assert run == [f"evt_{crockford(each)}" for each in range(start, value + 1)]


def test_ids_made_one_after_another_increase() -> None:
    made = [new_id("msg") for _ in range(2_000)] + new_ids("msg", 500)
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(re.fullmatch(r"msg_[0-9A-HJKMNP-TV-Z]{26}", each) for each in made)


def test_an_unknown_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown id prefix"):
        new_id("xyz")
