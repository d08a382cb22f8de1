"""The provider and its webhook reader on their own, against the Graph fake: user-id
recipients, stickers, the check's sentence, Meta's codes as the error tree, and
messages of every type read back from stored reports."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.graph_api import GraphApi
from tidings.core.clock import SystemClock
from tidings.core.environments import Environment
from tidings.messages.status import Status
from tidings.providers.base import InboundMessage, OutboundMessage, ProviderDeps, StatusReport
from tidings.providers.errors import (
    ConfigurationError,
    ConnectionDown,
    PermanentDeliveryError,
    ThrottledError,
)
from tidings.providers.registry import ProviderIdentity, parse_config
from tidings.providers.whatsapp_cloud import WHATSAPP_CLOUD, WhatsAppCloudProvider
from tidings.providers.whatsapp_cloud.webhook import parse_report, split_body

USER_ID = "US.13491208655302741918"


def provider_for(graph: GraphApi, **config: Any) -> WhatsAppCloudProvider:
    deps = ProviderDeps(clock=SystemClock(), writer=None, inbox=None)  # type: ignore[arg-type]
    identity = ProviderIdentity(
        "prv_test", "acc_test", Environment.PRODUCTION, "whatsapp", "whatsapp_cloud", "test"
    )
    built = WHATSAPP_CLOUD.build(
        identity, parse_config(WHATSAPP_CLOUD, graph.provider_config(**config)), deps
    )
    assert isinstance(built, WhatsAppCloudProvider)
    return built


def outbound(to: str, **content: Any) -> OutboundMessage:
    body = content.pop("body", "Hi")
    return OutboundMessage(
        id="msg_1",
        account_id="acc_test",
        environment=Environment.PRODUCTION,
        channel="whatsapp",
        to=to,
        sender=None,
        body=body,
        content=content,
        attempt=1,
    )


async def test_user_ids_go_as_recipient_and_stickers_take_no_caption(graph: GraphApi) -> None:
    graph.enforce_window = False
    provider = provider_for(graph)
    try:
        accepted = await provider.send(outbound(USER_ID))
        assert accepted.external_id.startswith("wamid.")
        sticker = await provider.send(
            outbound(
                "+393331234567",
                body=None,
                media={"type": "sticker", "url": "https://cdn.example.com/s.webp"},
            )
        )
        assert len(sticker.refs) == 1
    finally:
        await provider.close()
    text, sent_sticker = graph.sent()
    assert text["recipient"] == USER_ID and "to" not in text
    assert sent_sticker["sticker"] == {"link": "https://cdn.example.com/s.webp"}


async def test_check_reads_the_phone_number(graph: GraphApi) -> None:
    provider = provider_for(graph)
    try:
        detail = await provider.check()
    finally:
        await provider.close()
    assert "+1 555-078-3881" in detail and "GREEN" in detail and "Tidings Test Shop" in detail
    assert graph.sent() == []


async def test_meta_codes_raise_the_error_tree(graph: GraphApi) -> None:
    graph.enforce_window = True
    graph.pair_burst = 1
    provider = provider_for(graph)
    try:
        with pytest.raises(PermanentDeliveryError) as outside:
            await provider.send(outbound("+393331234567"))
        assert outside.value.code == "outside_customer_service_window"
        graph.enforce_window = False
        await provider.send(outbound("+393331234568"))
        with pytest.raises(ThrottledError) as pair:
            await provider.send(outbound("+393331234568"))
        assert pair.value.code == "pair_rate_limited" and pair.value.retry_after == 6.0
        graph.access_token = "EAAG-other"
        with pytest.raises(ConfigurationError) as refused:
            await provider.check()
        assert refused.value.code == "credentials_refused"
        assert "EAAG" not in str(refused.value)
    finally:
        await provider.close()


async def test_an_unreachable_graph_is_connection_down(graph: GraphApi) -> None:
    provider = provider_for(graph, baseUrl="http://127.0.0.1:9")
    try:
        with pytest.raises(ConnectionDown):
            await provider.send(outbound("+393331234567"))
    finally:
        await provider.close()


def _stored(value: dict[str, Any]) -> list[dict[str, Any]]:
    change = {"field": "messages", "value": value}
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    return [report.payload for _, report in split_body(body).reports]


METADATA = {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}


@pytest.mark.parametrize(
    ("message", "sender", "body"),
    [
        (
            {"from_user_id": USER_ID, "type": "text", "text": {"body": "hi"}},
            USER_ID,
            "hi",
        ),
        (
            {"from": "16505551234", "type": "button", "button": {"text": "Yes", "payload": "y"}},
            "+16505551234",
            "Yes",
        ),
        (
            {
                "from": "16505551234",
                "type": "interactive",
                "interactive": {
                    "type": "list_reply",
                    "list_reply": {"id": "r1", "title": "Red", "description": "d"},
                },
            },
            "+16505551234",
            "Red",
        ),
        (
            {
                "from": "16505551234",
                "type": "contacts",
                "contacts": [{"name": {"formatted_name": "Ada"}, "phones": []}],
            },
            "+16505551234",
            None,
        ),
        (
            {
                "from": "16505551234",
                "type": "unsupported",
                "errors": [{"code": 131051, "title": "Message type unknown"}],
            },
            "+16505551234",
            None,
        ),
    ],
)
def test_messages_of_every_type_read_back(
    message: dict[str, Any], sender: str, body: str | None
) -> None:
    message = {"id": "wamid.X", "timestamp": "1750090702", **message}
    contacts = [{"profile": {"name": "Ada", "username": "ada"}, "user_id": USER_ID}]
    (payload,) = _stored({"metadata": METADATA, "contacts": contacts, "messages": [message]})
    (report,) = parse_report(payload)
    assert isinstance(report, InboundMessage)
    assert (report.sender, report.body, report.external_id) == (sender, body, "wamid.X")
    assert report.content["type"] == message["type"]
    assert report.content["contact"]["userId"] == USER_ID


def test_each_message_of_a_batch_keeps_its_own_contact() -> None:
    contacts = [
        {"profile": {"name": "Ada"}, "wa_id": "16505551234", "user_id": "US.1111"},
        {"profile": {"name": "Bo", "username": "bo"}, "user_id": USER_ID},
    ]
    messages = [
        {"id": f"wamid.{index}", "timestamp": "1750090702", "type": "text", "text": {"body": "x"}}
        | sender
        for index, sender in enumerate(
            [{"from_user_id": USER_ID}, {"from": "16505551234", "from_user_id": "US.1111"}]
        )
    ]
    payloads = _stored({"metadata": METADATA, "contacts": contacts, "messages": messages})
    (bo,), (ada,) = (parse_report(payload) for payload in payloads)
    assert isinstance(bo, InboundMessage) and isinstance(ada, InboundMessage)
    assert (bo.sender, bo.content["contact"]) == (
        USER_ID,
        {"name": "Bo", "username": "bo", "userId": USER_ID},
    )
    assert (ada.sender, ada.content["contact"]) == (
        "+16505551234",
        {"name": "Ada", "waId": "16505551234", "userId": "US.1111"},
    )


def test_statuses_read_back_with_pricing_and_meta_codes() -> None:
    statuses = [
        {
            "id": "wamid.A",
            "status": "sent",
            "timestamp": "1750263773",
            "recipient_id": "1",
            "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility"},
        },
        {"id": "wamid.A", "status": "played", "timestamp": "1750263774", "recipient_id": "1"},
        {
            "id": "wamid.A",
            "status": "failed",
            "timestamp": "1750263775",
            "recipient_id": "1",
            "errors": [
                {
                    "code": 131049,
                    "title": "Not delivered",
                    "error_data": {"details": "ecosystem engagement"},
                }
            ],
        },
    ]
    payloads = _stored({"metadata": METADATA, "statuses": statuses})
    reports = [report for payload in payloads for report in parse_report(payload)]
    assert all(isinstance(report, StatusReport) for report in reports)
    sent, played, failed = reports
    assert isinstance(sent, StatusReport) and sent.detail["pricing"]["pricing_model"] == "PMP"
    assert isinstance(played, StatusReport) and played.status == Status.READ
    assert isinstance(failed, StatusReport) and failed.status == Status.UNDELIVERED
    assert failed.error_code == "not_delivered_by_whatsapp"
    assert failed.error_message == "Not delivered (Meta 131049): ecosystem engagement"


def test_an_unknown_status_is_unreadable() -> None:
    (payload,) = _stored(
        {"metadata": METADATA, "statuses": [{"id": "w", "status": "warped", "timestamp": "1"}]}
    )
    with pytest.raises(ValueError):
        parse_report(payload)
