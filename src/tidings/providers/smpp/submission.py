"""Turning one outbound SMS into its ``submit_sm`` bodies.

The text is split by our segmenter (:mod:`tidings.channels.sms.encoding`), which
never cuts an escape pair or a surrogate pair: GSM-7 goes as ``data_coding`` 0,
unpacked, one septet per octet; when the provider's ``defaultAlphabet`` says the
SMSC reads ``data_coding`` 0 as Latin-1, a GSM-7 text goes as Latin-1 if every
character has a Latin-1 code (``€`` has none) and as UCS-2 otherwise; UCS-2 is
``data_coding`` 8, UTF-16-BE. A long message is sent as configured:

- ``udh``: one ``submit_sm`` per part, ``esm_class`` 0x40, the 8-bit concatenation
  header ``05 00 03 ref total seq`` before each part's text;
- ``sar``: one per part, the same split, with the ``sar_*`` TLVs instead;
- ``payload``: one ``submit_sm`` whose ``message_payload`` TLV holds the whole text
  (the SMSC splits it); one PDU, one message id.

The sender's TON/NPI follow its form: international number 1/1 (digits only),
short code (up to 8 digits) 3/0, alphanumeric 5/0. ``validityPeriod`` (seconds)
goes as a relative validity, ``000000000000000R`` style.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tidings.channels.sms.encoding import MULTI_UCS2, SINGLE_UCS2, encode_part, segment
from tidings.providers.base import OutboundMessage
from tidings.providers.smpp import pdus
from tidings.providers.smpp.config import SmppConfig
from tidings.providers.smpp.pdus import ShortMessage

DATA_CODING_DEFAULT = 0x00
DATA_CODING_UCS2 = 0x08


@dataclass(frozen=True, slots=True)
class Submission:
    parts: tuple[ShortMessage, ...]
    encoding: str

    def bodies(self) -> list[bytes]:
        return [part.encode() for part in self.parts]


def address(value: str) -> tuple[int, int, str]:
    """(TON, NPI, address) for a sender or destination."""
    digits = value.removeprefix("+")
    if digits.isdigit():
        if value.startswith("+") or len(digits) > 8:
            return 1, 1, digits
        return 3, 0, digits
    return 5, 0, value[:11]


def relative_validity(seconds: int) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"


def _ucs2_parts(text: str) -> tuple[str, ...]:
    units = [2 if char > "\uffff" else 1 for char in text]
    if sum(units) <= SINGLE_UCS2:
        return (text,)
    parts: list[str] = []
    start, used = 0, 0
    for index, width in enumerate(units):
        if used + width > MULTI_UCS2:
            parts.append(text[start:index])
            start, used = index, 0
        used += width
    parts.append(text[start:])
    return tuple(parts)


def _fits_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def build(message: OutboundMessage, config: SmppConfig, reference: int) -> Submission:
    """The ``submit_sm`` bodies of ``message``; ``reference`` numbers its parts
    (0-255) when it is long."""
    text = message.body or ""
    split = segment(text)
    texts = split.parts or ("",)
    if split.encoding == "GSM-7" and config.default_alphabet == "latin1":
        if _fits_latin1(text):
            encoded = [part.encode("latin-1") for part in texts]
            coding, encoding = DATA_CODING_DEFAULT, "Latin-1"
        else:
            texts = _ucs2_parts(text)
            encoded = [encode_part(part, "UCS-2") for part in texts]
            coding, encoding = DATA_CODING_UCS2, "UCS-2"
    elif split.encoding == "GSM-7":
        encoded = [encode_part(part, "GSM-7") for part in texts]
        coding, encoding = DATA_CODING_DEFAULT, "GSM-7"
    else:
        encoded = [encode_part(part, "UCS-2") for part in texts]
        coding, encoding = DATA_CODING_UCS2, "UCS-2"
    sender = message.sender or config.default_sender or ""
    source_ton, source_npi, source = address(sender) if sender else (0, 0, "")
    dest_ton, dest_npi, destination = address(message.to)
    validity = message.content.get("validityPeriod")
    registered = 1 if config.registered_delivery else 0
    validity_text = relative_validity(validity) if isinstance(validity, int) else ""

    def pdu(data: bytes, esm_class: int = 0, tlvs: dict[int, bytes] | None = None) -> ShortMessage:
        return ShortMessage(
            source=source,
            source_ton=source_ton,
            source_npi=source_npi,
            destination=destination,
            dest_ton=dest_ton,
            dest_npi=dest_npi,
            short_message=data,
            esm_class=esm_class,
            data_coding=coding,
            registered_delivery=registered,
            validity_period=validity_text,
            tlvs=tlvs or {},
        )

    if len(encoded) == 1:
        return Submission((pdu(encoded[0]),), encoding)
    if config.long_messages == "payload":
        whole = b"".join(encoded)
        return Submission((pdu(b"", tlvs={pdus.TLV_MESSAGE_PAYLOAD: whole}),), encoding)
    total = len(encoded)
    parts: list[ShortMessage] = []
    for sequence, data in enumerate(encoded, start=1):
        if config.long_messages == "udh":
            header = bytes((0x05, 0x00, 0x03, reference & 0xFF, total, sequence))
            parts.append(pdu(header + data, esm_class=pdus.ESM_UDHI))
        else:
            tlvs = {
                pdus.TLV_SAR_MSG_REF_NUM: struct.pack(">H", reference & 0xFFFF),
                pdus.TLV_SAR_TOTAL_SEGMENTS: bytes((total,)),
                pdus.TLV_SAR_SEGMENT_SEQNUM: bytes((sequence,)),
            }
            parts.append(pdu(data, tlvs=tlvs))
    return Submission(tuple(parts), encoding)
