"""Submitting through the ``smpp`` provider to the fake SMSC: addresses and encodings
as the SMSC reads them, long messages (UDH, SAR, message_payload), the window, the
0x58 pause, error answers, and what an unanswered submit_sm becomes."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import replace

import pytest

from tests.fakes.smsc import (
    BlackHoleSMSC,
    ErrorOnSubmitSMSC,
    HappySMSC,
    QueueFullSMSC,
    ThrottlingSMSC,
    UnbindOnSubmitSMSC,
)
from tests.providers.smpp.support import build, outbound
from tidings.providers.errors import (
    ConnectionDown,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
)

LONG_GSM = "".join(f"{i:03d} line of a long text with [brackets] and € euro; " for i in range(8))


async def test_one_sms_goes_with_its_addresses_and_a_normalised_id() -> None:
    async with HappySMSC() as smsc:
        provider, _ = build(smsc)
        try:
            accepted = await provider.send(outbound(body="Ciao! {ok} €5"))
        finally:
            await provider.close()
    [sent] = smsc.submitted
    assert (sent.source, sent.source_ton, sent.source_npi) == ("Tidings", 5, 0)
    assert (sent.destination, sent.dest_ton, sent.dest_npi) == ("393331234567", 1, 1)
    assert (sent.data_coding, sent.esm_class, sent.registered_delivery) == (0, 0, 1)
    assert sent.text == "Ciao! {ok} €5"
    # The SMSC answered "00002A01": kept lower-case without leading zeros.
    assert [(ref.external_id, ref.part) for ref in accepted.refs] == [("2a01", None)]
    assert smsc.unbinds == 1


async def test_a_long_message_goes_as_udh_parts_that_reassemble() -> None:
    assert len(LONG_GSM) > 306
    async with HappySMSC() as smsc:
        provider, _ = build(smsc)
        try:
            accepted = await provider.send(outbound(body=LONG_GSM))
        finally:
            await provider.close()
    assert len(smsc.submitted) == 3
    headers = [sent.udh for sent in smsc.submitted]
    assert all(sent.esm_class == 0x40 for sent in smsc.submitted)
    assert [h[:4] for h in headers] == [bytes((5, 0, 3, headers[0][3]))] * 3
    assert [(h[4], h[5]) for h in headers] == [(3, 1), (3, 2), (3, 3)]
    assert "".join(sent.text for sent in smsc.submitted) == LONG_GSM
    # No part ends on a lone escape.
    assert all(not sent.short_message.endswith(b"\x1b") for sent in smsc.submitted)
    assert [ref.part for ref in accepted.refs] == [1, 2, 3]
    assert len({ref.external_id for ref in accepted.refs}) == 3


async def test_ucs2_with_emoji_never_splits_a_surrogate_pair() -> None:
    text = "Привет 👋 " * 12
    async with HappySMSC() as smsc:
        provider, _ = build(smsc)
        try:
            await provider.send(outbound(body=text))
        finally:
            await provider.close()
    assert all(sent.data_coding == 8 for sent in smsc.submitted)
    assert len(smsc.submitted) > 1
    # Each part decodes alone (a cut surrogate would not).
    assert "".join(sent.text for sent in smsc.submitted) == text


async def test_sar_and_payload_long_messages() -> None:
    async with HappySMSC() as smsc:
        sar, _ = build(smsc, longMessages="sar")
        payload, _ = build(smsc, longMessages="payload")
        try:
            by_sar = await sar.send(outbound(body=LONG_GSM))
            by_payload = await payload.send(outbound(body=LONG_GSM))
        finally:
            await sar.close()
            await payload.close()
    sar_parts, [whole] = smsc.submitted[:3], smsc.submitted[3:]
    assert [struct.unpack(">H", s.tlvs[0x020C])[0] for s in sar_parts].count(
        struct.unpack(">H", sar_parts[0].tlvs[0x020C])[0]
    ) == 3
    assert [(s.tlvs[0x020E][0], s.tlvs[0x020F][0]) for s in sar_parts] == [(3, 1), (3, 2), (3, 3)]
    assert "".join(s.text for s in sar_parts) == LONG_GSM
    assert whole.short_message == b"" and whole.text == LONG_GSM
    assert (len(by_sar.refs), len(by_payload.refs)) == (3, 1)


async def test_latin1_alphabet_when_the_text_fits_else_ucs2() -> None:
    async with HappySMSC() as smsc:
        provider, _ = build(smsc, defaultAlphabet="latin1")
        try:
            await provider.send(outbound(body="Café @ 10!"))
            await provider.send(outbound(body="Costs 5 €"))
        finally:
            await provider.close()
    latin, euro = smsc.submitted
    assert (latin.data_coding, latin.short_message) == (0, "Café @ 10!".encode("latin-1"))
    assert (euro.data_coding, euro.text) == (8, "Costs 5 €")


async def test_the_window_is_never_exceeded_and_is_used() -> None:
    async with HappySMSC(answer_delay=0.05) as smsc:
        provider, _ = build(smsc, window=4)
        try:
            await asyncio.gather(*(provider.send(outbound(number=n)) for n in range(30)))
        finally:
            await provider.close()
    assert len(smsc.submitted) == 30
    assert smsc.max_outstanding == 4


async def test_throttling_pauses_the_bind_and_resubmits_in_order() -> None:
    async with ThrottlingSMSC(per_second=5) as smsc:
        provider, _ = build(smsc, window=10)
        try:
            sends = [
                asyncio.ensure_future(provider.send(outbound(body=f"message {n}", number=n)))
                for n in range(14)
            ]
            await asyncio.gather(*sends)
        finally:
            await provider.close()
    assert smsc.throttled > 0
    accepted = [sent.text for sent in smsc.submitted if sent.status == 0]
    assert accepted == [f"message {n}" for n in range(14)]


async def test_error_answers_become_the_error_tree() -> None:
    async with QueueFullSMSC(refusals=1) as full:
        provider, _ = build(full)
        try:
            with pytest.raises(RetryableDeliveryError) as queue_full:
                await provider.send(outbound())
            assert not isinstance(queue_full.value, ThrottledError)
            assert queue_full.value.code == "smpp_0x14"
            assert (await provider.send(outbound())).refs
        finally:
            await provider.close()
    async with ErrorOnSubmitSMSC({"393330000000": 0x0B}) as refusing:
        provider, _ = build(refusing)
        try:
            with pytest.raises(PermanentDeliveryError) as invalid:
                await provider.send(outbound(to="+393330000000"))
            assert invalid.value.code == "smpp_0x0b"
        finally:
            await provider.close()


async def test_an_unanswered_submit_is_retryable() -> None:
    async with BlackHoleSMSC() as smsc:
        provider, _ = build(smsc, responseTimeoutSeconds=0.2)
        try:
            with pytest.raises(RetryableDeliveryError) as unanswered:
                await provider.send(outbound())
        finally:
            await provider.close()
    assert unanswered.value.code == "smpp_no_response"


async def test_an_unbind_on_submit_loses_that_submit_then_binds_again() -> None:
    async with UnbindOnSubmitSMSC(unbinds=1) as smsc:
        provider, _ = build(smsc)
        try:
            with pytest.raises(ConnectionDown):
                await provider.send(outbound())
            accepted = await provider.send(outbound())
        finally:
            await provider.close()
    assert accepted.refs
    assert smsc.binds == 2


async def test_a_pause_longer_than_the_wait_hands_the_submission_back() -> None:
    async with ThrottlingSMSC(per_second=0) as smsc:
        provider, _ = build(smsc, throttleWaitSeconds=0)
        try:
            with pytest.raises(ThrottledError) as throttled:
                await provider.send(outbound())
            # The bind is paused: the next one is handed back without a submit_sm.
            with pytest.raises(ThrottledError):
                await provider.send(outbound())
        finally:
            await provider.close()
    assert throttled.value.code == "throttled"
    assert len(smsc.submitted) == 1


async def test_short_code_sender_and_relative_validity() -> None:
    message = replace(outbound(), sender="12345", content={"validityPeriod": 2 * 86400 + 3600 + 61})
    async with HappySMSC() as smsc:
        provider, _ = build(smsc, registeredDelivery=False)
        try:
            await provider.send(message)
        finally:
            await provider.close()
    [sent] = smsc.submitted
    assert (sent.source, sent.source_ton, sent.source_npi) == ("12345", 3, 0)
    assert sent.validity_period == "000002010101000R"
    assert sent.registered_delivery == 0
