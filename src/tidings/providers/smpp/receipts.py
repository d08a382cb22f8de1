"""What arrives in a ``deliver_sm``: how it is stored in the inbox, and read back.

A ``deliver_sm`` is stored as received (:func:`stored_payload`: addresses,
``esm_class``, ``data_coding``, the ``short_message`` and the TLVs in hex; a
receipt also with its id, state, ``err`` and network error as read on arrival),
before its ``deliver_sm_resp`` goes out. :func:`parse_report` reads it back (a
receipt from the fields read on arrival when it has them, else from the PDU):

- ``esm_class`` type 0x04 is a delivery receipt (0x20, an intermediate
  notification, is read the same way; SME acknowledgements 0x08/0x10/0x18 are
  stored and read as nothing). Its id is the ``receipted_message_id``
  TLV when present, else the text's ``id:``; its state the ``message_state`` TLV,
  else the text's ``stat:``. DELIVRD is ``delivered``; EXPIRED, DELETED, UNDELIV
  and REJECTD are ``undelivered`` with the ``err:`` code (and the
  ``network_error_code`` TLV); ENROUTE and UNKNOWN are recorded as events of a
  message that stays ``sent``; ACCEPTD (the SMSC took it, which many send as an
  intermediate receipt) is ``sent`` itself, a repeat the status machine drops.
- any other ``deliver_sm`` is a contact writing in (``data_coding`` 0 as GSM-7,
  1 ASCII, 3 Latin-1, 8 UCS-2). Concatenated parts are joined by the provider
  before storing one joined record (``kind: "mo"``); each part is also stored
  (``kind: "mo_part"``, read as nothing) so that it is durable before its answer.

Ids are normalised the same way here and in :mod:`.provider` (:func:`normalise_id`):
trimmed, lower-cased, leading zeros dropped; a receipt text's id is first
converted from the radix the provider's ``receiptIdBase`` names.
"""

from __future__ import annotations

import hashlib
import re
import struct
from datetime import datetime
from typing import Any

from tidings.channels.sms.encoding import is_gsm7
from tidings.messages.status import Status
from tidings.providers.base import InboundMessage, RawReport, Report, StatusReport
from tidings.providers.smpp import pdus
from tidings.providers.smpp.pdus import ShortMessage

# message_state TLV values (SMPP 3.4 section 5.2.28) by the names receipt texts use.
STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
FAILED_STATES = {
    "EXPIRED": "expired",
    "DELETED": "deleted",
    "UNDELIV": "undeliverable",
    "REJECTD": "rejected",
}
NOT_FINAL = {"ENROUTE": "enroute", "UNKNOWN": "unknown"}
# Variants some SMSCs print.
ALIASES = {"DELIVERED": "DELIVRD", "UNDELIVERABLE": "UNDELIV", "REJECTED": "REJECTD"}

_FIELD = re.compile(r"(?i)\b(id|sub|dlvrd|submit date|done date|stat|err|text):[ ]?(\S*)")
NETWORK_TYPES = {1: "ANSI-136", 2: "IS-95", 3: "GSM", 4: "ANSI-41"}


def normalise_id(raw: str) -> str:
    """One id as both sides see it: no blanks or NULs, lower case, no leading zeros."""
    return raw.strip().strip("\x00").strip().lower().lstrip("0") or "0"


def convert_base(raw: str, base: str) -> str:
    """A receipt text's id in the radix of ``submit_sm_resp`` (``receiptIdBase``)."""
    value = raw.strip()
    try:
        if base == "decimal":
            return format(int(value, 10), "x")
        if base == "hex":
            return str(int(value, 16))
    except ValueError:
        pass
    return value


# -- storing -------------------------------------------------------------------------


def stored_report(message: ShortMessage, *, received_at: datetime, id_base: str) -> RawReport:
    """The deliver_sm as stored in the inbox: its payload (:func:`stored_payload`) under
    its dedupe key (:func:`dedupe_key`), the receipt's fields read once for both."""
    found = receipt_fields(message, id_base) if message.is_receipt else None
    payload = stored_payload(message, received_at=received_at, id_base=id_base, found=found)
    return RawReport(dedupe_key(message, id_base=id_base, found=found), payload)


_UNREAD: Any = object()


def stored_payload(
    message: ShortMessage,
    *,
    received_at: datetime,
    id_base: str,
    found: tuple[str, str, str | None] | None = _UNREAD,
) -> dict[str, Any]:
    """The deliver_sm as received; a receipt also names its id, state and error in
    clear, for whoever reads an unmatched one (``GET /providers/{id}/unmatched``) and
    so that applying it does not read the PDU again."""
    payload = {
        "kind": "deliver_sm",
        "source": message.source,
        "sourceTon": message.source_ton,
        "destination": message.destination,
        "esmClass": message.esm_class,
        "dataCoding": message.data_coding,
        "shortMessage": message.short_message.hex(),
        "tlvs": {f"{tag:04x}": value.hex() for tag, value in message.tlvs.items()},
        "receivedAt": received_at.isoformat(),
        "idBase": id_base,
    }
    if message.is_receipt:
        if found is _UNREAD:
            found = receipt_fields(message, id_base)
        if found is not None:
            payload["receiptId"], payload["state"], payload["err"] = found
            payload["networkError"] = _network_error(message)
    return payload


def dedupe_key(
    message: ShortMessage,
    *,
    id_base: str = "same",
    found: tuple[str, str, str | None] | None = _UNREAD,
) -> str:
    """A receipt is the same receipt when it names the same id and state (an SMSC
    that resends it after a lost answer); anything else when its bytes are the same."""
    if message.is_receipt:
        if found is _UNREAD:
            found = receipt_fields(message, id_base)
        if found is not None:
            return f"dlr:{found[0]}:{found[1]}"
    digest = hashlib.sha256(
        message.source.encode()
        + b"\x00"
        + message.destination.encode()
        + b"\x00"
        + bytes((message.esm_class, message.data_coding))
        + message.short_message
        + pdus.encode_tlvs(message.tlvs)
    ).hexdigest()
    return f"mo:{digest[:40]}"


# -- reading back --------------------------------------------------------------------


def _message(payload: dict[str, Any]) -> ShortMessage:
    return ShortMessage(
        source=str(payload["source"]),
        destination=str(payload["destination"]),
        short_message=bytes.fromhex(payload["shortMessage"]),
        source_ton=int(payload.get("sourceTon", 0)),
        esm_class=int(payload["esmClass"]),
        data_coding=int(payload["dataCoding"]),
        tlvs={int(tag, 16): bytes.fromhex(value) for tag, value in payload["tlvs"].items()},
    )


def parse_report(payload: dict[str, Any]) -> list[Report]:
    kind = payload["kind"]
    at = datetime.fromisoformat(payload["receivedAt"])
    if kind == "mo_part":
        return []
    if kind == "mo":
        parts = [_message(part) for part in payload["parts"]]
        first = parts[0]
        body = "".join(decode_text(part) for part in parts)
        return [_inbound(first, body, at, payload["id"], len(parts), payload.get("missing", 0))]
    if kind != "deliver_sm":
        raise ValueError(f"unknown stored kind {kind!r}")
    if "err" in payload and "networkError" in payload:
        # A receipt read when it was stored: its fields are in the payload.
        external, state = payload["receiptId"], payload["state"]
        return [_status(external, state, payload["err"], payload["networkError"], at)]
    message = _message(payload)
    if message.is_receipt:
        return [_receipt(message, at, payload.get("idBase", "same"))]
    if message.is_acknowledgement:
        return []
    return [_inbound(message, decode_text(message), at, dedupe_key(message)[3:], 1, 0)]


def _inbound(
    message: ShortMessage, body: str, at: datetime, external_id: str, parts: int, missing: int
) -> InboundMessage:
    content: dict[str, Any] = {"parts": parts} if parts > 1 else {}
    if missing:
        content["missingParts"] = missing
    sender = message.source
    if sender.isdigit() and (message.source_ton == 1 or len(sender) > 8):
        sender = "+" + sender
    recipient = message.destination
    if recipient.isdigit() and len(recipient) > 8:
        recipient = "+" + recipient
    return InboundMessage(
        channel="sms",
        sender=sender,
        recipient=recipient or None,
        body=body,
        at=at,
        external_id=f"mo.{external_id}",
        content=content,
    )


def receipt_fields(message: ShortMessage, id_base: str) -> tuple[str, str, str | None] | None:
    """(normalised id, state, err) of a receipt; None when it names no id."""
    text = _payload_bytes(message).decode("latin-1")
    fields = {key.lower(): value for key, value in _FIELD.findall(text)}
    raw_id = message.tlvs.get(pdus.TLV_RECEIPTED_MESSAGE_ID)
    if raw_id:
        external = normalise_id(raw_id.split(b"\x00", 1)[0].decode("latin-1"))
    elif fields.get("id"):
        external = normalise_id(convert_base(fields["id"], id_base))
    else:
        return None
    state_tlv = message.tlvs.get(pdus.TLV_MESSAGE_STATE)
    if state_tlv:
        state = STATES.get(state_tlv[0], "UNKNOWN")
    else:
        stat = fields.get("stat", "UNKNOWN").upper()
        state = ALIASES.get(stat, stat)
    return external, state, fields.get("err")


def _receipt(message: ShortMessage, at: datetime, id_base: str) -> StatusReport:
    found = receipt_fields(message, id_base)
    if found is None:
        raise ValueError("a delivery receipt without a message id")
    external, state, err = found
    return _status(external, state, err, _network_error(message), at)


def _status(
    external: str, state: str, err: str | None, network: str | None, at: datetime
) -> StatusReport:
    detail: dict[str, Any] = {"state": state}
    if err:
        detail["err"] = err
    if network:
        detail["networkError"] = network
    if state == "DELIVRD":
        return StatusReport(external, Status.DELIVERED, at, detail=detail)
    if state in FAILED_STATES:
        said = f"The SMSC reported {state}"
        said += f" (err:{err})" if err else ""
        said += f", network error {network}." if network else "."
        return StatusReport(
            external,
            Status.UNDELIVERED,
            at,
            error_code=f"smpp_{FAILED_STATES[state]}" + (f"_{err}" if err else ""),
            error_message=said,
            detail=detail,
        )
    if state == "ACCEPTD":
        return StatusReport(external, Status.SENT, at, detail=detail)
    # Not final: recorded as an event of a message that stays sent.
    return StatusReport(
        external, Status.SENT, at, event=NOT_FINAL.get(state, "unknown"), detail=detail
    )


def _network_error(message: ShortMessage) -> str | None:
    value = message.tlvs.get(pdus.TLV_NETWORK_ERROR_CODE)
    if not value or len(value) != 3:
        return None
    kind, code = value[0], struct.unpack(">H", value[1:])[0]
    return f"{NETWORK_TYPES.get(kind, str(kind))} {code}"


# -- text ----------------------------------------------------------------------------


def _gsm7_table() -> tuple[dict[int, str], dict[int, str]]:
    from tidings.channels.sms.encoding import encode_gsm7_unpacked

    basic: dict[int, str] = {}
    extension: dict[int, str] = {}
    # Every GSM-7 character lies below U+2100 (the euro sign is U+20AC).
    for point in range(0x2100):
        char = chr(point)
        if not is_gsm7(char):
            continue
        code = encode_gsm7_unpacked(char)
        if len(code) == 1:
            basic[code[0]] = char
        else:
            extension[code[1]] = char
    return basic, extension


_BASIC, _EXTENDED = _gsm7_table()


def decode_gsm7_unpacked(data: bytes) -> str:
    out: list[str] = []
    escaped = False
    for octet in data:
        if escaped:
            out.append(_EXTENDED.get(octet, " "))
            escaped = False
        elif octet == 0x1B:
            escaped = True
        else:
            out.append(_BASIC.get(octet & 0x7F, "?"))
    return "".join(out)


def _payload_bytes(message: ShortMessage) -> bytes:
    return message.short_message or message.tlvs.get(pdus.TLV_MESSAGE_PAYLOAD, b"")


def split_udh(message: ShortMessage) -> tuple[bytes, tuple[int, int, int] | None]:
    """The text bytes, and (reference, total, sequence) when the message is a part
    (8- or 16-bit UDH, or the SAR TLVs)."""
    data = _payload_bytes(message)
    if message.esm_class & pdus.ESM_UDHI and data:
        length = data[0]
        header, data = data[1 : 1 + length], data[1 + length :]
        at = 0
        while at + 2 <= len(header):
            iei, size = header[at], header[at + 1]
            value = header[at + 2 : at + 2 + size]
            if iei == 0x00 and size == 3:
                return data, (value[0], value[1], value[2])
            if iei == 0x08 and size == 4:
                return data, (struct.unpack(">H", value[:2])[0], value[2], value[3])
            at += 2 + size
        return data, None
    tlvs = message.tlvs
    if pdus.TLV_SAR_MSG_REF_NUM in tlvs and pdus.TLV_SAR_TOTAL_SEGMENTS in tlvs:
        reference = struct.unpack(">H", tlvs[pdus.TLV_SAR_MSG_REF_NUM][:2].rjust(2, b"\0"))[0]
        total = tlvs[pdus.TLV_SAR_TOTAL_SEGMENTS][0]
        sequence = tlvs.get(pdus.TLV_SAR_SEGMENT_SEQNUM, b"\x01")[0]
        return data, (reference, total, sequence)
    return data, None


def decode_text(message: ShortMessage) -> str:
    data, _ = split_udh(message)
    coding = message.data_coding
    if coding == 8:
        return data.decode("utf-16-be", "replace")
    if coding == 3:
        return data.decode("latin-1")
    if coding == 1:
        return data.decode("ascii", "replace")
    if coding == 0:
        return decode_gsm7_unpacked(data)
    return data.decode("latin-1")
