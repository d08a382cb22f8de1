"""Reading back what the ``smtp`` kind stored in the inbox, as status reports.

Two payloads are stored:

* ``{"type": "refusal", "id", "reply", "status", "at"}``: the relay refused a
  recipient with 5.1.x at ``RCPT`` (a hard bounce during sending, :mod:`.provider`);
  ``"recipient"`` names it when it is not the message's first ``to``;
* ``{"type": "mail", "mail" (base64 of the raw message), "messageId", "primary",
  "others", "at"}``: a report that reached the listener (:mod:`.listener`) for a
  message's VERP address or for ``fbl@``; ``others`` lists the message's other
  envelope recipients (its other To, Cc and Bcc).

What a mailed report means (spec section 14, protocols.md section 3):

=================================  ============================================
report                             status and event
=================================  ============================================
DSN ``failed``, 5.x.x              ``undelivered`` + ``bounced`` (suppressed)
DSN ``failed``, 5.7.x (policy)     ``undelivered``, no event: not the address's
                                   fault, so not suppressed
DSN ``failed``, 5.2.2 (full)       ``delayed`` recorded, status unchanged (soft)
DSN ``delayed`` or 4.x.x           ``delayed`` recorded, status unchanged
DSN ``delivered``                  ``delivered``
ARF (any feedback type)            ``complained`` (suppressed); a Cc's (its
                                   ``Original-Rcpt-To``): an event naming it
auto-reply, other mail             nothing
=================================  ============================================

Only the message's first ``to`` address (``primary``) moves it (the message row has
one status). Another recipient's hard bounce (a Cc, a Bcc, a second To: ``failed``
with 5.x.x other than 5.7.x and 5.2.2) is a ``bounced`` event of the message naming
that recipient, which suppresses that address and leaves the status alone; so is
a complaint whose ``Original-Rcpt-To`` names one of them (``complained``); the
other recipients' other notices change nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tidings.messages.status import Status
from tidings.providers.base import Report, StatusReport
from tidings.providers.smtp.mailreports import MailReport, RecipientStatus, read_mail
from tidings.providers.smtp.refs import ref_id


def parse_report(payload: dict[str, Any]) -> list[Report]:
    at = datetime.fromisoformat(payload["at"])
    if payload["type"] == "refusal":
        recipient = payload.get("recipient")
        return [
            StatusReport(
                external_id=str(payload["id"]),
                status=Status.UNDELIVERED,
                at=at,
                error_code="bounced",
                error_message=payload.get("reply"),
                event="bounced",
                detail={"status": payload.get("status"), "source": "smtp"},
                recipient=str(recipient) if recipient else None,
            )
        ]
    if payload["type"] != "mail":
        raise ValueError(f"unknown smtp payload type {payload['type']!r}")
    report = read_mail(base64.b64decode(payload["mail"], validate=True))
    others = [str(address) for address in payload.get("others") or []]
    return reports_for(report, str(payload["messageId"]), str(payload["primary"]), at, others)


def reports_for(
    report: MailReport,
    message_id: str,
    primary: str,
    at: datetime,
    others: Sequence[str] = (),
) -> list[Report]:
    external_id = ref_id(message_id, primary)
    primary = primary.lower()
    other = {address.strip().lower() for address in others} - {primary}
    if report.kind == "arf":
        return [_complaint(report, message_id, external_id, primary, other, at)]
    found: list[Report] = []
    for recipient in report.recipients:
        if recipient.address == primary:
            own = _from_status(external_id, recipient, at, report.kind)
            found.extend([own] if own is not None else [])
        elif recipient.address in other:
            bounce = _other_recipient(message_id, recipient, at, report.kind)
            found.extend([bounce] if bounce is not None else [])
    return found


def _complaint(
    report: MailReport,
    message_id: str,
    external_id: str,
    primary: str,
    other: set[str],
    at: datetime,
) -> StatusReport:
    """An ARF complaint is the recipient's its ``Original-Rcpt-To`` names (RFC 5965
    section 3.2) when that is another recipient of the message (a Cc, a Bcc, a
    second To): a ``complained`` event naming it, its address suppressed, the
    message's status left to its first ``to``. Otherwise (the first ``to`` named,
    an address the message was not sent to, or none: many feedback loops redact it)
    the complaint is the message's own recipient's."""
    detail: dict[str, Any] = {"feedbackType": report.feedback_type, "source": "arf"}
    named = [recipient.address for recipient in report.recipients]
    if primary not in named:
        for address in named:
            if address in other:
                return StatusReport(
                    ref_id(message_id, address),
                    Status.DELIVERED,
                    at,
                    event="complained",
                    detail=detail,
                    recipient=address,
                )
    return StatusReport(
        external_id=external_id, status=Status.DELIVERED, at=at, event="complained", detail=detail
    )


def _other_recipient(
    message_id: str, recipient: RecipientStatus, at: datetime, source: str
) -> StatusReport | None:
    """Another recipient's notice: only a hard bounce counts (an event for it, and it
    is suppressed); its delivery, delays and policy refusals change nothing."""
    status = recipient.status
    if recipient.action != "failed" or not status.startswith("5."):
        return None
    if status.startswith("5.7.") or status == "5.2.2":
        return None
    detail: dict[str, Any] = {"status": status, "source": source}
    if recipient.diagnostic:
        detail["diagnostic"] = recipient.diagnostic
    return StatusReport(
        ref_id(message_id, recipient.address),
        Status.UNDELIVERED,
        at,
        error_code="bounced",
        error_message=recipient.diagnostic or f"failed {status}",
        event="bounced",
        detail=detail,
        recipient=recipient.address,
    )


def _from_status(
    external_id: str, recipient: RecipientStatus, at: datetime, source: str
) -> StatusReport | None:
    status, action = recipient.status, recipient.action
    detail: dict[str, Any] = {"status": status, "source": source}
    if recipient.diagnostic:
        detail["diagnostic"] = recipient.diagnostic
    message = recipient.diagnostic or f"{action} {status}".strip()
    if action == "delivered":
        return StatusReport(external_id, Status.DELIVERED, at)
    if action == "delayed" or status.startswith("4."):
        return StatusReport(external_id, Status.SENT, at, event="delayed", detail=detail)
    if action != "failed":
        # relayed / expanded: handed on, nothing known yet.
        return None
    if status.startswith("5.7."):
        return StatusReport(
            external_id, Status.UNDELIVERED, at, error_code="policy_refused", error_message=message
        )
    if status == "5.2.2":
        # Mailbox full: permanent by class, transient in practice (ESP practice).
        return StatusReport(
            external_id, Status.SENT, at, event="delayed", detail={**detail, "soft": True}
        )
    return StatusReport(
        external_id,
        Status.UNDELIVERED,
        at,
        error_code="bounced",
        error_message=message,
        event="bounced",
        detail=detail,
    )
