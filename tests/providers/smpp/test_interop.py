"""What the ``smpp`` kind sends, read by an SMPP implementation we did not write:
aiosmpplib's PDU parser and its own GSM 03.38 codec (and, for UCS-2, Python's
UTF-16). GSM-7 with extension characters, UCS-2 with emoji, and a three-part
message whose parts, by their concatenation headers, reassemble to the text."""

from __future__ import annotations

import aiosmpplib
from aiosmpplib.protocol import SubmitSm
from aiosmpplib.state import SAR_MSG_REF_NUM, SAR_SEGMENT_SEQNUM, SAR_TOTAL_SEGMENTS

from tests.fakes.smsc import HappySMSC, Submitted
from tests.providers.smpp.support import build, outbound


def read(sent: Submitted) -> SubmitSm:
    header = aiosmpplib.SmppMessage.parse_header(sent.raw[:16])
    message = SubmitSm.from_pdu(sent.raw, header, default_encoding="gsm0338")
    assert isinstance(message, SubmitSm)
    return message


async def sent_as(*texts: str) -> list[Submitted]:
    async with HappySMSC() as smsc:
        provider, _ = build(smsc)
        try:
            for number, text in enumerate(texts):
                await provider.send(outbound(body=text, number=number))
        finally:
            await provider.close()
    return smsc.submitted


async def test_gsm7_with_extension_characters() -> None:
    text = "Price: 5€ {ok} [a|b] ~x^ \\ @£$¥ èéù"
    [sent] = await sent_as(text)
    message = read(sent)
    assert message.short_message == text
    assert (message.source.number, message.source.ton.value) == ("Tidings", 5)
    assert (message.destination.number, message.destination.ton.value) == ("393331234567", 1)
    assert message.registered_delivery == 1


async def test_ucs2_with_emoji() -> None:
    text = "Ciao 👋🏽 — привет 🎉"
    [sent] = await sent_as(text)
    message = read(sent)
    assert message.encoding == "ucs2"
    assert message.short_message == text


async def test_three_parts_reassemble() -> None:
    text = "".join(f"Part of a long text, line {n:02d} with {{braces}} and €. " for n in range(8))
    sent = await sent_as(text)
    assert len(sent) == 3
    parts = []
    for pdu in sent:
        message = read(pdu)
        sar = {param.tag: param.value for param in message.optional_params}
        parts.append(
            (
                sar[SAR_MSG_REF_NUM],
                sar[SAR_TOTAL_SEGMENTS],
                sar[SAR_SEGMENT_SEQNUM],
                message.short_message,
            )
        )
    assert len({reference for reference, _, _, _ in parts}) == 1
    assert [(total, number) for _, total, number, _ in parts] == [(3, 1), (3, 2), (3, 3)]
    assert "".join(text for *_, text in sorted(parts, key=lambda p: p[2])) == text
