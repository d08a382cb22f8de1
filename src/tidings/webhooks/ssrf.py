"""The SSRF guard for webhook URLs: syntax, scheme, then every resolved address.

A URL with a control character, credentials or port 0 is refused outright. Every
address must be globally reachable: loopback, private, link-local, carrier-grade
NAT and every block of IANA's special-purpose registries (IPv4 and IPv6, see
:data:`SPECIAL_PURPOSE`) count as private, after IPv4-mapped, NAT64 and 6to4 forms
are unwrapped. Production requires HTTPS. Private destinations are refused unless
``allow_private_in_sandbox`` / ``allow_private_in_production`` allow them (both off
by default; the ``make run`` demo turns the sandbox one on); cloud-metadata,
multicast, unspecified and broadcast addresses are refused everywhere.

Refusals name the host the account gave, never the addresses it resolved to:
what an internal name resolves to is not the account's to learn.

A host that does not resolve (yet) is :class:`UnresolvedHost`: creation accepts it
with a warning (the receiver's DNS may not be published yet, or not be visible from
here), while a delivery counts it as a failed attempt and retries.

The check runs at create and before each delivery, and the delivery connects to
the address that was checked (:meth:`Sender.post`), so a name that changes its
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
# IANA's IPv4 and IPv6 special-purpose address registries, every entry, including
# those marked globally reachable (anycast services such as 192.0.0.9 or AS112):
# none of them is a webhook receiver. ``is_global`` covers most; these make sure.
SPECIAL_PURPOSE = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.31.196.0/24",
        "192.52.193.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "192.175.48.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "255.255.255.255/32",
        # ::ffff:0:0/96, 64:ff9b::/96 and 2002::/16 carry an IPv4 address, which
        # _unwrap takes out and which is judged instead.
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "100::/64",
        "100:0:0:1::/64",
        "2001::/23",
        "2001:db8::/32",
        "2620:4f:8000::/48",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
    )
)
BROADCAST = ipaddress.ip_address("255.255.255.255")
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


class UnresolvedHost(UnsafeUrl):
    """The URL's host name has no address now; the URL's form is acceptable."""

    def __init__(self, host: str) -> None:
        super().__init__(f"The host {host!r} does not resolve.")
        self.host = host


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


def is_private(address: IpAddress) -> bool:
    """Whether ``address`` is anything but a public unicast address of the Internet."""
    # Judged by the IPv4 address a mapped, NAT64 or 6to4 form carries: an IPv6-only
    # host reaches public IPv4 receivers through 64:ff9b::/96.
    plain = _unwrap(address)
    if not plain.is_global:
        return True
    return any(plain.version == block.version and plain in block for block in SPECIAL_PURPOSE)


def refusal(address: IpAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not be connected to, or None."""
    plain = _unwrap(address)
    if plain in METADATA or address in METADATA:
        return "a cloud metadata address"
    if plain.is_multicast:
        return "a multicast address"
    if plain.is_unspecified or plain == BROADCAST:
        return "an unspecified or broadcast address"
    if allow_private or not is_private(address):
        return None
    if plain.is_loopback:
        return "a loopback address"
    if plain.is_link_local:
        return "a link-local address"
    if isinstance(plain, ipaddress.IPv4Address) and plain in CGNAT:
        return "a carrier-grade NAT address"
    if plain.is_private:
        return "a private address"
    return "a special-purpose address"


def allows_private(settings: WebhookSettings, environment: Environment) -> bool:
    if environment == Environment.SANDBOX:
        return settings.allow_private_in_sandbox
    return settings.allow_private_in_production


def _control_character(url: str) -> bool:
    # C0, DEL and C1: never part of a URL; they split requests or break the client.
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url)


def check_syntax(url: str, environment: Environment) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable URL; raises :class:`UnsafeUrl`."""
    if _control_character(url):
        raise UnsafeUrl("The URL contains a control character.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("The URL is malformed (its host or port cannot be read).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("Use an absolute http:// or https:// URL.")
    if environment == Environment.PRODUCTION and scheme != "https":
        raise UnsafeUrl("Production webhooks must use https://.")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL must not carry credentials.")
    if port == 0:
        raise UnsafeUrl("The URL's port must be between 1 and 65535.")
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def loggable_url(url: str) -> str:
    """``url`` without its query, fragment and credentials: receivers put tokens there."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(malformed URL)"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}{port}{parts.path}"


async def resolve(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        raise UnresolvedHost(host) from None
    found: list[IpAddress] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address not in found:
            found.append(address)
    if not found:
        raise UnresolvedHost(host)
    return found


async def vet(url: str, environment: Environment, settings: WebhookSettings) -> Target:
    """Check a URL and every address its host resolves to; the addresses to use."""
    scheme, host, port = check_syntax(url, environment)
    addresses = await resolve(host, port)
    allow = allows_private(settings, environment)
    literal = len(addresses) == 1 and str(addresses[0]) == host.strip("[]")
    for address in addresses:
        reason = refusal(address, allow_private=allow)
        if reason is None:
            continue
        if literal:
            # The account wrote this address itself: naming its kind reveals nothing.
            raise UnsafeUrl(f"The address {host} is {reason}, which webhooks may not reach.")
        raise UnsafeUrl(
            f"The host {host!r} resolves to an address webhooks may not reach "
            "(private, loopback, special-purpose or metadata)."
        )
    return Target(scheme, host, port, tuple(str(a) for a in addresses))
