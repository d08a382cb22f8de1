"""Secrets that must exist but have no default in code.

The JWT signing key comes from ``TIDINGS_JWT_SECRET``, or else is generated once
(32 random bytes) and kept in ``<data dir>/jwt-secret`` with owner-only
permissions, so that restarts keep issued tokens valid.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from tidings.settings import Settings

MIN_SECRET_BYTES = 32


def _read_or_create(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole to a private file, then linked into place: a process starting
        # beside this one either sees no key or the complete key, never a partial one.
        value = secrets.token_bytes(MIN_SECRET_BYTES)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(value).decode() + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return base64.b64decode(path.read_text().strip())


def jwt_signing_key(settings: Settings) -> bytes:
    if settings.jwt_secret is not None:
        value = settings.jwt_secret.get_secret_value().encode()
        if len(value) < MIN_SECRET_BYTES:
            raise ValueError(
                f"TIDINGS_JWT_SECRET must be at least {MIN_SECRET_BYTES} characters long"
            )
        return value
    return _read_or_create(settings.data_dir / "jwt-secret")
