"""The ``whatsapp_cloud`` provider: a WhatsApp Business phone number on Meta's Cloud API.

``send`` turns a stored message into the Graph JSON of ``POST /{phone-number-id}/messages``
(:func:`graph_message`): a text (with ``preview_url``), media by link (image,
video and document with a caption, a document's filename; audio and stickers take
no caption, so their text goes as a second message), a reply (``context.message_id``,
the wamid of the message replied to) or a template notification (the components
were rendered in Graph's form when the message was made, see
:mod:`tidings.templates.rendering`). Recipients are phone numbers (``to``, digits)
or business-scoped user ids (``recipient``, e.g. ``US.13491208655302741918``).
Every send carries our message id as ``biz_opaque_callback_data``, which Meta
echoes in status webhooks. The wamid Graph answers is the message's provider id.

``check`` reads the phone number (display number, verified name, quality rating):
it proves the token works and sends nothing. The template catalog
(:meth:`templates`, :meth:`submit_template`) and :meth:`mark_read` use the same
client.
"""

from __future__ import annotations

from typing import Any

from tidings.channels.whatsapp.chats import is_user_id
from tidings.providers.base import Accepted, OutboundMessage, ProviderDeps, ProviderRef
from tidings.providers.errors import PermanentDeliveryError, RetryableDeliveryError
from tidings.providers.registry import ProviderIdentity
from tidings.providers.whatsapp_cloud.client import GraphClient
from tidings.providers.whatsapp_cloud.config import WhatsAppCloudConfig

CAPTIONED = frozenset({"image", "video", "document"})
MEDIA_TYPES = CAPTIONED | {"audio", "sticker"}
TEMPLATE_FIELDS = "name,status,category,language,components,parameter_format,rejected_reason"
TEMPLATE_PAGE = 100
# Never follow more pages than this in one sync (a business account has at most
# a few thousand templates).
MAX_TEMPLATE_PAGES = 200


def recipient_fields(to: str) -> dict[str, str]:
    """``to`` for a phone number (digits, no ``+``), ``recipient`` for a user id."""
    if is_user_id(to):
        return {"recipient": to}
    digits = to.removeprefix("+")
    if not digits.isdigit():
        raise PermanentDeliveryError("invalid_recipient", f"{to!r} is not a WhatsApp recipient.")
    return {"to": digits}


def _envelope(message: OutboundMessage, kind: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        # A contact who changed its number or user id keeps its conversation's
        # address (``to``); the send goes where it is reached now.
        **recipient_fields(str(message.content.get("deliverTo") or message.to)),
        "type": kind,
        "biz_opaque_callback_data": message.id,
    }
    reply_to = message.content.get("replyToProviderId")
    if reply_to:
        body["context"] = {"message_id": reply_to}
    return body


def _text(message: OutboundMessage, text: str) -> dict[str, Any]:
    body = _envelope(message, "text")
    body["text"] = {"body": text, "preview_url": bool(message.content.get("previewUrl"))}
    return body


def _template(message: OutboundMessage, template: dict[str, Any]) -> dict[str, Any]:
    body = _envelope(message, "template")
    graph: dict[str, Any] = {
        "name": template["name"],
        "language": {"code": template["language"], "policy": "deterministic"},
    }
    if template.get("components"):
        graph["components"] = template["components"]
    body["template"] = graph
    return body


def graph_message(message: OutboundMessage) -> list[dict[str, Any]]:
    """The Graph request bodies of one message, in the order they are sent."""
    template = message.content.get("template")
    if isinstance(template, dict):
        return [_template(message, template)]
    media = message.content.get("media")
    if not isinstance(media, dict):
        if not message.body:
            raise PermanentDeliveryError("invalid_request", "The message has no content.")
        return [_text(message, message.body)]
    kind = str(media.get("type"))
    if kind not in MEDIA_TYPES:
        raise PermanentDeliveryError("unsupported", f"WhatsApp sends no {kind!r} media.")
    item: dict[str, Any] = {"link": media["url"]}
    caption = media.get("caption") or None
    extra_text = message.body
    if kind in CAPTIONED:
        if caption is None and message.body:
            caption, extra_text = message.body, None
        elif caption == message.body:
            extra_text = None
        if caption:
            item["caption"] = caption
    if kind == "document" and media.get("filename"):
        item["filename"] = media["filename"]
    first = _envelope(message, kind)
    first[kind] = item
    bodies = [first]
    if extra_text:
        # The text follows the media; a reply's context goes with the media only.
        follow = _text(message, extra_text)
        follow.pop("context", None)
        bodies.append(follow)
    return bodies


def _wamid(answer: dict[str, Any]) -> str:
    messages = answer.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        wamid = messages[0].get("id")
        if isinstance(wamid, str) and wamid:
            return wamid
    # Graph said 200 but named no message: whether it was taken is unknown.
    raise RetryableDeliveryError("provider_error", "Graph accepted the request but gave no id.")


class WhatsAppCloudProvider:
    kind = "whatsapp_cloud"

    def __init__(
        self, identity: ProviderIdentity, config: WhatsAppCloudConfig, deps: ProviderDeps
    ) -> None:
        self.id = identity.id
        self.channel = identity.channel
        self.config = config
        self._graph = GraphClient(config, deps.http_transport)
        self._messages_path = f"{config.phone_number_id}/messages"

    async def send(self, message: OutboundMessage) -> Accepted:
        bodies = graph_message(message)
        refs: list[ProviderRef] = []
        for part, body in enumerate(bodies, start=1):
            wamid = _wamid(await self._graph.post(self._messages_path, body))
            refs.append(ProviderRef(wamid, part if len(bodies) > 1 else None, message.to))
        return Accepted(tuple(refs))

    async def check(self) -> str:
        number = await self._graph.get(
            self.config.phone_number_id,
            {"fields": "display_phone_number,verified_name,quality_rating"},
        )
        shown = number.get("display_phone_number") or self.config.phone_number_id
        name = number.get("verified_name") or "no verified name"
        quality = number.get("quality_rating") or "unknown"
        return f"Graph answered for {shown} ({name}), quality rating {quality}; nothing was sent."

    async def mark_read(self, wamid: str) -> None:
        """Tell the contact their message was read (blue ticks, earlier ones too)."""
        await self._graph.post(
            self._messages_path,
            {"messaging_product": "whatsapp", "status": "read", "message_id": wamid},
        )

    async def templates(self) -> list[dict[str, Any]]:
        """Every template of the business account, every status, every page."""
        found: list[dict[str, Any]] = []
        page = await self._graph.get(
            f"{self.config.business_account_id}/message_templates",
            {"fields": TEMPLATE_FIELDS, "limit": str(TEMPLATE_PAGE)},
        )
        for _ in range(MAX_TEMPLATE_PAGES):
            data = page.get("data")
            if isinstance(data, list):
                found.extend(item for item in data if isinstance(item, dict))
            following = (page.get("paging") or {}).get("next")
            if not isinstance(following, str) or not following:
                break
            page = await self._graph.get_url(following)
        return found

    async def submit_template(self, template: dict[str, Any]) -> dict[str, Any]:
        """Submit a template (Graph's shape) for review; Graph's answer (id, status)."""
        return await self._graph.post(
            f"{self.config.business_account_id}/message_templates", template
        )

    async def close(self) -> None:
        await self._graph.close()
