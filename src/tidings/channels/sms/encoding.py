"""SMS text encoding: GSM 03.38 (GSM-7) / UCS-2 choice, length counting and segmentation.

A message is sent as GSM-7 when every character is in the GSM 03.38 basic table or its
extension table (extension characters cost two septets: ESC + code); otherwise the whole
message is sent as UCS-2 (in practice UTF-16-BE, so characters outside the BMP cost two
code units as a surrogate pair). Long messages are split for concatenated SMS: the UDH
takes 6 octets per part, leaving 153 septets or 67 UTF-16 units. A split never falls
inside an ESC pair or a surrogate pair, because parts are cut at ``str`` indices and each
``str`` character is one whole extension character or one whole code point.

:func:`segment` never raises on length: a text needing more than :data:`MAX_PARTS` parts
is still segmented, and callers compare ``segments`` with their own configured maximum.

We keep our own tables rather than smpplib's ``gsm.py``, which maps ``§`` wrongly and
splits without regard to ESC pairs or surrogates.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

SINGLE_GSM7 = 160
MULTI_GSM7 = 153
SINGLE_UCS2 = 70
MULTI_UCS2 = 67
MAX_PARTS = 255

_ESC = "\x1b"

# Index = septet value. 0x1B is ESC: it is not a character a text may contain, since
# an SMSC would read it as the prefix of an extension character.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

# Character -> septet sent after ESC.
_EXTENSION: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_EXTENSION_CHARS = tuple(_EXTENSION)
_GSM7_CHARS = frozenset(_BASIC.replace(_ESC, "")) | frozenset(_EXTENSION)
# A str -> str table so encoding is one C-level str.translate plus a latin-1 encode.
_TO_SEPTETS = str.maketrans(
    {c: chr(i) for i, c in enumerate(_BASIC) if c != _ESC}
    | {c: _ESC + chr(v) for c, v in _EXTENSION.items()}
)
_SEPTET_WIDTH: dict[str, int] = dict.fromkeys(_GSM7_CHARS, 1) | dict.fromkeys(_EXTENSION, 2)


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a text goes over the air: its encoding, the text of each part, total length.

    The empty message has no parts but still counts as one segment (it is sent as one).
    """

    encoding: Encoding
    parts: tuple[str, ...]
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2

    @property
    def segments(self) -> int:
        """Number of SMS billed: an empty message still costs one."""
        return len(self.parts) or 1


def is_gsm7(text: str) -> bool:
    """True if ``text`` can be sent as GSM-7 (basic or extension table only)."""
    return _GSM7_CHARS.issuperset(text)


def _extension_count(text: str) -> int:
    # Ten C-level str.count scans beat a Python loop per character for SMS-sized text.
    return sum(map(text.count, _EXTENSION_CHARS))


def _utf16_units(text: str) -> int:
    # surrogatepass: a lone surrogate (possible in a Python str) counts as one unit
    # instead of raising, so segment() never fails on content.
    return len(text.encode("utf-16-le", "surrogatepass")) >> 1


def _split(text: str, limit: int, widths: Iterable[int] | None) -> tuple[str, ...]:
    """Cut ``text`` greedily into parts of at most ``limit`` units.

    ``widths`` gives each character's cost; None means every character costs one, the
    common case, which is plain slicing.
    """
    if widths is None:
        return tuple(text[i : i + limit] for i in range(0, len(text), limit))
    # ends[i] = cost of text[:i]; strictly increasing, so bisect finds the longest
    # prefix of the remainder that fits. Cuts land on character boundaries only.
    ends = [0, *accumulate(widths)]
    parts: list[str] = []
    start = 0
    while start < len(text):
        stop = bisect_right(ends, ends[start] + limit) - 1
        parts.append(text[start:stop])
        start = stop
    return tuple(parts)


def segment(text: str) -> Segmentation:
    """Choose the encoding for ``text`` and split it into SMS parts.

    Never raises on length; compare ``segments`` with :data:`MAX_PARTS` (or a lower
    configured limit) before sending.
    """
    if not text:
        return Segmentation("GSM-7", (), 0)
    if is_gsm7(text):
        extension = _extension_count(text)
        units = len(text) + extension
        if units <= SINGLE_GSM7:
            return Segmentation("GSM-7", (text,), units)
        # Without extension characters every character is one septet: slice plainly.
        septets = map(_SEPTET_WIDTH.__getitem__, text) if extension else None
        return Segmentation("GSM-7", _split(text, MULTI_GSM7, septets), units)
    units = _utf16_units(text)
    if units <= SINGLE_UCS2:
        return Segmentation("UCS-2", (text,), units)
    # Only characters outside the BMP cost two units; if there are none, slice plainly.
    code_units: Iterable[int] | None = None
    if units != len(text):
        code_units = (2 if c > "\uffff" else 1 for c in text)
    return Segmentation("UCS-2", _split(text, MULTI_UCS2, code_units), units)


def count_segments(text: str) -> tuple[int, Encoding]:
    """``segment(text)``'s segments and encoding, without splitting when the split is
    plain arithmetic (bulk sends count 100,000 texts before storing them)."""
    if text and is_gsm7(text):
        if not _extension_count(text):
            length = len(text)
            return (1 if length <= SINGLE_GSM7 else -(-length // MULTI_GSM7)), "GSM-7"
    elif text and _utf16_units(text) == len(text):
        length = len(text)
        return (1 if length <= SINGLE_UCS2 else -(-length // MULTI_UCS2)), "UCS-2"
    split = segment(text)
    return split.segments, split.encoding


def encode_gsm7_unpacked(text: str) -> bytes:
    """GSM-7 bytes, one septet per octet, ESC (0x1B) before each extension character.

    This is what SMSCs expect for SMPP data_coding 0. Raises ValueError if ``text``
    is not GSM-7.
    """
    if not is_gsm7(text):
        raise ValueError("text contains characters outside the GSM 03.38 alphabet")
    # Every character now maps to code points < 0x80, so latin-1 is a 1:1 byte copy.
    return text.translate(_TO_SEPTETS).encode("latin-1")


def encode_part(part: str, encoding: Encoding) -> bytes:
    """Bytes for one part: GSM-7 unpacked, or UTF-16-BE for UCS-2."""
    if encoding == "GSM-7":
        return encode_gsm7_unpacked(part)
    return part.encode("utf-16-be", "surrogatepass")
