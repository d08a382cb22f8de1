"""Password hashing takes its argon2id costs from settings; the production defaults stay
RFC 9106's, and a hash made at any cost verifies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tidings.auth.passwords import Passwords, process_passwords
from tidings.settings import PasswordHashSettings, Settings


def test_the_defaults_are_rfc_9106_low_memory() -> None:
    # Built without the environment, which the test run sets to cheap costs.
    costs = Settings.model_fields["password_hash"].get_default(call_default_factory=True)
    assert (costs.time_cost, costs.memory_cost_kib, costs.parallelism) == (3, 65536, 4)


def test_new_hashes_carry_the_configured_costs() -> None:
    passwords = Passwords(PasswordHashSettings(time_cost=2, memory_cost_kib=16, parallelism=2))
    stored = passwords.hash("correct horse")
    assert stored.startswith("$argon2id$v=19$m=16,t=2,p=2$")
    assert passwords.verify(stored, "correct horse")
    assert not passwords.verify(stored, "wrong horse")


def test_a_hash_verifies_whatever_costs_made_it() -> None:
    cheap = Passwords(PasswordHashSettings(time_cost=1, memory_cost_kib=8, parallelism=1))
    other = Passwords(PasswordHashSettings(time_cost=2, memory_cost_kib=32, parallelism=1))
    assert other.verify(cheap.hash("pw-12345678"), "pw-12345678")


def test_an_unknown_user_never_verifies() -> None:
    passwords = Passwords(PasswordHashSettings(time_cost=1, memory_cost_kib=8, parallelism=1))
    assert not passwords.verify(None, "tidings-unknown-user")
    assert not passwords.verify("", "anything")
    assert not passwords.verify("not a hash", "anything")


def test_the_process_hasher_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_PASSWORD_HASH__TIME_COST", "2")
    monkeypatch.setenv("TIDINGS_PASSWORD_HASH__MEMORY_COST_KIB", "24")
    monkeypatch.setenv("TIDINGS_PASSWORD_HASH__PARALLELISM", "3")
    process_passwords.cache_clear()
    try:
        assert process_passwords().hash("x" * 8).startswith("$argon2id$v=19$m=24,t=2,p=3$")
    finally:
        monkeypatch.undo()
        process_passwords.cache_clear()


def test_memory_below_what_the_lanes_need_is_refused() -> None:
    with pytest.raises(ValidationError, match="8 KiB of memory per lane"):
        PasswordHashSettings(memory_cost_kib=16, parallelism=4)
