"""The SSRF guard for webhook URLs: scheme, then every resolved address.

Production requires HTTPS and refuses loopback, private, link-local, carrier-grade
NAT, multicast, unspecified, reserved and cloud-metadata addresses, IPv4 or IPv6
(IPv4-mapped and NAT64 forms are unwrapped first). The sandbox allows loopback and
private networks by default, for local development. Cloud-metadata, multicast and
unspecified addresses are refused everywhere.

The check runs at create and before each delivery, and the delivery connects to
the address that was checked (:func:`pinned_request`), so a name that changes its
answer between the check and the connection (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from tidings.core.environments import Environment
from tidings.settings import WebhookSettings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("fd00:ec2::254"),
    }
)


class UnsafeUrl(Exception):
    """A webhook URL the policy refuses; the message says why (no secrets in it)."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _unwrap(address: IpAddress) -> IpAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def refusal(address: IpAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not be connected to, or None."""
    plain = _unwrap(address)
    if plain in METADATA or address in METADATA:
        return "a cloud metadata address"
    if plain.is_multicast:
        return "a multicast address"
    if plain.is_unspecified:
        return "an unspecified address"
    if allow_private:
        return None
    if plain.is_loopback:
        return "a loopback address"
    if plain.is_link_local:
        return "a link-local address"
    if isinstance(plain, ipaddress.IPv4Address) and plain in CGNAT:
        return "a carrier-grade NAT address"
    if plain.is_private:
        return "a private address"
    if plain.is_reserved or not plain.is_global:
        return "a reserved address"
    return None


def allows_private(settings: WebhookSettings, environment: Environment) -> bool:
    if environment == Environment.SANDBOX:
        return settings.allow_private_in_sandbox
    return settings.allow_private_in_production


def check_syntax(url: str, environment: Environment) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable URL; raises :class:`UnsafeUrl`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeUrl(f"The URL is malformed: {error}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("Use an absolute http:// or https:// URL.")
    if environment == Environment.PRODUCTION and scheme != "https":
        raise UnsafeUrl("Production webhooks must use https://.")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL must not carry credentials.")
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise UnsafeUrl(f"The host {host!r} does not resolve ({error.strerror}).") from None
    found: list[IpAddress] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(text)
        if address not in found:
            found.append(address)
    if not found:
        raise UnsafeUrl(f"The host {host!r} does not resolve.")
    return found


async def vet(url: str, environment: Environment, settings: WebhookSettings) -> Target:
    """Check a URL and every address its host resolves to; the addresses to use."""
    scheme, host, port = check_syntax(url, environment)
    addresses = await resolve(host, port)
    allow = allows_private(settings, environment)
    for address in addresses:
        reason = refusal(address, allow_private=allow)
        if reason is not None:
            raise UnsafeUrl(f"The host {host!r} resolves to {reason} ({address}).")
    return Target(scheme, host, port, tuple(str(a) for a in addresses))
