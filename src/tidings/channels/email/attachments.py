"""Email attachments: decoding and checking the ``attachments`` array of a send request.

Each item is ``{"filename", "contentType", "content"}`` with base64 content. Bad items
are reported together, one :class:`~tidings.core.errors.FieldError` per field, before
the total size is checked against the configured limit.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tidings.core.errors import FieldError, Unprocessable

__all__ = ["MAX_FILENAME_BYTES", "Attachment", "decode_attachments"]

MAX_FILENAME_BYTES = 255

# RFC 6838 section 4.2 restricted-name.
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)
# Bidi controls let "invoice\u202efdp.exe" display as "invoiceexe.pdf".
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A decoded attachment: a safe file name, a lower-case ``type/subtype`` and the bytes."""

    filename: str
    content_type: str
    content: bytes


def decode_attachments(
    items: Sequence[Mapping[str, object]], *, max_total_bytes: int
) -> tuple[Attachment, ...]:
    """Decode ``[{"filename", "contentType", "content" (base64)}]`` into attachments."""
    attachments: list[Attachment] = []
    errors: list[FieldError] = []
    total = 0
    for i, item in enumerate(items):
        where = f"attachments[{i}]"
        if not isinstance(item, Mapping):
            message = "Give an object with filename, contentType and content."
            errors.append(FieldError(where, "invalid_type", message))
            continue
        filename, content_type, content = (
            item.get(k) for k in ("filename", "contentType", "content")
        )
        if not isinstance(filename, str) or not filename.strip():
            errors.append(FieldError(f"{where}.filename", "required", "Give a file name."))
        if not isinstance(content_type, str) or not _is_attachable_type(content_type):
            message = "Give a media type such as application/pdf (no parameters)."
            errors.append(FieldError(f"{where}.contentType", "invalid_content_type", message))
        data = _decode_base64(content)
        if data is None:
            message = "The content must be a base64 string (RFC 4648, standard alphabet)."
            errors.append(FieldError(f"{where}.content", "invalid_base64", message))
        if errors:
            continue
        assert isinstance(filename, str) and isinstance(content_type, str) and data is not None
        total += len(data)
        attachments.append(Attachment(_sanitise_filename(filename), content_type.lower(), data))
    if errors:
        raise Unprocessable(errors[0].message, errors=errors)
    if total > max_total_bytes:
        message = f"Attachments may total at most {max_total_bytes} bytes (got {total})."
        error = FieldError("attachments", "attachments_too_large", message)
        raise Unprocessable(message, code="attachments_too_large", errors=[error])
    return tuple(attachments)


def _is_attachable_type(value: str) -> bool:
    # multipart/* and message/* bodies have structure and encoding rules (RFC 2046: no
    # base64 for message/rfc822) that opaque bytes cannot promise to meet.
    return bool(_MEDIA_TYPE.fullmatch(value)) and not value.lower().startswith(
        ("multipart/", "message/")
    )


def _decode_base64(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    # Tolerate the line-wrapped base64 many encoders emit; refuse anything else odd.
    compact = "".join(value.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _sanitise_filename(name: str) -> str:
    """Keep a name a mail client can save safely: no directories, no controls, ≤ 255 bytes."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rpartition("/")[2]
    name = "".join(
        ch
        for ch in name
        if unicodedata.category(ch) not in ("Cc", "Zl", "Zp") and ch not in _BIDI_CONTROLS
    ).strip()
    # Leading dots would hide the file on Unix; trailing dots and spaces vanish on Windows.
    name = name.lstrip(".").rstrip(". ")
    if not name:
        return "attachment"
    if len(name.encode()) > MAX_FILENAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = f"{dot}{ext}" if dot and stem and len(ext) <= 16 else ""
        stem = name[: len(name) - len(ext)]
        while len((stem + ext).encode()) > MAX_FILENAME_BYTES:
            stem = stem[:-1]
        name = stem.rstrip(". ") + ext
    return name
