"""TLS termination by uvicorn itself: TLS 1.2 or newer, never older.

uvicorn has no "minimum TLS version" option, only ``ssl_context_factory``
(uvicorn >= 0.47). :func:`tls12_context_factory` is that hook, and
:func:`uvicorn_tls_options` turns the configured certificate and key into the
keyword arguments for ``uvicorn.run`` / ``uvicorn.Config``.

When a trusted proxy terminates TLS instead, none of this is used; see
:mod:`tidings.http.transport` for how such requests are recognised.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn


def tls12_context_factory(
    config: uvicorn.Config, default_factory: Callable[[], ssl.SSLContext]
) -> ssl.SSLContext:
    """Build the server context uvicorn would, with TLS 1.0/1.1 switched off.

    Top-level (not a closure) so that it pickles: uvicorn hands the config to
    worker processes with ``--workers`` and ``--reload``.
    """
    if not config.ssl_certfile:
        raise ValueError("TLS needs a certificate file: set ssl_certfile (TIDINGS_TLS_CERT_FILE)")
    # The default factory loads cert, key, key password, ciphers and the ALPN
    # protocols of the chosen HTTP implementation; only the floor is ours.
    context = default_factory()
    try:
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    except ValueError:
        # Raised for contexts pinned to one protocol version (ssl_version=PROTOCOL_TLSv1...).
        raise ValueError(
            f"ssl_version={config.ssl_version} pins a single TLS version; "
            "leave it at the default (PROTOCOL_TLS_SERVER) so TLS 1.2 and 1.3 can be offered"
        ) from None
    return context


def _refuse_password_prompt() -> bytes:
    # Without a callback OpenSSL would block on the terminal asking for the key's
    # passphrase; an empty one makes an encrypted key fail fast instead.
    return b""


def uvicorn_tls_options(cert: Path | None, key: Path | None) -> dict[str, Any]:
    """Keyword arguments enabling TLS >= 1.2 in uvicorn, or ``{}`` for plain HTTP.

    Checks that both files exist and load together, so that a wrong path or a
    mismatched key is reported at startup in words rather than as an OpenSSL trace.
    """
    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        given, missing = (
            ("certificate", "private key") if key is None else ("private key", "certificate")
        )
        raise ValueError(
            f"TLS needs both a certificate (TIDINGS_TLS_CERT_FILE) and a private key "
            f"(TIDINGS_TLS_KEY_FILE); only the {given} was given, set the {missing} too"
        )
    for label, path in (("certificate", cert), ("private key", key)):
        if not path.is_file():
            raise ValueError(f"TLS {label} file {path} does not exist or is not a file")
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_cert_chain(cert, key, password=_refuse_password_prompt)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"cannot load the TLS certificate {cert} with the private key {key}: {exc}. "
            "Both must be PEM, the key must match the certificate and must not be encrypted"
        ) from None
    return {
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
        "ssl_context_factory": tls12_context_factory,
    }
