"""DKIM signatures on outgoing mail, with dkimpy (protocols.md section 3).

Two signatures per message (dual signing, RFC 8463): ``ed25519-sha256`` and
``rsa-sha256`` (2048-bit), both ``c=relaxed/relaxed`` (dkimpy's default is
relaxed/simple, which breaks at the first relay that re-wraps a body line). ``h=``
lists every header of :data:`SIGNED` the message has, and ``from`` once more than
present (over-signed: a second From added on the way makes the signature fail,
so a forged sender cannot ride on ours). ``List-Unsubscribe`` and
``List-Unsubscribe-Post`` are in :data:`SIGNED`, so whenever they are present
they are signed, which receivers require before offering one-click unsubscribe.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesHeaderParser

import dkim

SIGNED = (
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
    "x-tidings-message-id",
)
CANON = (b"relaxed", b"relaxed")


@dataclass(frozen=True, slots=True)
class SigningKeys:
    domain: str
    selector: str
    rsa_private_pem: str
    ed25519_seed: str

    @property
    def rsa_selector(self) -> str:
        return f"{self.selector}-rsa"

    @property
    def ed25519_selector(self) -> str:
        return f"{self.selector}-ed"


def signed_headers(data: bytes) -> list[str]:
    """The ``h=`` list for this message: those of :data:`SIGNED` present, From twice."""
    present = {name.lower() for name in BytesHeaderParser().parsebytes(data)}
    names = [name for name in SIGNED if name in present]
    return [*names, "from"]


def sign(data: bytes, keys: SigningKeys) -> bytes:
    """The message with its two DKIM-Signature headers prepended (CRLF line ends)."""
    headers = [name.encode() for name in signed_headers(data)]
    domain = keys.domain.encode()
    rsa = dkim.sign(
        data,
        keys.rsa_selector.encode(),
        domain,
        keys.rsa_private_pem.encode(),
        canonicalize=CANON,
        signature_algorithm=b"rsa-sha256",
        include_headers=headers,
    )
    ed = dkim.sign(
        data,
        keys.ed25519_selector.encode(),
        domain,
        keys.ed25519_seed.encode(),
        canonicalize=CANON,
        signature_algorithm=b"ed25519-sha256",
        include_headers=headers,
    )
    return bytes(ed) + bytes(rsa) + data
