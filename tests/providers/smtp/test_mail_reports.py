"""Reading reports as real MTAs write them (fixtures under ``fixtures/``, each after
its source): Postfix's RFC 3464 DSN for an unknown user and its delay warning, Gmail's
DSN (multipart/related inside the report), Exim's plain-text bounce (no DSN; an IP
address that looks like a status code), Microsoft's ARF complaint (Hotmail FBL), RFC
5965's complete example (appendix B.2; its quoted message made one of ours, with a
Cc, whom its ``Original-Rcpt-To`` names), and an Exchange out-of-office reply, which
is never a bounce."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tidings.messages.status import Status
from tidings.providers.base import StatusReport
from tidings.providers.smtp.mailreports import read_mail
from tidings.providers.smtp.refs import ref_id
from tidings.providers.smtp.reports import parse_report

FIXTURES = Path(__file__).parent / "fixtures"
MESSAGE = "msg_01JD8X3V7K2M4N6P8Q0R2S4T6V"
AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def stored(name: str, primary: str, others: tuple[str, ...] = ()) -> dict[str, Any]:
    raw = (FIXTURES / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return {
        "type": "mail",
        "mail": base64.b64encode(raw).decode(),
        "messageId": MESSAGE,
        "primary": primary,
        "others": list(others),
        "at": AT.isoformat(),
    }


def only(reports: list[Any]) -> StatusReport:
    assert len(reports) == 1, reports
    report = reports[0]
    assert isinstance(report, StatusReport)
    return report


@pytest.mark.parametrize(
    ("fixture", "primary"),
    [
        ("postfix-5.1.1.eml", "nobody@example.org"),  # Postfix 3.x bounce(8) template
        ("gmail-5.1.1.eml", "nobody@gmail.com"),  # Gmail's "Address not found"
        ("exim-text-bounce.eml", "nobody@example.org"),  # Exim 4 default bounce text
    ],
)
def test_hard_bounces_are_undelivered_and_bounced(fixture: str, primary: str) -> None:
    report = only(parse_report(stored(fixture, primary)))
    assert report.external_id == ref_id(MESSAGE, primary)
    assert report.status == Status.UNDELIVERED
    assert report.event == "bounced"
    assert report.error_code == "bounced"
    assert report.detail["status"] == "5.1.1"


def test_the_exim_bounce_is_read_from_its_text() -> None:
    read = read_mail(base64.b64decode(stored("exim-text-bounce.eml", "x")["mail"]))
    assert read.kind == "text-bounce"
    # "10.5.1.1" is the remote host, not a status code: the words decide.
    assert {item.status for item in read.recipients} == {"5.1.1"}


def test_a_bounce_for_another_recipient_moves_nothing() -> None:
    assert parse_report(stored("postfix-5.1.1.eml", "someone-else@example.org")) == []


def test_a_delay_warning_is_recorded_never_final() -> None:
    report = only(parse_report(stored("postfix-delayed.eml", "slow@example.org")))
    assert report.status == Status.SENT
    assert report.event == "delayed"
    assert report.detail["status"] == "4.4.1"


def test_a_feedback_loop_complaint_is_complained() -> None:
    report = only(parse_report(stored("microsoft-arf.eml", "angry@hotmail.com")))
    assert report.event == "complained"
    assert report.status == Status.DELIVERED
    assert report.detail["feedbackType"] == "abuse"
    read = read_mail(base64.b64decode(stored("microsoft-arf.eml", "x")["mail"]))
    assert read.original["x-tidings-message-id"] == MESSAGE


def test_a_complaint_naming_a_cc_is_the_ccs() -> None:
    # Original-Rcpt-To: <Carol@Example.com>; the message went to bob, Cc carol.
    report = only(parse_report(stored("rfc5965-cc.eml", "bob@example.org", ("carol@example.com",))))
    assert report.event == "complained"
    assert report.recipient == "carol@example.com"
    assert report.external_id == ref_id(MESSAGE, "carol@example.com")
    assert report.detail == {"feedbackType": "abuse", "source": "arf"}


def test_a_complaint_naming_nobody_the_message_went_to_is_its_first_recipients() -> None:
    # Carol is not among the message's recipients here (a forwarding address, say).
    report = only(parse_report(stored("rfc5965-cc.eml", "bob@example.org", ("dan@example.com",))))
    assert report.recipient is None
    assert report.external_id == ref_id(MESSAGE, "bob@example.org")
    # Hotmail's names the message's own recipient: its own complaint, as before.
    own = only(parse_report(stored("microsoft-arf.eml", "angry@hotmail.com", ("cc@example.org",))))
    assert (own.recipient, own.external_id) == (None, ref_id(MESSAGE, "angry@hotmail.com"))


def test_an_out_of_office_reply_is_not_a_bounce() -> None:
    assert parse_report(stored("exchange-out-of-office.eml", "bob@example.org")) == []


def test_a_refusal_at_rcpt_is_a_hard_bounce() -> None:
    payload = {
        "type": "refusal",
        "id": ref_id(MESSAGE, "nobody@example.org"),
        "reply": "550 5.1.1 User unknown",
        "status": "5.1.1",
        "at": AT.isoformat(),
    }
    report = only(parse_report(payload))
    assert (report.status, report.event, report.error_message) == (
        Status.UNDELIVERED,
        "bounced",
        "550 5.1.1 User unknown",
    )


def test_an_unreadable_payload_is_refused() -> None:
    with pytest.raises((KeyError, ValueError)):
        parse_report({"type": "mail", "mail": "not base64!", "at": AT.isoformat()})
