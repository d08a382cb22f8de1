"""GSM 03.38 / UCS-2 segmentation: edge cases, plus properties checked against ``gsm0338``.

Known, deliberate difference from the ``gsm0338`` codec: it encodes a raw ESC character
(U+001B) as the single byte 0x1B, because its table lists ESCAPE at 0x1B. We reject it
(``is_gsm7`` is False, so such text goes as UCS-2): a lone 0x1B in GSM-7 would be read by
the SMSC/handset as the start of an extension pair and swallow the next character.
Everything else the codec accepts, we accept, with the same bytes.
"""

from __future__ import annotations

import codecs

import gsm0338  # noqa: F401 - registers the "gsm03.38" codec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.channels.sms.encoding import (
    MAX_PARTS,
    MULTI_GSM7,
    MULTI_UCS2,
    SINGLE_GSM7,
    SINGLE_UCS2,
    Segmentation,
    count_segments,
    encode_gsm7_unpacked,
    encode_part,
    is_gsm7,
    segment,
)

ESC = "\x1b"
EXTENSION = "\f^{}\\[~]|€"


def _codec_alphabet() -> frozenset[str]:
    """Every character the reference codec can encode, read from its decode direction."""
    chars: set[str] = set()
    for code in range(128):
        for raw in (bytes([code]), bytes([0x1B, code])):
            if raw == b"\x1b":
                continue  # a lone ESC decodes to nothing (it is a shift prefix)
            decoded = raw.decode("gsm03.38", "ignore")
            if len(decoded) == 1:
                chars.add(decoded)
    chars.add(ESC)  # listed as a basic-table character, so the codec encodes it
    return frozenset(chars)


CODEC_CHARS = _codec_alphabet()
GSM_CHARS = sorted(CODEC_CHARS - {ESC})


def _codec_encodes(text: str) -> bool:
    try:
        text.encode("gsm03.38")
    except UnicodeEncodeError:
        return False
    return True


def _units(part: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return len(encode_gsm7_unpacked(part))  # one byte per septet
    return len(part.encode("utf-16-be")) // 2


gsm_text = st.text(alphabet=GSM_CHARS, max_size=700)
# Mostly GSM with some Cyrillic, BMP symbols and emoji, so both encodings and both kinds
# of two-unit character land on part boundaries often.
mixed_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(GSM_CHARS),
        st.sampled_from(list(EXTENSION)),
        st.sampled_from(["ж", "中", "ç", "`", "😀", "\U0001f3fd", "\U00010348"]),
    ),
    max_size=700,
)
any_text = st.one_of(gsm_text, mixed_text, st.text(max_size=300))


# --- the table itself, against the reference codec -------------------------------------


def test_alphabet_is_codec_alphabet_minus_esc() -> None:
    assert len(CODEC_CHARS) == 128 + len(EXTENSION)
    assert CODEC_CHARS - {ESC} == frozenset(GSM_CHARS)
    for c in GSM_CHARS:
        assert encode_gsm7_unpacked(c) == c.encode("gsm03.38"), repr(c)


def test_is_gsm7_over_every_code_point() -> None:
    ours = {chr(cp) for cp in range(0x110000) if is_gsm7(chr(cp))}
    assert ours == CODEC_CHARS - {ESC}


def test_raw_escape_is_the_one_discrepancy() -> None:
    assert ESC.encode("gsm03.38") == b"\x1b"  # codec accepts it...
    assert not is_gsm7(ESC)  # ...we do not: it would merge with the next septet
    assert segment("hi" + ESC).encoding == "UCS-2"
    with pytest.raises(ValueError):
        encode_gsm7_unpacked(ESC)


@pytest.mark.parametrize(
    ("char", "code"),
    list(
        zip(
            "@$\n\r_¤¡§¿àÇ",
            [0x00, 0x02, 0x0A, 0x0D, 0x11, 0x24, 0x40, 0x5F, 0x60, 0x7F, 0x09],
            strict=True,
        )
    ),
)
def test_basic_byte_values(char: str, code: int) -> None:
    assert encode_gsm7_unpacked(char) == bytes([code])


@pytest.mark.parametrize(
    ("char", "code"),
    list(zip(EXTENSION, [0x0A, 0x14, 0x28, 0x29, 0x2F, 0x3C, 0x3D, 0x3E, 0x40, 0x65], strict=True)),
)
def test_extension_byte_values(char: str, code: int) -> None:
    assert encode_gsm7_unpacked(char) == bytes([0x1B, code])


@pytest.mark.parametrize("char", ["`", "ç", "ж", "😀", "\t", "\x00", "\x7f", "\u00a0"])
def test_not_gsm(char: str) -> None:
    # "`" is where smpplib's table wrongly puts 0x5F (which is "§").
    assert not is_gsm7(char)
    with pytest.raises(ValueError):
        encode_gsm7_unpacked("ok" + char)


# --- properties --------------------------------------------------------------------------


@given(gsm_text)
def test_encoding_matches_codec(text: str) -> None:
    expected = text.encode("gsm03.38")
    assert encode_gsm7_unpacked(text) == expected
    assert is_gsm7(text)


@given(any_text)
def test_is_gsm7_agrees_with_codec(text: str) -> None:
    assert is_gsm7(text) == (_codec_encodes(text) and ESC not in text)


@given(st.one_of(any_text, gsm_text, gsm_text.map(lambda t: t * 7), any_text.map(lambda t: t * 5)))
def test_count_segments_is_segments_without_the_split(text: str) -> None:
    split = segment(text)
    assert count_segments(text) == (split.segments, split.encoding)


@given(any_text)
def test_segmentation_invariants(text: str) -> None:
    seg = segment(text)
    assert "".join(seg.parts) == text
    assert seg.encoding == ("GSM-7" if is_gsm7(text) else "UCS-2")
    assert seg.segments == max(len(seg.parts), 1)
    assert all(seg.parts)
    assert seg.units == sum(_units(p, seg.encoding) for p in seg.parts)
    single, multi = (
        (SINGLE_GSM7, MULTI_GSM7) if seg.encoding == "GSM-7" else (SINGLE_UCS2, MULTI_UCS2)
    )
    if seg.units <= single:
        assert len(seg.parts) == (1 if text else 0)
        return
    for i, part in enumerate(seg.parts):
        size = _units(part, seg.encoding)
        assert size <= multi
        if i + 1 < len(seg.parts):
            # Greedy: the next part's first character would not have fit.
            assert size + _units(seg.parts[i + 1][0], seg.encoding) > multi
        encoded = encode_part(part, seg.encoding)
        if seg.encoding == "GSM-7":
            assert not encoded.endswith(b"\x1b")
        else:
            assert not 0xD800 <= int.from_bytes(encoded[-2:], "big") <= 0xDBFF
            assert not 0xDC00 <= int.from_bytes(encoded[:2], "big") <= 0xDFFF


@given(any_text)
def test_parts_encode_to_whole(text: str) -> None:
    seg = segment(text)
    whole = b"".join(encode_part(p, seg.encoding) for p in seg.parts)
    if seg.encoding == "GSM-7":
        assert whole == text.encode("gsm03.38")
    else:
        assert whole == text.encode("utf-16-be")
        assert codecs.decode(whole, "utf-16-be") == text


# --- edge cases --------------------------------------------------------------------------


def test_empty() -> None:
    assert segment("") == Segmentation("GSM-7", (), 0)
    assert segment("").segments == 1
    assert encode_gsm7_unpacked("") == b""


@pytest.mark.parametrize(
    ("text", "encoding", "units", "sizes"),
    [
        ("a" * 160, "GSM-7", 160, [160]),
        ("a" * 161, "GSM-7", 161, [153, 8]),
        ("a" * 306, "GSM-7", 306, [153, 153]),
        ("a" * 307, "GSM-7", 307, [153, 153, 1]),
        ("a" * 158 + "€", "GSM-7", 160, [159]),
        ("a" * 159 + "€", "GSM-7", 161, [153, 7]),
        ("€" * 80, "GSM-7", 160, [80]),
        ("€" * 81, "GSM-7", 162, [76, 5]),
        ("ж" * 70, "UCS-2", 70, [70]),
        ("ж" * 71, "UCS-2", 71, [67, 4]),
        ("ж" * 134, "UCS-2", 134, [67, 67]),
        ("ж" * 135, "UCS-2", 135, [67, 67, 1]),
        ("ж" * 68 + "😀", "UCS-2", 70, [69]),
        ("ж" * 69 + "😀", "UCS-2", 71, [67, 3]),
        ("a" * 200 + "ж", "UCS-2", 201, [67, 67, 67]),
    ],
)
def test_boundaries(text: str, encoding: str, units: int, sizes: list[int]) -> None:
    seg = segment(text)
    assert (seg.encoding, seg.units) == (encoding, units)
    assert [len(p) for p in seg.parts] == sizes  # sizes in characters
    assert seg.segments == len(sizes)


def test_escape_pair_at_boundary_moves_whole() -> None:
    text = "a" * 152 + "€" + "b" * 10
    seg = segment(text)
    assert seg.parts == ("a" * 152, "€" + "b" * 10)
    assert [len(encode_gsm7_unpacked(p)) for p in seg.parts] == [152, 12]
    assert encode_part(seg.parts[1], "GSM-7")[:2] == b"\x1be"


def test_surrogate_pair_at_boundary_moves_whole() -> None:
    text = "ж" * 66 + "😀" + "ж" * 5
    seg = segment(text)
    assert seg.units == 73
    assert seg.parts == ("ж" * 66, "😀" + "ж" * 5)
    assert encode_part(seg.parts[0], "UCS-2") == ("ж" * 66).encode("utf-16-be")
    assert encode_part(seg.parts[1], "UCS-2")[:4] == "😀".encode("utf-16-be")


def test_emoji_counts_two_units() -> None:
    assert segment("😀").units == 2
    assert segment("😀" * 35).segments == 1
    assert segment("😀" * 36).segments == 2


def test_lone_surrogate_counts_one_unit_and_does_not_raise() -> None:
    seg = segment("a\ud83d")
    assert (seg.encoding, seg.units, seg.parts) == ("UCS-2", 2, ("a\ud83d",))
    assert encode_part("\ud83d", "UCS-2") == b"\xd8\x3d"


def test_over_max_parts_is_reported_not_raised() -> None:
    seg = segment("a" * (MULTI_GSM7 * MAX_PARTS + 1))
    assert seg.segments == MAX_PARTS + 1
    assert seg.segments > MAX_PARTS  # the caller's check
