"""The key ring: the current key seals, older keys open, enc:v1 values open through
the legacy key, and anything else fails closed with a reason that never holds the value."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tidings.core.key_ring import (
    KeyRing,
    KeyRingError,
    SecretUnavailable,
    derived_legacy_key,
    new_key_entry,
    parse_entries,
)
from tidings.core.secrets import (
    SecretsKeysMissing,
    demo_secrets_keys,
    jwt_signing_key,
    secrets_key_ring,
)
from tidings.settings import Settings

SECRET = "whsec_dGhlIHNlY3JldCB2YWx1ZQ"
OLD, NEW = Fernet.generate_key(), Fernet.generate_key()
JWT_KEY = b"j" * 32


def legacy_v1(key: bytes, secret: str) -> str:
    """A value as the single-key SecretBox of earlier releases sealed it."""
    return "enc:v1:" + Fernet(key).encrypt(secret.encode()).decode()


def reason_of(ring: KeyRing, stored: str) -> str:
    with pytest.raises(SecretUnavailable) as caught:
        ring.open(stored)
    assert SECRET not in caught.value.reason
    assert not stored or stored not in caught.value.reason
    return caught.value.reason


def test_seal_names_the_current_key_and_opens() -> None:
    ring = KeyRing([("k2", NEW), ("k1", OLD)], legacy=None)
    sealed = ring.seal(SECRET)
    assert sealed.startswith("enc:v2:k2:") and SECRET not in sealed
    assert ring.open(sealed) == SECRET
    assert ring.seal(SECRET) != sealed  # Fernet tokens carry a random IV


def test_an_older_key_still_opens_and_rotation_moves_to_the_current_one() -> None:
    before = KeyRing([("k1", OLD)], legacy=None).seal(SECRET)
    ring = KeyRing([("k2", NEW), ("k1", OLD)], legacy=None)
    assert ring.open(before) == SECRET and not ring.is_current(before)
    resealed = ring.reseal(before)
    assert resealed is not None and resealed.startswith("enc:v2:k2:")
    assert ring.reseal(resealed) is None  # idempotent
    # Once rotated, the old key can leave the ring.
    assert KeyRing([("k2", NEW)], legacy=None).open(resealed) == SECRET


def test_an_unknown_key_id_fails_closed() -> None:
    sealed = KeyRing([("gone", OLD)], legacy=None).seal(SECRET)
    reason = reason_of(KeyRing([("k2", NEW)], legacy=None), sealed)
    assert "'gone'" in reason and "not in TIDINGS_SECRETS_KEYS" in reason


def test_a_known_id_with_another_key_or_a_corrupt_token_fails_closed() -> None:
    ring = KeyRing([("k1", NEW)], legacy=None)
    other = KeyRing([("k1", OLD)], legacy=None).seal(SECRET)
    assert "does not open with key 'k1'" in reason_of(ring, other)
    assert "corrupt" in reason_of(ring, ring.seal(SECRET)[:-6] + "AAAAAA")
    assert "malformed" in reason_of(ring, "enc:v2:no-key-id")


def test_plaintext_and_unknown_formats_are_refused_not_returned() -> None:
    ring = KeyRing([("k1", NEW)], legacy=derived_legacy_key(JWT_KEY))
    assert reason_of(ring, SECRET) == "it is not sealed"
    assert reason_of(ring, "") == "it is not sealed"
    assert "unknown format" in reason_of(ring, "enc:v9:" + SECRET)
    assert not ring.opens(SECRET)


def test_legacy_v1_values_open_with_the_jwt_derived_key_and_rotate() -> None:
    stored = legacy_v1(derived_legacy_key(JWT_KEY), SECRET)
    ring = KeyRing([("k1", NEW)], legacy=derived_legacy_key(JWT_KEY))
    assert ring.open(stored) == SECRET
    resealed = ring.reseal(stored)
    assert resealed is not None and ring.open(resealed) == SECRET
    assert "enc:v1" in reason_of(KeyRing([("k1", NEW)], legacy=None), stored)
    wrong = KeyRing([("k1", NEW)], legacy=derived_legacy_key(b"x" * 32))
    assert "legacy key" in reason_of(wrong, stored)
    # The legacy key only opens: sealing always uses the current key of the ring.
    assert ring.seal(SECRET).startswith("enc:v2:k1:")


def test_the_setting_is_parsed_and_checked_without_echoing_keys() -> None:
    entry = new_key_entry("2026-12")
    assert entry.startswith("2026-12:") and len(base64.urlsafe_b64decode(entry[8:])) == 32
    assert new_key_entry().startswith("k")
    assert [kid for kid, _ in parse_entries(f" {entry} , b:{OLD.decode()},")] == ["2026-12", "b"]
    with pytest.raises(KeyRingError, match="twice"):
        parse_entries(f"a:{NEW.decode()},a:{OLD.decode()}")
    with pytest.raises(KeyRingError, match="no key"):
        parse_entries(" , ")
    with pytest.raises(KeyRingError, match="entry 1"):
        parse_entries(NEW.decode())
    with pytest.raises(KeyRingError, match="'short' is not a Fernet key") as caught:
        KeyRing.from_setting("short:c2VjcmV0", legacy=None)
    assert "c2VjcmV0" not in str(caught.value)
    with pytest.raises(KeyRingError):
        new_key_entry("no spaces")


def test_the_ring_comes_from_its_own_setting_never_from_the_jwt_key(tmp_path: Path) -> None:
    bare = Settings(data_dir=tmp_path)
    with pytest.raises(SecretsKeysMissing, match="tidings secrets new-key"):
        secrets_key_ring(bare, jwt_signing_key(bare))
    configured = Settings(data_dir=tmp_path, secrets_keys=f"k2:{NEW.decode()},k1:{OLD.decode()}")
    ring = secrets_key_ring(configured, jwt_signing_key(configured))
    assert ring.current_id == "k2" and ring.key_ids == ("k2", "k1")
    # enc:v1 values of a deployment without TIDINGS_SECRETS_KEY: the JWT-derived key.
    derived = legacy_v1(derived_legacy_key(jwt_signing_key(configured)), SECRET)
    assert ring.open(derived) == SECRET
    # ... and of one that had TIDINGS_SECRETS_KEY: that key.
    with_old = Settings(
        data_dir=tmp_path, secrets_keys=f"k2:{NEW.decode()}", secrets_key=OLD.decode()
    )
    assert secrets_key_ring(with_old, b"").open(legacy_v1(OLD, SECRET)) == SECRET


def test_the_demo_key_ring_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    made = demo_secrets_keys(settings)
    assert made.startswith("demo:") and demo_secrets_keys(settings) == made
    assert (tmp_path / "secrets-keys").stat().st_mode & 0o777 == 0o600
    KeyRing.from_setting(made, legacy=None)
