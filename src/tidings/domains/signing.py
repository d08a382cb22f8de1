"""DKIM signatures on outgoing mail, with dkimpy (protocols.md section 3).

Two signatures per message (dual signing, RFC 8463): ``ed25519-sha256`` and
``rsa-sha256`` (2048-bit), both ``c=relaxed/relaxed`` (dkimpy's default is
relaxed/simple, which breaks at the first relay that re-wraps a body line). ``h=``
lists every header of :data:`SIGNED` the message has, and ``from`` once more than
present (over-signed: a second From added on the way makes the signature fail,
so a forged sender cannot ride on ours). ``List-Unsubscribe`` and
``List-Unsubscribe-Post`` are in :data:`SIGNED`, so whenever they are present
they are signed, which receivers require before offering one-click unsubscribe.

dkimpy computes RSA signatures in pure Python (about 25 ms a message here); the
RSA signature is made with ``cryptography`` instead (:class:`_Signer`), everything
else (canonicalisation, the header hash, the tags) stays dkimpy's.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
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


class _Signer(dkim.DKIM):  # type: ignore[misc]
    """dkimpy's signer with the RSA operation done by ``cryptography``.

    :meth:`gen_header` follows dkimpy 1.1's ``DomainSigner.gen_header`` (hash the
    canonicalised headers with the signature header, sign, fold ``b=``); only the
    RSA call differs."""

    def __init__(self, message: bytes, rsa_key: rsa.RSAPrivateKey) -> None:
        super().__init__(message, linesep=b"\r\n")
        self._rsa_key = rsa_key

    def sign_rsa(self, selector: bytes, domain: bytes, include_headers: list[bytes]) -> bytes:
        """An ``rsa-sha256`` relaxed/relaxed signature header, as dkimpy's ``sign``
        builds it, without dkimpy parsing the PEM key in Python for every message."""
        policy = CanonicalizationPolicy.from_c_value(b"/".join(CANON))
        self.signature_algorithm = b"rsa-sha256"
        self.hasher = hashlib.sha256
        include = tuple(name.lower() for name in include_headers)
        self.include_headers = include
        body_hash = base64.b64encode(hashlib.sha256(policy.canonicalize_body(self.body)).digest())
        fields = [
            (b"v", b"1"),
            (b"a", b"rsa-sha256"),
            (b"c", policy.to_c_value()),
            (b"d", domain),
            (b"i", b"@" + domain),
            (b"q", b"dns/txt"),
            (b"s", selector),
            (b"t", str(int(time.time())).encode("ascii")),
            (b"h", b" : ".join(include)),
            (b"bh", body_hash),
            # dkimpy's placeholder, so b= folds onto its own line.
            (b"b", b"0" * 60),
        ]
        return b"DKIM-Signature: " + self.gen_header(
            fields, include, policy, b"DKIM-Signature", None
        )

    def gen_header(
        self,
        fields: list[tuple[bytes, bytes]],
        include_headers: Any,
        canon_policy: Any,
        header_name: bytes,
        pk: Any,
        standardize: bool = False,
    ) -> bytes:
        if self.signature_algorithm != b"rsa-sha256" or standardize:
            return bytes(
                super().gen_header(
                    fields, include_headers, canon_policy, header_name, pk, standardize
                )
            )
        header_value = b"; ".join(b"=".join(x) for x in fields)
        header_value = fold(header_value, namelen=len(header_name), linesep=b"\r\n")
        header_value = dkim.RE_BTAG.sub(b"\\1", header_value)
        header = (header_name, b" " + header_value)
        hashed = HashThrough(self.hasher(), self.debug_content)
        headers = canon_policy.canonicalize_headers(self.headers)
        self.signed_headers = hash_headers(
            hashed, canon_policy, headers, include_headers, header, dict(fields)
        )
        signature = self._rsa_key.sign(
            hashed.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256())
        )
        index = next(i for i, field in enumerate(fields) if field[0] == b"b")
        fields[index] = (b"b", base64.b64encode(signature))
        header_value = b"; ".join(b"=".join(x) for x in fields) + self.linesep
        return bytes(fold(header_value, namelen=len(header_name), linesep=self.linesep))


def sign(data: bytes, keys: SigningKeys) -> bytes:
    """The message with its two DKIM-Signature headers prepended (CRLF line ends)."""
    signer = _Signer(data, _rsa_key(keys.rsa_private_pem))
    present = {name.decode("ascii", "replace").lower() for name, _ in signer.headers}
    headers = [name.encode() for name in signed_headers(present)]
    domain = keys.domain.encode()
    rsa_header = signer.sign_rsa(keys.rsa_selector.encode(), domain, headers)
    ed_header = signer.sign(
        keys.ed25519_selector.encode(),
        domain,
        keys.ed25519_seed.encode(),
        signature_algorithm=b"ed25519-sha256",
        canonicalize=CANON,
        include_headers=headers,
    )
    return bytes(ed_header) + rsa_header + data
