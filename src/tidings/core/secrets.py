"""Secrets that must exist but have no default in code.

The JWT signing key comes from ``TIDINGS_JWT_SECRET``, or else is generated once
(32 random bytes) and kept in ``<data dir>/jwt-secret`` with owner-only
permissions, so that restarts keep issued tokens valid.

The key ring that seals secrets at rest comes from ``TIDINGS_SECRETS_KEYS`` alone:
a start without it is refused, except the demo (``tidings serve --demo``, which
``make run`` uses), which generates one entry once and keeps it in
``<data dir>/secrets-keys`` the same way.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from tidings.core.key_ring import KeyRing, KeyRingError, derived_legacy_key, new_key_entry
from tidings.settings import Settings

MIN_SECRET_BYTES = 32
DEMO_KEYS_FILE = "secrets-keys"

MISSING_KEYS = (
    "TIDINGS_SECRETS_KEYS is not set: it holds the keys that seal webhook secrets and "
    "provider credentials at rest. Make one with `tidings secrets new-key` and set "
    "TIDINGS_SECRETS_KEYS to the line it prints (the same value in every process), "
    "then start again. Only `tidings serve --demo` (make run) makes its own."
)


class SecretsKeysMissing(KeyRingError):
    """No key ring is configured, and this is not the demo."""


def _read_or_create_text(path: Path, make: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole to a private file, then linked into place: a process starting
        # beside this one either sees no key or the complete key, never a partial one.
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def _read_or_create(path: Path) -> bytes:
    made = base64.b64encode(secrets.token_bytes(MIN_SECRET_BYTES)).decode()
    return base64.b64decode(_read_or_create_text(path, made))


def jwt_signing_key(settings: Settings) -> bytes:
    if settings.jwt_secret is not None:
        value = settings.jwt_secret.get_secret_value().encode()
        if len(value) < MIN_SECRET_BYTES:
            raise ValueError(
                f"TIDINGS_JWT_SECRET must be at least {MIN_SECRET_BYTES} characters long"
            )
        return value
    return _read_or_create(settings.data_dir / "jwt-secret")


def demo_secrets_keys(settings: Settings) -> str:
    """The demo's ``TIDINGS_SECRETS_KEYS`` value, made once in the data directory."""
    return _read_or_create_text(settings.data_dir / DEMO_KEYS_FILE, new_key_entry("demo"))


def secrets_key_ring(settings: Settings, signing_key: bytes) -> KeyRing:
    """The ring from ``TIDINGS_SECRETS_KEYS``, with the legacy key that opens the
    ``enc:v1:`` values sealed before key ids existed."""
    if settings.secrets_keys is None:
        raise SecretsKeysMissing(MISSING_KEYS)
    legacy = (
        settings.secrets_key.get_secret_value().encode()
        if settings.secrets_key is not None
        else derived_legacy_key(signing_key)
    )
    return KeyRing.from_setting(settings.secrets_keys.get_secret_value(), legacy=legacy)
