"""DKIM key pairs: RSA-2048 (PKCS#8 PEM) and Ed25519 (RFC 8463: the 32-byte seed,
base64, as dkimpy signs with it), and the ``p=`` values of their DNS records."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class DomainKeys:
    rsa_private_pem: str
    rsa_public: str  # base64 SubjectPublicKeyInfo
    ed25519_seed: str  # base64 of the 32-byte private key
    ed25519_public: str  # base64 of the 32-byte public key


def new_keys() -> DomainKeys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    rsa_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    rsa_public = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ed_key = ed25519.Ed25519PrivateKey.generate()
    seed = ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    ed_public = ed_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return DomainKeys(
        rsa_private_pem=rsa_pem,
        rsa_public=base64.b64encode(rsa_public).decode(),
        ed25519_seed=base64.b64encode(seed).decode(),
        ed25519_public=base64.b64encode(ed_public).decode(),
    )


def new_selector() -> str:
    """``td`` and six random characters: a new key never collides with an old one."""
    return "td" + secrets.token_hex(3)


def rsa_record(public: str) -> str:
    return f"v=DKIM1; k=rsa; p={public}"


def ed25519_record(public: str) -> str:
    return f"v=DKIM1; k=ed25519; p={public}"
