"""VERP return paths: ``b-<message id>-<signature>@<bounce domain>``.

The signature is the first 8 bytes of HMAC-SHA256 over the message id, with a key
derived from the deployment's signing key (``HMAC(key, "tidings-verp")``), in
lower-case base32 (13 characters): a bounce names its message, and an address
nobody signed is refused at ``RCPT`` by the listener, so no one can make Tidings
mark someone else's message bounced (or send backscatter). Local parts are compared
case-insensitively: some MTAs lower-case them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

KEY_LABEL = b"tidings-verp"
_LOCAL = re.compile(r"b-(msg_[0-9a-z]{26})-([a-z2-7]{13})", re.IGNORECASE)


class Verp:
    def __init__(self, signing_key: bytes, domain: str) -> None:
        self._key = hmac.new(signing_key, KEY_LABEL, hashlib.sha256).digest()
        self.domain = domain.lower().rstrip(".")

    def _signature(self, message_id: str) -> str:
        mac = hmac.new(self._key, message_id.upper().encode(), hashlib.sha256).digest()[:8]
        return base64.b32encode(mac).decode().rstrip("=").lower()

    def address(self, message_id: str) -> str:
        return f"b-{message_id}-{self._signature(message_id)}@{self.domain}"

    def message_of(self, address: str) -> str | None:
        """The message id an address names, or None when it is not one we signed."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or domain.lower().rstrip(".") != self.domain:
            return None
        match = _LOCAL.fullmatch(local)
        if match is None:
            return None
        message_id = "msg_" + match.group(1)[4:].upper()
        if not hmac.compare_digest(self._signature(message_id), match.group(2).lower()):
            return None
        return message_id
