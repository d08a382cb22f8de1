"""SMPP 3.4 on the wire: the PDU header, its bodies, TLVs, and reading one from a stream.

Only what an ESME and our test SMSC exchange is modelled: the bind operations,
``submit_sm``/``deliver_sm`` (one layout, :class:`ShortMessage`), their responses
(a ``message_id`` C-string), ``enquire_link``, ``unbind`` and ``generic_nack``.
Everything is big-endian; strings are NUL-terminated C-octet strings; TLVs are
``tag(2) length(2) value``. We own the codec (the library choice is explained in
docs/architecture.md, "The SMPP session"): it is small, and owning it keeps the
window, throttling and receipt correlation free of a library's opinions.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
BIND_TRANSCEIVER = 0x00000009
ENQUIRE_LINK = 0x00000015
GENERIC_NACK = 0x80000000
RESPONSE = 0x80000000

BINDS = frozenset({BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER})

# TLV tags (SMPP 3.4 section 5.3.2).
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_NETWORK_ERROR_CODE = 0x0423
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_MESSAGE_STATE = 0x0427

# esm_class bits.
ESM_UDHI = 0x40
ESM_TYPE_MASK = 0x3C
ESM_DELIVERY_RECEIPT = 0x04
ESM_INTERMEDIATE_NOTIFICATION = 0x20
# SME delivery and user acknowledgements, conversation abort: neither a receipt of
# ours nor a contact's text.
ESM_ACKNOWLEDGEMENTS = frozenset({0x08, 0x10, 0x18})

HEADER = struct.Struct(">IIII")
# A bound on what we accept from the network: message_payload may reach 64 KB.
MAX_PDU = 70_000
INTERFACE_VERSION = 0x34


class PduError(ValueError):
    """Bytes that are not a well-formed PDU."""


@dataclass(frozen=True, slots=True)
class Pdu:
    command_id: int
    status: int
    sequence: int
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE)

    def encode(self) -> bytes:
        return (
            HEADER.pack(HEADER.size + len(self.body), self.command_id, self.status, self.sequence)
            + self.body
        )


async def read_pdu(reader: asyncio.StreamReader) -> Pdu:
    """The next PDU; raises ``asyncio.IncompleteReadError`` at end of stream and
    :class:`PduError` on a length no PDU can have."""
    header = await reader.readexactly(HEADER.size)
    length, command_id, status, sequence = HEADER.unpack(header)
    if length < HEADER.size or length > MAX_PDU:
        raise PduError(f"command_length {length} is out of bounds")
    body = await reader.readexactly(length - HEADER.size) if length > HEADER.size else b""
    return Pdu(command_id, status, sequence, body)


def cstring(value: str | bytes, limit: int | None = None) -> bytes:
    raw = value.encode("ascii", "replace") if isinstance(value, str) else value
    if limit is not None:
        raw = raw[: limit - 1]
    return raw + b"\x00"


class Cursor:
    """Reads a body field by field."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def cstring(self) -> str:
        end = self._data.find(b"\x00", self._at)
        if end < 0:
            raise PduError("a C-octet string is not terminated")
        value = self._data[self._at : end].decode("latin-1")
        self._at = end + 1
        return value

    def u8(self) -> int:
        if self._at >= len(self._data):
            raise PduError("the body ends early")
        value = self._data[self._at]
        self._at += 1
        return value

    def octets(self, count: int) -> bytes:
        if self._at + count > len(self._data):
            raise PduError("the body ends early")
        value = self._data[self._at : self._at + count]
        self._at += count
        return value

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self._at + 4 <= len(self._data):
            tag, length = struct.unpack_from(">HH", self._data, self._at)
            self._at += 4
            found[tag] = self.octets(length)
        return found


def encode_tlvs(tlvs: dict[int, bytes]) -> bytes:
    return b"".join(struct.pack(">HH", tag, len(value)) + value for tag, value in tlvs.items())


@dataclass(frozen=True, slots=True)
class Bind:
    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION

    def encode(self) -> bytes:
        return (
            cstring(self.system_id, 16)
            + cstring(self.password, 9)
            + cstring(self.system_type, 13)
            + bytes((self.interface_version, 0, 0))
            + cstring("")
        )

    @classmethod
    def decode(cls, body: bytes) -> Bind:
        cursor = Cursor(body)
        return cls(cursor.cstring(), cursor.cstring(), cursor.cstring(), cursor.u8())


@dataclass(frozen=True, slots=True)
class ShortMessage:
    """A ``submit_sm`` or ``deliver_sm`` body (the two share their mandatory fields)."""

    source: str
    destination: str
    short_message: bytes = b""
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 1
    dest_npi: int = 1
    esm_class: int = 0
    data_coding: int = 0
    registered_delivery: int = 0
    validity_period: str = ""
    service_type: str = ""
    protocol_id: int = 0
    priority: int = 0
    schedule_delivery_time: str = ""
    replace_if_present: int = 0
    sm_default_msg_id: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        if len(self.short_message) > 254:
            raise PduError("short_message takes at most 254 octets")
        return (
            cstring(self.service_type, 6)
            + bytes((self.source_ton, self.source_npi))
            + cstring(self.source, 21)
            + bytes((self.dest_ton, self.dest_npi))
            + cstring(self.destination, 21)
            + bytes((self.esm_class, self.protocol_id, self.priority))
            + cstring(self.schedule_delivery_time, 17)
            + cstring(self.validity_period, 17)
            + bytes(
                (
                    self.registered_delivery,
                    self.replace_if_present,
                    self.data_coding,
                    self.sm_default_msg_id,
                    len(self.short_message),
                )
            )
            + self.short_message
            + encode_tlvs(self.tlvs)
        )

    @classmethod
    def decode(cls, body: bytes) -> ShortMessage:
        cursor = Cursor(body)
        service_type = cursor.cstring()
        source_ton, source_npi = cursor.u8(), cursor.u8()
        source = cursor.cstring()
        dest_ton, dest_npi = cursor.u8(), cursor.u8()
        destination = cursor.cstring()
        esm_class, protocol_id, priority = cursor.u8(), cursor.u8(), cursor.u8()
        schedule = cursor.cstring()
        validity = cursor.cstring()
        registered, replace, coding, default_id = (cursor.u8() for _ in range(4))
        text = cursor.octets(cursor.u8())
        return cls(
            source=source,
            destination=destination,
            short_message=text,
            source_ton=source_ton,
            source_npi=source_npi,
            dest_ton=dest_ton,
            dest_npi=dest_npi,
            esm_class=esm_class,
            data_coding=coding,
            registered_delivery=registered,
            validity_period=validity,
            service_type=service_type,
            protocol_id=protocol_id,
            priority=priority,
            schedule_delivery_time=schedule,
            replace_if_present=replace,
            sm_default_msg_id=default_id,
            tlvs=cursor.tlvs(),
        )

    @property
    def is_receipt(self) -> bool:
        kind = self.esm_class & ESM_TYPE_MASK
        return kind in (ESM_DELIVERY_RECEIPT, ESM_INTERMEDIATE_NOTIFICATION)

    @property
    def is_acknowledgement(self) -> bool:
        return self.esm_class & ESM_TYPE_MASK in ESM_ACKNOWLEDGEMENTS


def message_id_body(message_id: str) -> bytes:
    """A ``submit_sm_resp`` (or ``bind_*_resp``: the system_id) body."""
    return cstring(message_id, 65)


def read_message_id(body: bytes) -> str:
    """The ``message_id`` of a ``submit_sm_resp``; empty when the body is (an error
    answer may carry none)."""
    return Cursor(body).cstring() if body else ""
