"""Transport security: who really connected, over what, and refusing plain HTTP.

:class:`TransportSecurityMiddleware` is the one place that decides the effective
scheme and client address of a request (spec api-v4 section 3, "HTTPS"):

- ``X-Forwarded-Proto`` / ``X-Forwarded-For`` are honoured only when the TCP peer
  is one of the configured trusted proxies; everyone else's forwarded headers are
  ignored, so a client cannot claim to have used HTTPS or to be somebody else.
- A plain-HTTP request is refused with 403 ``https_required`` unless it comes from
  this machine (loopback), directly or as the client a trusted proxy reports, or asks
  for one of the ``open_paths`` (health, readiness and metrics: load balancers and
  monitoring probe them over plain HTTP). The refusal says how to get HTTPS when this
  server has none configured, rather than naming an ``https://`` URL that does not exist.
- Every HTTPS answer carries ``Strict-Transport-Security``.

Run uvicorn with ``proxy_headers=False`` (``--no-proxy-headers``) when this
middleware is installed: otherwise uvicorn's own ``ProxyHeadersMiddleware``
rewrites the client first, with its own idea of which peers to trust.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache
from typing import NamedTuple

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.http.problems import problem_response

log = logging.getLogger("tidings.http.transport")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SECURE_PROTOS = frozenset({"https", "wss"})
_KNOWN_PROTOS = frozenset({"http", "https", "ws", "wss"})
_HSTS_NAME = b"strict-transport-security"
# No IP literal is longer than this (IPv6 with an embedded IPv4 and a zone id);
# longer strings are junk and must not pin large keys in the lookup cache.
_MAX_ADDRESS_LENGTH = 64
# RFC 6455 "policy violation": the closest WebSocket code to "use wss://".
_WS_POLICY_VIOLATION = 1008


class _Peer(NamedTuple):
    """What the middleware knows about one address string."""

    host: str  # canonical form (IPv4-mapped IPv6 unwrapped); the input if not an IP
    trusted: bool  # a configured trusted proxy
    loopback: bool  # this machine


def _parse_address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # Dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d; treat them as the
    # IPv4 address they are so that "127.0.0.1" or "10.0.0.0/8" still match.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _parse_network(text: str) -> IPNetwork:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"trusted proxy {text!r} is not an IP address or CIDR network "
            "(examples: 10.0.0.5, 10.0.0.0/8, ::1, fd00::/8)"
        ) from None
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def _split_host_port(entry: str) -> tuple[str, int]:
    """Split one ``X-Forwarded-For`` entry: ``a.b.c.d``, ``a.b.c.d:p``, ``v6``, ``[v6]:p``."""
    if entry.startswith("["):
        end = entry.find("]")
        if end != -1:
            host, rest = entry[1:end], entry[end + 1 :]
            port = rest[1:] if rest.startswith(":") else ""
            return host, int(port) if port.isdigit() else 0
        return entry, 0
    if entry.count(":") == 1:  # IPv4 with port; bare IPv6 has several colons
        host, port = entry.split(":")
        return host, int(port) if port.isdigit() else 0
    return entry, 0


def _last_token(values: list[bytes]) -> str:
    """The last comma-separated value over all header lines (the nearest hop's)."""
    joined = b",".join(values).decode("latin-1")
    for token in reversed(joined.split(",")):
        token = token.strip()
        if token:
            return token
    return ""


class TransportSecurityMiddleware:
    """Resolve the effective scheme and client, refuse plain HTTP, add HSTS.

    ``trusted_proxies`` holds IP addresses and CIDR networks (IPv4 or IPv6); ``"*"``
    trusts every peer, which is only safe when nothing but the proxy can reach the
    server. A request without a peer address (a Unix socket) is treated like one
    from loopback.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: list[str],
        hsts_max_age: int,
        open_paths: frozenset[str] = frozenset(),
        tls_configured: bool = True,
    ) -> None:
        if hsts_max_age < 0:
            raise ValueError("hsts_max_age must be 0 or more seconds")
        self.app = app
        self._open_paths = open_paths
        self._tls_configured = tls_configured
        self._trust_all = False
        addresses: set[IPAddress] = set()
        networks: list[IPNetwork] = []
        for raw in trusted_proxies:
            entry = raw.strip()
            if not entry:
                continue
            if entry == "*":
                self._trust_all = True
                continue
            network = _parse_network(entry)
            # Single hosts go in a set: one hash lookup instead of a scan.
            if network.num_addresses == 1:
                addresses.add(network.network_address)
            else:
                networks.append(network)
        self._trusted_addresses = frozenset(addresses)
        self._trusted_networks = tuple(networks)
        self._hsts = (
            _HSTS_NAME,
            f"max-age={hsts_max_age}; includeSubDomains".encode("latin-1"),
        )
        # The same few addresses (proxies, busy clients) come back on every request.
        self._lookup = lru_cache(maxsize=4096)(self._classify)
        self._unix_peer = _Peer("", self._is_trusted(ipaddress.IPv4Address("127.0.0.1")), True)

    def _is_trusted(self, address: IPAddress) -> bool:
        return (
            self._trust_all
            or address in self._trusted_addresses
            or any(address in network for network in self._trusted_networks)
        )

    def _classify(self, host: str) -> _Peer:
        address = _parse_address(host)
        if address is None:
            return _Peer(host, False, False)
        return _Peer(str(address), self._is_trusted(address), address.is_loopback)

    def _peer(self, host: str) -> _Peer:
        if len(host) > _MAX_ADDRESS_LENGTH:
            return _Peer(host, False, False)
        return self._lookup(host)

    def _forwarded_client(self, values: list[bytes]) -> tuple[_Peer, int] | None:
        """The client a chain of trusted proxies vouches for.

        Each proxy appends the address it saw, so walk from the right and stop at
        the first hop that is not one of ours: everything left of it was written
        by that untrusted party. If every hop is trusted, the leftmost one is the
        client (for example a tool on the proxy's own machine).
        """
        found: tuple[_Peer, int] | None = None
        for entry in reversed(b",".join(values).decode("latin-1").split(",")):
            entry = entry.strip()
            if not entry:
                continue
            host, port = _split_host_port(entry)
            peer = self._peer(host)
            found = (peer, port)
            if not peer.trusted:
                break
        return found

    def _resolve(self, scope: Scope) -> tuple[bool, bool]:
        """Rewrite ``scope`` scheme/client; answer (is secure, is allowed)."""
        websocket = scope["type"] == "websocket"
        secure = scope.get("scheme", "ws" if websocket else "http") in _SECURE_PROTOS
        client = scope.get("client")
        if client:
            peer = self._peer(client[0])
            if peer.host != client[0]:
                scope["client"] = (peer.host, client[1])
        else:
            peer = self._unix_peer
        if not peer.trusted:
            return secure, secure or peer.loopback

        protos: list[bytes] = []
        forwarded_for: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"x-forwarded-proto":
                protos.append(value)
            elif name == b"x-forwarded-for":
                forwarded_for.append(value)
        if not protos and not forwarded_for:
            # A trusted address talking to us directly, not proxying anyone.
            return secure, secure or peer.loopback

        if protos:
            proto = _last_token(protos).lower()
            if proto in _KNOWN_PROTOS:
                secure = proto in _SECURE_PROTOS
                if websocket:
                    scope["scheme"] = "wss" if secure else "ws"
                else:
                    scope["scheme"] = "https" if secure else "http"
        forwarded = self._forwarded_client(forwarded_for) if forwarded_for else None
        if forwarded is None:
            # The proxy did not say who the client is, so it may be anyone:
            # plain HTTP cannot be shown to come from this machine.
            return secure, secure
        client_peer, port = forwarded
        scope["client"] = (client_peer.host, port)
        return secure, secure or client_peer.loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        secure, allowed = self._resolve(scope)
        if not allowed and scope["path"] not in self._open_paths:
            log.debug("refused plain %s from %s", kind, scope.get("client"))
            if kind == "http":
                await self._refuse_http(scope, receive, send)
            else:
                await self._refuse_websocket(receive, send)
            return
        if secure and kind == "http":
            await self.app(scope, receive, self._with_hsts(send))
        else:
            await self.app(scope, receive, send)

    def _with_hsts(self, send: Send) -> Send:
        hsts = self._hsts

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                # A route that sets its own policy (e.g. max-age=0 to undo HSTS) wins.
                if not any(name.lower() == _HSTS_NAME for name, _ in headers):
                    headers.append(hsts)
                message["headers"] = headers
            await send(message)

        return send_with_hsts

    async def _refuse_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = ""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")[:255]
                break
        if self._tls_configured:
            # ``path`` already includes any ``root_path`` (ASGI spec).
            target = f"https://{host}{scope['path']}" if host else "https://"
            detail = f"Use {target} instead; plain HTTP is only accepted from this machine."
        else:
            detail = (
                "Plain HTTP is only accepted from this machine, and this server has no TLS "
                "configured. Serve HTTPS with `tidings serve --tls-cert FILE --tls-key FILE` "
                "(TIDINGS_TLS_CERT_FILE, TIDINGS_TLS_KEY_FILE), or terminate TLS at a reverse "
                "proxy that sends X-Forwarded-Proto and list its address in "
                "TIDINGS_TRUSTED_PROXIES."
            )
        response = problem_response(403, "https_required", detail)
        await response(scope, receive, send)

    async def _refuse_websocket(self, receive: Receive, send: Send) -> None:
        # Closing before accepting rejects the handshake; the server turns it into 403.
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send(
            {
                "type": "websocket.close",
                "code": _WS_POLICY_VIOLATION,
                "reason": "https_required: use wss://",
            }
        )
