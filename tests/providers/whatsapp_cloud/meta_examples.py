"""Webhook bodies as Meta documents them, each naming its source page.

The values (ids, numbers, names) are Meta's own examples; only the
``phone_number_id`` and business account id are swapped for the fake's by
:func:`for_fake`, so that they route to the provider under test. Status
timestamps are Meta's, in the past; the status machine does not mind.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.graph_api import BUSINESS_ACCOUNT_ID, PHONE_NUMBER_ID

_META_PHONE_NUMBER_ID = "106540352242922"
_META_WABA = "102290129340398"


def _envelope(value: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": _META_WABA, "changes": [{"value": value, "field": field}]}],
    }


def _messages(**parts: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": "15550783881",
            "phone_number_id": _META_PHONE_NUMBER_ID,
        },
        **parts,
    }


_SHEENA = [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}]

# https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/text
TEXT = _envelope(
    _messages(
        contacts=_SHEENA,
        messages=[
            {
                "from": "16505551234",
                "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                "timestamp": "1749416383",
                "type": "text",
                "text": {"body": "Does it come in another color?"},
            }
        ],
    )
)

# https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/image
IMAGE = _envelope(
    _messages(
        contacts=_SHEENA,
        messages=[
            {
                "from": "16505551234",
                "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
                "timestamp": "1750090702",
                "type": "image",
                "image": {
                    "caption": "Can I get this in red?",
                    "mime_type": "image/jpeg",
                    "sha256": "eyJ5bGQiOiJhcyIsInNoYSI6IjEyMyJ9",
                    "id": "1003383421387256",
                },
            }
        ],
    )
)

# https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/interactive
BUTTON_REPLY = _envelope(
    _messages(
        contacts=_SHEENA,
        messages=[
            {
                "context": {
                    "from": "15550783881",
                    "id": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1QjJGRjI1RDY0RkE4Nzg4QzcA",
                },
                "from": "16505551234",
                "id": "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQTRCMDU5RjE3NkQ2OTNBNTlEOQA=",
                "timestamp": "1739321024",
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": "cancel-button", "title": "Cancel"},
                },
            }
        ],
    )
)

# https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/reaction
REACTION = _envelope(
    _messages(
        contacts=_SHEENA,
        messages=[
            {
                "from": "16505551234",
                "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMgA=",
                "timestamp": "1744344496",
                "reaction": {
                    "message_id": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1QjJGRjI1RDY0RkE4Nzg4QzcA",
                    "emoji": "\U0001f44d",
                },
                "type": "reaction",
            }
        ],
    )
)

# https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/location
LOCATION = _envelope(
    _messages(
        contacts=_SHEENA,
        messages=[
            {
                "from": "16505551234",
                "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMwA=",
                "timestamp": "1744344496",
                "location": {
                    "address": "1 Hacker Way, Menlo Park, CA 94025",
                    "latitude": 37.483253479,
                    "longitude": -122.14960479736,
                    "name": "Main Street Beach",
                    "url": "https://www.facebook.com",
                },
                "type": "location",
            }
        ],
    )
)

# https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/message_template_status_update
TEMPLATE_APPROVED = _envelope(
    {
        "event": "APPROVED",
        "message_template_id": 806312974732579,
        "message_template_name": "welcome_template",
        "message_template_language": "en_US",
        "reason": "NONE",
        "message_template_category": "MARKETING",
    },
    field="message_template_status_update",
)


def status_example(wamid: str, status: str, recipient: str = "16505551234") -> dict[str, Any]:
    """A status webhook in the v24+ shape (no ``conversation``), as
    https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status
    shows it, for one of our messages."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": "1750263773",
        "recipient_id": recipient,
        "pricing": {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": "marketing",
        },
    }
    if status == "failed":
        del item["pricing"]
        item["errors"] = [
            {
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {
                    "details": "Message failed to send because more than 24 hours have "
                    "passed since the customer last replied to this number."
                },
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ]
    return _envelope(_messages(statuses=[item]))


def for_fake(example: dict[str, Any]) -> dict[str, Any]:
    """The example, routed to the fake's phone number and business account."""
    copied = copy.deepcopy(example)
    for entry in copied["entry"]:
        entry["id"] = BUSINESS_ACCOUNT_ID
        for change in entry["changes"]:
            metadata = change["value"].get("metadata")
            if metadata is not None:
                metadata["phone_number_id"] = PHONE_NUMBER_ID
    return copied
