"""Meta's webhooks: the verification handshake, the signature, and reading the body.

:class:`WhatsAppWebhook` is the kind's adapter for the inbound edge
(:mod:`tidings.inbound.router`). It checks ``X-Hub-Signature-256`` over the raw
bytes received (never re-serialised JSON: Meta escapes non-ASCII, so a re-encoded
body hashes differently) in constant time, a missing header being as bad as a
wrong one. It walks **every** ``entry[].changes[]`` (one POST may batch several)
and cuts the body into one raw report per status and per message, each under a
key that recognises Meta's repeats: ``status:<wamid>:<status>`` and
``message:<wamid>``. Each report keeps what it needs from its change (the
metadata with ``phone_number_id``, the contacts) so it reads alone.
``message_template_status_update`` changes become :class:`TemplateUpdate` items
for the template catalog.

:func:`parse_report` reads a stored report back: ``statuses[]`` become status
reports (``sent``, ``delivered``, ``read``; ``played`` counts as read; ``failed``,
which comes after acceptance, ends the message ``undelivered`` with our code for
Meta's, see :mod:`.errors`), ``messages[]`` contacts writing in. A status that
shows the recipient's phone and user id together (``recipient_user_id``, or the
change's ``contacts[]``) also yields a :class:`ContactUpdate` with both, so that
the contact's later messages carrying only its user id find its conversation.
A ``system`` message (``user_changed_number``, ``user_changed_user_id``) is not
the contact writing: it becomes a :class:`ContactUpdate` with the new phone and
user id and the old ones, never an inbound message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tidings.messages.status import Status
from tidings.providers.base import (
    ContactUpdate,
    InboundMessage,
    RawReport,
    Report,
    StatusReport,
)
from tidings.providers.whatsapp_cloud.config import WhatsAppCloudConfig
from tidings.providers.whatsapp_cloud.errors import failed_status_code

SIGNATURE_HEADER = "x-hub-signature-256"
# Meta's deliveries are at most 3 MB.
MAX_BODY_BYTES = 3 * 1024 * 1024

STATUSES = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "played": Status.READ,
    "failed": Status.UNDELIVERED,
}


@dataclass(frozen=True, slots=True)
class TemplateUpdate:
    """A ``message_template_status_update``: Meta decided about a template."""

    business_account_id: str
    template_id: str | None
    name: str
    language: str
    event: str
    reason: str | None
    category: str | None


@dataclass(frozen=True, slots=True)
class Split:
    """One webhook body cut into reports, each with the phone number it is for."""

    reports: list[tuple[str, RawReport]]
    templates: list[TemplateUpdate]


def signature_valid(app_secret: str, raw: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def sign(app_secret: str, raw: bytes) -> str:
    """The ``X-Hub-Signature-256`` Meta would send with ``raw``."""
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


def _at(timestamp: Any) -> datetime:
    return datetime.fromtimestamp(int(timestamp), UTC)


def split_body(body: Any) -> Split:
    """Cut Meta's webhook body into raw reports; ValueError when it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
        raise ValueError("not a WhatsApp Business webhook: no entry list")
    reports: list[tuple[str, RawReport]] = []
    templates: list[TemplateUpdate] = []
    for entry in body["entry"]:
        if not isinstance(entry, dict):
            continue
        waba = str(entry.get("id") or "")
        for change in entry.get("changes") or []:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                continue
            value: dict[str, Any] = change["value"]
            field = change.get("field")
            if field == "messages":
                reports.extend(_message_reports(value))
            elif field == "message_template_status_update":
                update = _template_update(waba, value)
                if update is not None:
                    templates.append(update)
    return Split(reports, templates)


def _message_reports(value: dict[str, Any]) -> list[tuple[str, RawReport]]:
    metadata = value.get("metadata") or {}
    phone_number_id = str(metadata.get("phone_number_id") or "")
    contacts = value.get("contacts") or []
    found: list[tuple[str, RawReport]] = []
    for status in value.get("statuses") or []:
        if isinstance(status, dict) and status.get("id") and status.get("status"):
            key = f"status:{status['id']}:{status['status']}"
            payload = {"metadata": metadata, "status": status}
            if contacts:
                payload["contacts"] = contacts
            found.append((phone_number_id, RawReport(key, payload)))
    for message in value.get("messages") or []:
        if isinstance(message, dict) and message.get("id"):
            payload = {"metadata": metadata, "contacts": contacts, "message": message}
            found.append((phone_number_id, RawReport(f"message:{message['id']}", payload)))
    return found


def _template_update(waba: str, value: dict[str, Any]) -> TemplateUpdate | None:
    name, language, event = (
        value.get("message_template_name"),
        value.get("message_template_language"),
        value.get("event"),
    )
    if not (isinstance(name, str) and isinstance(language, str) and isinstance(event, str)):
        return None
    reason = value.get("reason")
    template_id = value.get("message_template_id")
    category = value.get("message_template_category")
    return TemplateUpdate(
        business_account_id=waba,
        template_id=None if template_id is None else str(template_id),
        name=name,
        language=language,
        event=event.upper(),
        reason=reason if isinstance(reason, str) and reason and reason != "NONE" else None,
        category=category if isinstance(category, str) else None,
    )


def parse_report(payload: dict[str, Any]) -> list[Report]:
    if "status" in payload:
        found: list[Report] = [_status(payload["status"])]
        seen = _recipient_seen(payload["status"], payload.get("contacts"))
        if seen is not None:
            found.append(seen)
        return found
    message = payload["message"]
    if message.get("type") == "system":
        return [_system(message)]
    return [_inbound(message, payload.get("metadata") or {}, payload.get("contacts"))]


def _phone(value: Any) -> str | None:
    if isinstance(value, (str, int)) and str(value).strip():
        digits = str(value).strip()
        return digits if digits.startswith("+") else f"+{digits}"
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _recipient_seen(status: dict[str, Any], contacts: Any) -> ContactUpdate | None:
    """The recipient's phone and user id when the status shows both (a group's
    status names the group, not a contact)."""
    if status.get("recipient_type") == "group":
        return None
    phone = _text(status.get("recipient_id"))
    user_id = _text(status.get("recipient_user_id"))
    found = [c for c in contacts or [] if isinstance(c, dict)]
    for contact in found:
        if (phone and contact.get("wa_id") == phone) or (
            user_id and contact.get("user_id") == user_id
        ):
            phone = phone or _text(contact.get("wa_id"))
            user_id = user_id or _text(contact.get("user_id"))
            break
    else:
        if len(found) == 1 and not (phone and user_id):
            phone = phone or _text(found[0].get("wa_id"))
            user_id = user_id or _text(found[0].get("user_id"))
    if not (phone and user_id):
        return None
    return ContactUpdate(
        channel="whatsapp",
        at=_at(status["timestamp"]),
        phone=_phone(phone),
        user_id=user_id,
        external_id=str(status["id"]),
    )


def _system(message: dict[str, Any]) -> ContactUpdate:
    """A ``system`` message: the contact's number or user id changed. The old phone
    is ``from``, the new one ``system.wa_id`` (``new_wa_id`` before Graph v12);
    the new user id ``system.user_id``, the old one ``system.previous_user_id``
    (else ``from_user_id`` when it is not the new one)."""
    system = message.get("system")
    system = system if isinstance(system, dict) else {}
    user_id = _text(system.get("user_id"))
    from_user_id = _text(message.get("from_user_id"))
    previous_user_id = _text(system.get("previous_user_id")) or (
        from_user_id if from_user_id != user_id else None
    )
    previous_phone = _phone(message.get("from"))
    phone = _phone(system.get("wa_id") or system.get("new_wa_id"))
    return ContactUpdate(
        channel="whatsapp",
        at=_at(message["timestamp"]),
        phone=phone,
        user_id=user_id,
        previous_phone=previous_phone if previous_phone != phone else None,
        previous_user_id=previous_user_id,
        change=_text(system.get("type")) or "system",
        body=_text(system.get("body")),
        external_id=str(message["id"]),
    )


def _status(status: dict[str, Any]) -> StatusReport:
    name = status["status"]
    ours = STATUSES.get(name)
    if ours is None:
        raise ValueError(f"unknown WhatsApp status {name!r}")
    detail: dict[str, Any] = {}
    if isinstance(status.get("pricing"), dict):
        detail["pricing"] = status["pricing"]
    code = message = None
    if name == "failed":
        code, message = failed_status_code(status.get("errors"))
    return StatusReport(
        external_id=str(status["id"]),
        status=ours,
        at=_at(status["timestamp"]),
        error_code=code,
        error_message=message,
        detail=detail,
    )


def _sender(message: dict[str, Any]) -> str:
    phone = message.get("from")
    if isinstance(phone, str) and phone:
        return phone if phone.startswith("+") else f"+{phone}"
    user_id = message.get("from_user_id")
    if isinstance(user_id, str) and user_id:
        return user_id
    raise KeyError("from")


def _body(message: dict[str, Any]) -> str | None:
    kind = message.get("type")
    inner = message.get(str(kind))
    if kind == "text" and isinstance(inner, dict):
        return str(inner.get("body") or "") or None
    if kind == "button" and isinstance(inner, dict):
        return inner.get("text") or inner.get("payload")
    if kind == "interactive" and isinstance(inner, dict):
        reply = inner.get("button_reply") or inner.get("list_reply") or {}
        return reply.get("title") if isinstance(reply, dict) else None
    if kind == "reaction" and isinstance(inner, dict):
        return inner.get("emoji") or None
    if kind == "location" and isinstance(inner, dict):
        return inner.get("name") or inner.get("address") or None
    if isinstance(inner, dict):
        return inner.get("caption") or None
    return None


def _contact_of(message: dict[str, Any], contacts: Any) -> dict[str, Any] | None:
    """The ``contacts[]`` item of the message's sender (a batch may carry several):
    matched by phone (``wa_id`` = ``from``) or user id (``user_id`` = ``from_user_id``),
    else the first one."""
    found = [c for c in contacts or [] if isinstance(c, dict)]
    for contact in found:
        if (message.get("from") and contact.get("wa_id") == message.get("from")) or (
            message.get("from_user_id") and contact.get("user_id") == message.get("from_user_id")
        ):
            return contact
    return found[0] if found else None


def _inbound(message: dict[str, Any], metadata: Mapping[str, Any], contacts: Any) -> InboundMessage:
    kind = str(message.get("type") or "unsupported")
    content: dict[str, Any] = {"type": kind}
    if kind in message:
        # Media arrive as Meta's media id (valid 7 days), with mime type and sha256.
        content[kind] = message[kind]
    if isinstance(message.get("context"), dict):
        content["context"] = message["context"]
    contact = _contact_of(message, contacts)
    if contact is None and message.get("from_user_id"):
        contact = {}
    if contact is not None:
        profile = contact.get("profile") or {}
        content["contact"] = {
            key: value
            for key, value in {
                "name": profile.get("name"),
                "username": profile.get("username"),
                "waId": contact.get("wa_id"),
                "userId": contact.get("user_id") or message.get("from_user_id"),
                "parentUserId": contact.get("parent_user_id"),
            }.items()
            if value
        }
    display = metadata.get("display_phone_number")
    return InboundMessage(
        channel="whatsapp",
        sender=_sender(message),
        recipient=f"+{display}" if display else None,
        body=_body(message),
        at=_at(message["timestamp"]),
        external_id=str(message["id"]),
        content=content,
    )


class WhatsAppWebhook:
    """The kind's adapter for the inbound edge (see :mod:`tidings.inbound.router`)."""

    max_body_bytes = MAX_BODY_BYTES

    def handshake(self, config: WhatsAppCloudConfig, params: Mapping[str, str]) -> str | None:
        """The challenge to echo when Meta's verification request is right, else None."""
        token = params.get("hub.verify_token") or ""
        challenge = params.get("hub.challenge")
        if params.get("hub.mode") != "subscribe" or challenge is None:
            return None
        expected = config.verify_token.get_secret_value().encode()
        if not hmac.compare_digest(expected, token.encode()):
            return None
        return challenge

    def verify(self, config: WhatsAppCloudConfig, headers: Mapping[str, str], raw: bytes) -> bool:
        return signature_valid(
            config.app_secret.get_secret_value(), raw, headers.get(SIGNATURE_HEADER)
        )

    def split(self, raw: bytes) -> Split:
        return split_body(json.loads(raw))

    def route_key(self, config: WhatsAppCloudConfig) -> str:
        """What names this provider in a report (its phone number id)."""
        return config.phone_number_id

    def route_key_of(self, config_values: Mapping[str, Any]) -> str | None:
        """The same, read from a provider's stored public config."""
        value = config_values.get("phoneNumberId")
        return str(value) if value is not None else None

    def catalog_key(self, config: WhatsAppCloudConfig) -> str:
        """The business account whose template updates are this provider's."""
        return config.business_account_id
