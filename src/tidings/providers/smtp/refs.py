"""How the ``smtp`` kind names what it sent: one provider id per recipient, and the
xtext encoding of the DSN parameters (RFC 3461 section 4)."""

from __future__ import annotations

import hashlib

MAX_REF = 191


def ref_id(message_id: str, address: str) -> str:
    """``<message id>:<address, lower-cased>``: what ``send`` returns for a recipient
    and what a DSN's ``Final-Recipient`` (with the VERP's message id) is matched by.
    An address too long for the column is named by its hash instead."""
    address = address.strip().lower()
    plain = f"{message_id}:{address}"
    if len(plain) <= MAX_REF:
        return plain
    return f"{message_id}:#{hashlib.sha256(address.encode()).hexdigest()[:40]}"


def xtext(value: str) -> str:
    """RFC 3461 xtext: ``+``, ``=`` and anything outside ``!``..``~`` as ``+HH``."""
    out = []
    for byte in value.encode("utf-8"):
        if 33 <= byte <= 126 and byte not in (ord("+"), ord("=")):
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    return "".join(out)
