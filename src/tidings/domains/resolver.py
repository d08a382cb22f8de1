"""DNS lookups for domain checks, through the resolvers of ``TIDINGS_DNS__NAMESERVERS``
(comma-separated ``host:port``; the system's when empty), so tests and air-gapped
sites point at their own DNS server. A name that does not exist, or has no record
of the type, answers an empty list; a resolver that does not answer raises
:class:`DnsUnavailable`."""

from __future__ import annotations

from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.resolver

TIMEOUT_SECONDS = 5.0


class DnsUnavailable(Exception):
    pass


class Lookup(Protocol):
    async def txt(self, name: str) -> list[str]: ...

    async def mx(self, name: str) -> list[str]: ...

    async def cname(self, name: str) -> list[str]: ...


def parse_nameservers(text: str) -> list[tuple[str, int]]:
    servers = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.lstrip(":")
        elif item.count(":") == 1:
            host, _, port = item.partition(":")
        else:
            host, port = item, ""
        servers.append((host, int(port) if port else 53))
    return servers


class DnsLookup:
    """Lookups with dnspython's async resolver."""

    def __init__(self, nameservers: str = "") -> None:
        servers = parse_nameservers(nameservers)
        if servers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [host for host, _ in servers]
            resolver.nameserver_ports = dict(servers)
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = TIMEOUT_SECONDS
        # Each check must see DNS as it is now.
        resolver.cache = None
        self._resolver = resolver

    async def _query(self, name: str, kind: str) -> list[object]:
        try:
            answer = await self._resolver.resolve(name, kind, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as error:
            raise DnsUnavailable(f"{name} {kind}: {error}") from None
        return list(answer)

    async def txt(self, name: str) -> list[str]:
        # A TXT record is one or more strings, read concatenated (RFC 7208 3.3).
        return [
            b"".join(record.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
            for record in await self._query(name, "TXT")
        ]

    async def mx(self, name: str) -> list[str]:
        return [
            f"{record.preference} {str(record.exchange).rstrip('.')}"  # type: ignore[attr-defined]
            for record in await self._query(name, "MX")
        ]

    async def cname(self, name: str) -> list[str]:
        return [
            str(record.target).rstrip(".")  # type: ignore[attr-defined]
            for record in await self._query(name, "CNAME")
        ]
