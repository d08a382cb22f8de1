"""What arrives on the binds: receipts in their variants (text, TLVs, both; hex or
decimal ids; failures with their codes; not-final states), contacts' messages
(GSM-7, UCS-2, concatenated by 8- or 16-bit UDH or SAR), and the rule that a
deliver_sm is answered only once stored (a burst stored in one insert, a refused
batch stored again one by one)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from tests.fakes.smsc import DeliveryReceiptSMSC, HappySMSC
from tests.providers.smpp.support import MemoryInbox, build, outbound, until
from tidings.messages.status import Status
from tidings.providers.base import InboundMessage, RawReport, StatusReport
from tidings.providers.smpp.receipts import normalise_id, parse_report


def reports_of(inbox_reports: list) -> list:  # type: ignore[type-arg]
    found = []
    for raw in inbox_reports:
        found.extend(parse_report(raw.payload))
    return found


@pytest.mark.parametrize("style", ["text", "tlv", "both"])
async def test_receipts_name_the_id_send_returned(style: str) -> None:
    async with DeliveryReceiptSMSC(style) as smsc:
        provider, inbox = build(smsc)
        try:
            delivered = await provider.send(outbound())
            failed = await provider.send(outbound(to="+393330000002"))
            await until(lambda: len(inbox.reports) == 2, "two receipts")
        finally:
            await provider.close()
    first, second = reports_of(inbox.reports)
    assert isinstance(first, StatusReport) and isinstance(second, StatusReport)
    assert (first.external_id, first.status) == (delivered.external_id, Status.DELIVERED)
    assert (second.external_id, second.status) == (failed.external_id, Status.UNDELIVERED)
    assert second.error_code is not None and second.error_code.startswith("smpp_undeliverable")
    if style != "tlv":
        assert second.error_code == "smpp_undeliverable_034"
    else:
        assert second.detail["networkError"] == "GSM 34"
    assert smsc.deliver_answers == [0, 0]


async def test_a_decimal_text_id_for_a_hex_submit_id() -> None:
    async with DeliveryReceiptSMSC("text", text_id_decimal=True) as smsc:
        provider, inbox = build(smsc, receiptIdBase="decimal")
        try:
            accepted = await provider.send(outbound())
            await until(lambda: len(inbox.reports) == 1, "a receipt")
        finally:
            await provider.close()
    [report] = reports_of(inbox.reports)
    assert report.external_id == accepted.external_id


async def test_a_repeated_receipt_has_the_same_dedupe_key() -> None:
    async with DeliveryReceiptSMSC(duplicate=True) as smsc:
        provider, inbox = build(smsc)
        try:
            await provider.send(outbound())
            await until(lambda: len(inbox.reports) == 2, "both copies")
        finally:
            await provider.close()
    assert inbox.reports[0].dedupe_key == inbox.reports[1].dedupe_key


def test_ids_normalise_the_same_on_both_sides() -> None:
    assert normalise_id(" 00002A01\x00") == normalise_id("2a01") == "2a01"
    assert normalise_id("000") == "0"


def test_not_final_states_are_events_and_variants_are_read() -> None:
    def receipt(text: str) -> StatusReport:
        payload = {
            "kind": "deliver_sm",
            "source": "393331234567",
            "destination": "Tidings",
            "esmClass": 4,
            "dataCoding": 0,
            "shortMessage": text.encode().hex(),
            "tlvs": {},
            "receivedAt": "2026-12-06T12:00:00+00:00",
        }
        [found] = parse_report(payload)
        assert isinstance(found, StatusReport)
        return found

    enroute = receipt("id:0A sub:001 dlvrd:000 stat:ENROUTE err:000")
    assert (enroute.external_id, enroute.status, enroute.event) == ("a", Status.SENT, "enroute")
    accepted = receipt("id:77 Sub:001 stat:ACCEPTD err:0 Text:hi")
    assert (accepted.status, accepted.event) == (Status.SENT, None)
    expired = receipt("id:77 submit date:261206120000 done date:261207120000 stat:EXPIRED err:ABC")
    assert (expired.status, expired.error_code) == (Status.UNDELIVERED, "smpp_expired_ABC")
    with pytest.raises(ValueError):
        receipt("stat:DELIVRD")


@pytest.mark.parametrize("concat", ["udh8", "udh16", "sar"])
async def test_a_concatenated_sms_is_joined(concat: str) -> None:
    text = "Hello from a contact whose message came in three parts: {ok} and done."
    async with HappySMSC() as smsc:
        provider, inbox = build(smsc)
        try:
            await provider.start()
            await smsc.wait_bound()
            answers = await smsc.deliver_mo(
                "393331234567", "Tidings", text, split=25, concat=concat
            )
        finally:
            await provider.close()
    assert answers == [0, 0, 0]
    inbound = [report for report in reports_of(inbox.reports) if isinstance(report, InboundMessage)]
    assert len(inbound) == 1
    assert (inbound[0].sender, inbound[0].body) == ("+393331234567", text)
    assert inbound[0].content == {"parts": 3}


async def test_one_part_ucs2_sms() -> None:
    async with HappySMSC() as smsc:
        provider, inbox = build(smsc)
        try:
            await provider.start()
            await smsc.wait_bound()
            await smsc.deliver_mo("393331234567", "Tidings", "Спасибо 🙏")
        finally:
            await provider.close()
    [message] = reports_of(inbox.reports)
    assert isinstance(message, InboundMessage)
    assert message.body == "Спасибо 🙏"


async def test_nothing_is_answered_before_it_is_stored() -> None:
    async with HappySMSC() as smsc:
        provider, inbox = build(smsc)
        try:
            await provider.start()
            await smsc.wait_bound()
            inbox.fail = 1
            refused = await smsc.deliver_mo("393331234567", "Tidings", "STOP")
            assert inbox.reports == []
            again = await smsc.deliver_mo("393331234567", "Tidings", "STOP")
        finally:
            await provider.close()
    # ESME_RX_T_APPN: the SMSC keeps it and delivers it again.
    assert (refused, again) == ([0x64], [0])
    assert len(inbox.reports) == 1


async def test_parts_still_missing_after_the_timeout_are_given_up() -> None:
    async with HappySMSC() as smsc:
        provider, inbox = build(smsc)
        provider.part_timeout = 0.2
        try:
            await provider.start()
            await smsc.wait_bound()
            for number in (1, 3):
                await smsc.deliver_sm(
                    source="393331234567",
                    destination="Tidings",
                    short_message=bytes((5, 0, 3, 9, 3, number)) + f"part{number} ".encode(),
                    esm_class=0x40,
                )
            await until(lambda: any(r.payload["kind"] == "mo" for r in inbox.reports), "given up")
        finally:
            await provider.close()
    [message] = reports_of(inbox.reports)
    assert isinstance(message, InboundMessage)
    assert message.body == "part1 part3 "
    assert message.content == {"parts": 2, "missingParts": 1}


def test_an_acknowledgement_is_not_a_contacts_message_and_a_notification_is_a_receipt() -> None:
    def stored(esm_class: int, text: str) -> dict[str, object]:
        return {
            "kind": "deliver_sm",
            "source": "393331234567",
            "destination": "Tidings",
            "esmClass": esm_class,
            "dataCoding": 0,
            "shortMessage": text.encode().hex(),
            "tlvs": {},
            "receivedAt": "2026-12-06T12:00:00+00:00",
        }

    assert parse_report(stored(0x08, "ack")) == []
    [notification] = parse_report(stored(0x20, "id:1f stat:ENROUTE"))
    assert isinstance(notification, StatusReport)
    assert (notification.external_id, notification.event) == ("1f", "enroute")


class CountingInbox(MemoryInbox):
    """Records how many deliver_sm each store call brought (failed ones too)."""

    def __init__(self) -> None:
        super().__init__()
        self.stores: list[int] = []

    async def store(self, provider_id: str, reports: Sequence[RawReport]) -> int:
        self.stores.append(len(reports))
        return await super().store(provider_id, reports)


async def _burst(smsc: HappySMSC, count: int) -> list[int | None]:
    """``count`` receipts written at once, as an SMSC with a backlog sends them."""
    return list(
        await asyncio.gather(
            *(
                smsc.deliver_sm(
                    source="393331234567",
                    destination="Tidings",
                    short_message=f"id:{number:08X} stat:DELIVRD err:000".encode(),
                    esm_class=0x04,
                )
                for number in range(1, count + 1)
            )
        )
    )


async def test_a_burst_of_receipts_is_stored_in_one_insert_and_each_answered() -> None:
    async with HappySMSC() as smsc:
        provider, _ = build(smsc)
        inbox = CountingInbox()
        provider._deps = replace(provider._deps, inbox=inbox)
        try:
            await provider.start()
            await smsc.wait_bound()
            answers = await _burst(smsc, 5)
        finally:
            await provider.close()
    assert answers == [0] * 5
    assert inbox.stores == [5]
    assert sorted(report.dedupe_key for report in inbox.reports) == [
        f"dlr:{number:x}:DELIVRD" for number in range(1, 6)
    ]


async def test_a_refused_batch_is_stored_again_one_by_one() -> None:
    async with HappySMSC() as smsc:
        provider, _ = build(smsc)
        inbox = CountingInbox()
        provider._deps = replace(provider._deps, inbox=inbox)
        try:
            await provider.start()
            await smsc.wait_bound()
            inbox.fail = 1
            answers = await _burst(smsc, 3)
        finally:
            await provider.close()
    # The batch failed; each alone was stored, and only then answered.
    assert inbox.stores == [3, 1, 1, 1]
    assert answers == [0, 0, 0]
    assert len(inbox.reports) == 3
