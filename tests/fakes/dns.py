"""A DNS server on loopback UDP (answers built with dnspython) serving a zone the
test edits: ``zone[(name, "TXT")] = ["v=spf1 ..."]``. Long TXT values are served
split into 255-byte strings, as a DNS provider publishes them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def _txt(value: str) -> str:
    pieces = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"' + piece.replace('"', '\\"') + '"' for piece in pieces)


def _absolute(value: str) -> str:
    return value if value.endswith(".") else value + "."


@dataclass
class FakeDns(asyncio.DatagramProtocol):
    zone: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    port: int = 0
    _transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        values = self.zone.get((name, kind), [])
        if values:
            texts = [_txt(value) if kind == "TXT" else _absolute(value) for value in values]
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, kind, texts)
            )
        elif not any(key[0] == name for key in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self._transport is not None
        self._transport.sendto(response.to_wire(), addr)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        assert self._transport is not None
        self.port = self._transport.get_extra_info("sockname")[1]

    def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def nameservers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def txt_lookup(self, name: bytes, timeout: float = 5) -> bytes | None:
        """dkimpy's ``dnsfunc``: the concatenated TXT value of a name."""
        values = self.zone.get((name.decode().rstrip(".").lower(), "TXT"), [])
        return values[0].encode() if values else None
