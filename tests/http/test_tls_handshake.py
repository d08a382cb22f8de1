"""Real TLS handshakes against uvicorn started with ``uvicorn_tls_options``.

A trustme CA signs a certificate for 127.0.0.1; uvicorn serves it on a socket
bound to 127.0.0.1 in a background thread. TLS 1.1 must be refused by the server,
TLS 1.2 and 1.3 accepted, and HTTPS answers carry HSTS.
"""

from __future__ import annotations

import pickle
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
import uvicorn
from fastapi import FastAPI, Request

from tidings.http.tls import tls12_context_factory, uvicorn_tls_options
from tidings.http.transport import TransportSecurityMiddleware

HOST = "127.0.0.1"
TIMEOUT = 5.0
SERVER_REFUSALS = {"TLSV1_ALERT_PROTOCOL_VERSION", "UNEXPECTED_EOF_WHILE_READING"}


@dataclass(frozen=True)
class Files:
    ca: trustme.CA
    cert: Path
    key: Path


@dataclass(frozen=True)
class RunningServer:
    port: int
    ca: trustme.CA


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    ca = trustme.CA()
    issued = ca.issue_cert(HOST, "localhost")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(cert), append=True)
    issued.private_key_pem.write_to_path(str(key))
    return Files(ca, cert, key)


def _app() -> TransportSecurityMiddleware:
    app = FastAPI()

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, str]:
        return {"scheme": request.url.scheme}

    return TransportSecurityMiddleware(app, trusted_proxies=[], hsts_max_age=31536000)


@pytest.fixture(scope="module")
def server(files: Files) -> Iterator[RunningServer]:
    # Bind first and hand uvicorn the socket: no window in which another process
    # could take a "free" port between probing and listening.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        _app(),
        host=HOST,
        port=port,
        lifespan="off",
        log_level="warning",
        # The transport middleware decides about forwarded headers, not uvicorn.
        proxy_headers=False,
        **uvicorn_tls_options(files.cert, files.key),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            pytest.fail("uvicorn did not start within the timeout")
        time.sleep(0.02)
    try:
        yield RunningServer(port, files.ca)
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop within the timeout"


def _client_context(ca: trustme.CA, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    context.minimum_version = context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        # At OpenSSL 3's default security level the client would not even offer
        # TLS 1.1 (no ciphers allowed); level 0 makes it really offer 1.1, so that
        # a failure below is the server refusing it.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def _handshake(port: int, context: ssl.SSLContext) -> str | None:
    with (
        socket.create_connection((HOST, port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        return tls.version()


def _tls11() -> ssl.TLSVersion:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ssl.TLSVersion.TLSv1_1


def test_tls_1_1_client_is_refused_by_the_server(server: RunningServer) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = _client_context(server.ca, _tls11())
    with pytest.raises(ssl.SSLError) as excinfo:
        _handshake(server.port, context)
    # The server refused: either its protocol_version alert arrives, or (as with
    # asyncio's and uvloop's TLS transports) it drops the connection before the
    # alert is flushed. A client that never offered 1.1 would fail with
    # NO_CIPHERS_AVAILABLE / NO_PROTOCOLS_AVAILABLE before sending anything.
    assert excinfo.value.reason in SERVER_REFUSALS


def test_same_tls_1_1_client_works_against_a_permissive_server(files: Files) -> None:
    """Control: proves the client above really offers TLS 1.1 on this OpenSSL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(files.cert, files.key)
        server_context.minimum_version = _tls11()
        server_context.set_ciphers("DEFAULT:@SECLEVEL=0")
        client_context = _client_context(files.ca, _tls11())
    listener = socket.create_server((HOST, 0))
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]
    outcome: list[str | None] = []

    def accept_one() -> None:
        try:
            conn, _ = listener.accept()
            conn.settimeout(TIMEOUT)
            with server_context.wrap_socket(conn, server_side=True) as tls:
                outcome.append(tls.version())
        except (OSError, ssl.SSLError):
            outcome.append(None)

    thread = threading.Thread(target=accept_one, daemon=True)
    thread.start()
    try:
        try:
            version = _handshake(port, client_context)
        except ssl.SSLError as exc:
            pytest.skip(f"this OpenSSL cannot negotiate TLS 1.1 at all ({exc.reason})")
        assert version == "TLSv1.1"
    finally:
        thread.join(TIMEOUT)
        listener.close()


@pytest.mark.parametrize(
    ("version", "expected"),
    [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")],
)
def test_tls_1_2_and_1_3_clients_succeed(
    server: RunningServer, version: ssl.TLSVersion, expected: str
) -> None:
    assert _handshake(server.port, _client_context(server.ca, version)) == expected


def test_https_get_verifies_and_carries_hsts(server: RunningServer) -> None:
    context = ssl.create_default_context()
    server.ca.configure_trust(context)
    # trust_env=False: never route this through a proxy from the environment.
    with httpx.Client(verify=context, trust_env=False, timeout=TIMEOUT) as client:
        response = client.get(f"https://{HOST}:{server.port}/echo")
    assert response.status_code == 200
    assert response.json() == {"scheme": "https"}
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


def test_untrusted_certificate_is_rejected(server: RunningServer) -> None:
    with (
        httpx.Client(verify=ssl.create_default_context(), trust_env=False, timeout=TIMEOUT) as c,
        pytest.raises(httpx.ConnectError),
    ):
        c.get(f"https://{HOST}:{server.port}/echo")


def test_options_for_plain_http_are_empty() -> None:
    assert uvicorn_tls_options(None, None) == {}


def test_options_name_the_files_and_the_factory(files: Files) -> None:
    options = uvicorn_tls_options(files.cert, files.key)
    assert options == {
        "ssl_certfile": str(files.cert),
        "ssl_keyfile": str(files.key),
        "ssl_context_factory": tls12_context_factory,
    }
    config = uvicorn.Config(FastAPI(), **options)
    config.load()
    assert config.ssl is not None
    assert config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2


def test_factory_pickles_for_worker_processes() -> None:
    # Our own bytes, just written: nothing untrusted is unpickled.
    assert pickle.loads(pickle.dumps(tls12_context_factory)) is tls12_context_factory  # noqa: S301


def test_only_one_of_cert_and_key_is_an_error(files: Files) -> None:
    with pytest.raises(ValueError, match="only the certificate was given"):
        uvicorn_tls_options(files.cert, None)
    with pytest.raises(ValueError, match="only the private key was given"):
        uvicorn_tls_options(None, files.key)


def test_missing_file_is_an_error(files: Files, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"certificate file .* does not exist"):
        uvicorn_tls_options(tmp_path / "nope.pem", files.key)
    with pytest.raises(ValueError, match=r"private key file .* does not exist"):
        uvicorn_tls_options(files.cert, tmp_path / "nope.pem")


def test_mismatched_key_is_an_error(files: Files, tmp_path: Path) -> None:
    other_key = tmp_path / "other.key.pem"
    files.ca.issue_cert("other.test").private_key_pem.write_to_path(str(other_key))
    with pytest.raises(ValueError, match="cannot load the TLS certificate"):
        uvicorn_tls_options(files.cert, other_key)


def test_pinned_protocol_version_is_refused(files: Files) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        config = uvicorn.Config(
            FastAPI(),
            ssl_version=ssl.PROTOCOL_TLSv1,
            **uvicorn_tls_options(files.cert, files.key),
        )
        with pytest.raises(ValueError, match="pins a single TLS version"):
            config.load()
