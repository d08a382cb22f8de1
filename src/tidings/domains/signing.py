"""DKIM signatures on outgoing mail, with dkimpy (protocols.md section 3).

Two signatures per message (dual signing, RFC 8463): ``ed25519-sha256`` and
``rsa-sha256`` (2048-bit), both ``c=relaxed/relaxed`` (dkimpy's default is
relaxed/simple, which breaks at the first relay that re-wraps a body line). ``h=``
lists every header of :data:`SIGNED` the message has, and ``from`` once more than
present (over-signed: a second From added on the way makes the signature fail,
so a forged sender cannot ride on ours). ``List-Unsubscribe`` and
``List-Unsubscribe-Post`` are in :data:`SIGNED`, so whenever they are present
they are signed, which receivers require before offering one-click unsubscribe.

dkimpy computes RSA signatures in pure Python (about 25 ms a message here), and
its ``sign`` parses the key, canonicalises the body and the headers anew for each
signature. Here (:class:`_Signer`) the message is parsed once, its body
canonicalised and hashed once for both signatures, and both are made with
``cryptography`` from keys parsed once per process (:func:`_rsa_key`,
:func:`_ed25519_key`: PEM and seed parsing cost more than the Ed25519 signature
itself); dkimpy still does the canonicalisation, the header hash and the folding,
and verifies what is made (the tests).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim import HashThrough, fold, hash_headers
from dkim.canonicalization import CanonicalizationPolicy

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


def signed_headers(present: set[str]) -> list[str]:
    """The ``h=`` list for a message with these headers: those of :data:`SIGNED`
    present, and ``from`` once more (over-signed)."""
    names = [name for name in SIGNED if name in present]
    return [*names, "from"]


@functools.lru_cache(maxsize=256)
def _rsa_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


@functools.lru_cache(maxsize=256)
def _ed25519_key(seed: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed))


class _Signer(dkim.DKIM):  # type: ignore[misc]
    """One message, parsed once, signed with both keys.

    :meth:`signature` follows dkimpy 1.1's ``DKIM.sign`` and
    ``DomainSigner.gen_header`` (the tags, hash the canonicalised headers with the
    signature header, sign, fold ``b=``); the body hash is computed once and the
    signing is ``cryptography``'s."""

    def __init__(self, message: bytes) -> None:
        super().__init__(message, linesep=b"\r\n")
        self._policy = CanonicalizationPolicy.from_c_value(b"/".join(CANON))
        self._body_hash = base64.b64encode(
            hashlib.sha256(self._policy.canonicalize_body(self.body)).digest()
        )
        # The headers canonicalised once, for every signature.
        self._canonical = self._policy.canonicalize_headers(self.headers)

    def signature(
        self,
        algorithm: bytes,
        selector: bytes,
        domain: bytes,
        include: tuple[bytes, ...],
        make: Callable[[bytes], bytes],
        timestamp: int,
    ) -> bytes:
        """A ``DKIM-Signature`` header (CRLF-terminated); ``make`` signs the digest."""
        fields = [
            (b"v", b"1"),
            (b"a", algorithm),
            (b"c", self._policy.to_c_value()),
            (b"d", domain),
            (b"i", b"@" + domain),
            (b"q", b"dns/txt"),
            (b"s", selector),
            (b"t", str(timestamp).encode("ascii")),
            (b"h", b" : ".join(include)),
            (b"bh", self._body_hash),
            # dkimpy's placeholder, so b= folds onto its own line.
            (b"b", b"0" * 60),
        ]
        name = b"DKIM-Signature"
        value = fold(b"; ".join(b"=".join(x) for x in fields), namelen=len(name), linesep=CRLF)
        value = dkim.RE_BTAG.sub(b"\\1", value)
        hashed = HashThrough(hashlib.sha256(), self.debug_content)
        hash_headers(
            hashed, self._policy, self._canonical, include, (name, b" " + value), dict(fields)
        )
        fields[-1] = (b"b", base64.b64encode(make(hashed.digest())))
        value = b"; ".join(b"=".join(x) for x in fields) + CRLF
        return name + b": " + bytes(fold(value, namelen=len(name), linesep=CRLF))


CRLF = b"\r\n"


def sign(data: bytes, keys: SigningKeys, *, timestamp: int | None = None) -> bytes:
    """The message with its two DKIM-Signature headers prepended (CRLF line ends).
    ``timestamp`` is the signatures' ``t=`` (now when not given); with it given, the
    result is a pure function of the arguments (both signature schemes are
    deterministic), so a message signed in another process is byte for byte the one
    signed here."""
    signer = _Signer(data)
    present = {name.decode("ascii", "replace").lower() for name, _ in signer.headers}
    include = tuple(name.encode() for name in signed_headers(present))
    domain = keys.domain.encode()
    if timestamp is None:
        timestamp = int(time.time())
    rsa_key = _rsa_key(keys.rsa_private_pem)
    ed_key = _ed25519_key(keys.ed25519_seed)

    def rsa_sign(digest: bytes) -> bytes:
        return rsa_key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))

    ed_header = signer.signature(
        b"ed25519-sha256", keys.ed25519_selector.encode(), domain, include, ed_key.sign, timestamp
    )
    rsa_header = signer.signature(
        b"rsa-sha256", keys.rsa_selector.encode(), domain, include, rsa_sign, timestamp
    )
    return ed_header + rsa_header + data
