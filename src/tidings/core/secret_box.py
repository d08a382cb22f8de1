"""Secrets at rest (webhook signing secrets, provider credentials): sealed with
Fernet (AES-128-CBC + HMAC-SHA256, from the cryptography package).

The key is ``TIDINGS_SECRETS_KEY`` (a Fernet key) or, when unset, derived from
the JWT signing key, so a default deployment needs no extra setting and a
database copied elsewhere does not carry usable secrets. Sealed values start
with ``enc:v1:``; anything else is read as it is (rows written before sealing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "enc:v1:"


class SecretBox:
    def __init__(self, fernet_key: bytes) -> None:
        self._fernet = Fernet(fernet_key)

    @classmethod
    def derived_from(cls, signing_key: bytes) -> SecretBox:
        digest = hmac.new(signing_key, b"tidings-secrets-at-rest", hashlib.sha256).digest()
        return cls(base64.urlsafe_b64encode(digest))

    def seal(self, secret: str) -> str:
        return PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise ValueError("a stored secret cannot be opened with this key") from None
