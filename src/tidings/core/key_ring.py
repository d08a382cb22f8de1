"""The key ring that seals secrets at rest (webhook signing secrets, provider
credentials), with Fernet (AES-128-CBC + HMAC-SHA256, from the cryptography package).

Each key has an id. The first key of the ring seals; every key of the ring opens,
so a new key can be put first while values sealed with older ones still open until
``tidings secrets rotate`` has resealed them. A sealed value names its key:

    enc:v2:<key id>:<Fernet token>

Values of the first format, ``enc:v1:<Fernet token>``, were sealed with one key
(``TIDINGS_SECRETS_KEY``, or else a key derived from the JWT signing key); the ring
still opens them through its *legacy* key and never seals with it.

Opening fails closed: a value that is not sealed, names a key the ring does not
hold, or does not open with its key raises :class:`SecretUnavailable`, whose reason
names the key id at most and never the value. Nothing is ever read as plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken

SEALED_PREFIX = "enc:"
LEGACY_PREFIX = "enc:v1:"
PREFIX = "enc:v2:"
KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class SecretUnavailable(Exception):
    """A stored secret that cannot be opened; ``reason`` is safe to log and show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyRingError(ValueError):
    """The configured keys are unusable (the message names the key id, not the key)."""


def derived_legacy_key(signing_key: bytes) -> bytes:
    """The ``enc:v1:`` key of deployments that had no ``TIDINGS_SECRETS_KEY``."""
    digest = hmac.new(signing_key, b"tidings-secrets-at-rest", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest)


def new_key_entry(key_id: str | None = None, *, now: datetime | None = None) -> str:
    """A fresh ``<key id>:<Fernet key>`` entry for ``TIDINGS_SECRETS_KEYS``."""
    if key_id is None:
        key_id = f"k{(now or datetime.now(UTC)):%Y%m%d}-{secrets.token_hex(2)}"
    if not KEY_ID.match(key_id):
        raise KeyRingError(f"the key id {key_id!r} must be 1-32 letters, digits, '.', '_' or '-'")
    return f"{key_id}:{Fernet.generate_key().decode()}"


def _fernet(key_id: str, key: str | bytes) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, binascii.Error, TypeError):
        raise KeyRingError(
            f"the key {key_id!r} is not a Fernet key (32 bytes, URL-safe base64); "
            "make one with `tidings secrets new-key`"
        ) from None


def parse_entries(text: str) -> list[tuple[str, str]]:
    """``kid:key,kid:key`` (the first seals) as pairs, checked."""
    entries: list[tuple[str, str]] = []
    for index, raw in enumerate(text.split(",")):
        item = raw.strip()
        if not item:
            continue
        key_id, colon, key = item.partition(":")
        if not colon or not KEY_ID.match(key_id) or not key:
            raise KeyRingError(
                f"entry {index + 1} of TIDINGS_SECRETS_KEYS is not '<key id>:<key>' "
                "(key id: 1-32 letters, digits, '.', '_' or '-')"
            )
        if any(key_id == seen for seen, _ in entries):
            raise KeyRingError(f"the key id {key_id!r} appears twice in TIDINGS_SECRETS_KEYS")
        entries.append((key_id, key))
    if not entries:
        raise KeyRingError("TIDINGS_SECRETS_KEYS holds no key")
    return entries


class KeyRing:
    def __init__(self, keys: Sequence[tuple[str, str | bytes]], *, legacy: bytes | None) -> None:
        if not keys:
            raise KeyRingError("a key ring needs at least one key")
        self._keys = {key_id: _fernet(key_id, key) for key_id, key in keys}
        self.current_id = keys[0][0]
        self._current = self._keys[self.current_id]
        self._legacy = _fernet("legacy", legacy) if legacy is not None else None

    @classmethod
    def from_setting(cls, text: str, *, legacy: bytes | None) -> KeyRing:
        return cls(parse_entries(text), legacy=legacy)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def seal(self, secret: str) -> str:
        token = self._current.encrypt(secret.encode()).decode()
        return f"{PREFIX}{self.current_id}:{token}"

    def is_current(self, stored: str) -> bool:
        """Sealed with the sealing key (rotation leaves it as it is)."""
        return stored.startswith(f"{PREFIX}{self.current_id}:")

    def open(self, stored: str) -> str:
        if stored.startswith(PREFIX):
            key_id, colon, token = stored[len(PREFIX) :].partition(":")
            if not colon:
                raise SecretUnavailable("the sealed value is malformed (no key id)")
            fernet = self._keys.get(key_id)
            if fernet is None:
                raise SecretUnavailable(
                    f"it was sealed with key {key_id!r}, which is not in TIDINGS_SECRETS_KEYS"
                )
            return self._decrypt(fernet, token, f"it does not open with key {key_id!r}")
        if stored.startswith(LEGACY_PREFIX):
            if self._legacy is None:
                raise SecretUnavailable("it is in the enc:v1 format and no legacy key is set")
            return self._decrypt(
                self._legacy,
                stored[len(LEGACY_PREFIX) :],
                "it is in the enc:v1 format and does not open with the legacy key "
                "(TIDINGS_SECRETS_KEY, or the one derived from the JWT signing key)",
            )
        if stored.startswith(SEALED_PREFIX):
            raise SecretUnavailable("it is sealed in an unknown format")
        raise SecretUnavailable("it is not sealed")

    def opens(self, stored: str) -> bool:
        try:
            self.open(stored)
        except SecretUnavailable:
            return False
        return True

    def reseal(self, stored: str) -> str | None:
        """The value sealed with the current key, or None when it already is."""
        if self.is_current(stored):
            self.open(stored)  # a corrupt value under the current id is reported too
            return None
        return self.seal(self.open(stored))

    @staticmethod
    def _decrypt(fernet: Fernet, token: str, failure: str) -> str:
        try:
            return fernet.decrypt(token.encode()).decode()
        except (InvalidToken, UnicodeError):
            raise SecretUnavailable(f"{failure} (corrupt, or sealed with another key)") from None
