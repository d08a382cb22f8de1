"""Mailbox and recipient-list parsing: accepted forms, normalisation, errors and their fields."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st

from tidings.channels.email.addresses import (
    Mailbox,
    parse_mailbox,
    parse_recipients,
    stored_mailbox,
)
from tidings.channels.email.mime import EmailContent, build_message, render_bytes
from tidings.channels.email.stored import content_from_json, content_to_json
from tidings.core.errors import Unprocessable


@pytest.mark.parametrize(
    ("value", "name", "address"),
    [
        ("News <news@example.com>", "News", "news@example.com"),
        ("  News   <news@example.com>  ", "News", "news@example.com"),
        ("news@example.com", "", "news@example.com"),
        ("<news@example.com>", "", "news@example.com"),
        ('"Doe, Jane" <jane@example.com>', "Doe, Jane", "jane@example.com"),
        ('"Say \\"hi\\" <now>" <a@example.com>', 'Say "hi" <now>', "a@example.com"),
        ("Jörg Müller <jorg@example.de>", "Jörg Müller", "jorg@example.de"),
        # The domain is normalised to lower case; the local part keeps its case.
        ("Bob.Smith@EXAMPLE.COM", "", "Bob.Smith@example.com"),
        # IDN domains are kept in their IDNA form, usable in headers and RCPT TO.
        ("info@münchen.de", "", "info@xn--mnchen-3ya.de"),
    ],
)
def test_accepted_forms(value: str, name: str, address: str) -> None:
    assert parse_mailbox(value, "from") == Mailbox(name, address)


@pytest.mark.parametrize(
    "value",
    [
        "hard-bounce@sandbox.test",
        "soft-bounce@sandbox.test",
        "complaint@sandbox.test",
        "engaged@sandbox.test",
        "ops@mail.corp.local",
        "dev@app.localhost",
        "x@nowhere.invalid",
        "a@foo.example",
        "Sandbox <hard-bounce@SANDBOX.TEST>",
    ],
)
def test_special_use_domains_are_accepted(value: str) -> None:
    mailbox = parse_mailbox(value, "to")
    assert mailbox.address == mailbox.address.lower()


def test_special_use_domain_keeps_idn_form() -> None:
    assert parse_mailbox("a@münchen.local", "to").address == "a@xn--mnchen-3ya.local"


def test_accepting_special_use_does_not_change_email_validator_for_others() -> None:
    parse_mailbox("a@sandbox.test", "to")
    with pytest.raises(EmailNotValidError):
        validate_email("a@sandbox.test", check_deliverability=False)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plainaddress",
        "a..b@example.com",
        "a@example..com",
        "user@localhost",  # a domain needs a dot: catches "bob@gmailcom"-style typos
        "jörg@example.com",  # SMTPUTF8 local parts cannot be delivered by our transport
        "a@[192.0.2.1]",
        "News <>",
        "a@example.com\r\nBcc: evil@x.com",
        "a@b.com, c@d.com",
        "x" * 250 + "@example.com",  # over 254 octets in all
    ],
)
def test_invalid_addresses_are_refused(value: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        parse_mailbox(value, "from")
    error = caught.value
    assert (error.status, error.code) == (422, "invalid_email")
    assert [(e.field, e.code) for e in error.errors] == [("from", "invalid_email")]
    assert error.errors[0].message.endswith(".")


@pytest.mark.parametrize("name", ["Evil\r\nBcc: x@y.com", "Evil\nX", "Tab\there", "Nul\x00"])
def test_display_names_with_controls_are_refused(name: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        parse_mailbox(f"{name} <a@example.com>", "replyTo")
    assert caught.value.errors[0].field == "replyTo"
    assert "display name" in caught.value.errors[0].message


def test_non_string_is_refused_not_crashed() -> None:
    with pytest.raises(Unprocessable) as caught:
        parse_mailbox(42, "from")  # type: ignore[arg-type]
    assert caught.value.code == "invalid_email"


def test_formatted_quotes_and_encodes() -> None:
    assert Mailbox("", "a@example.com").formatted == "a@example.com"
    assert Mailbox("News", "a@example.com").formatted == "News <a@example.com>"
    assert Mailbox("Doe, Jane", "a@example.com").formatted == '"Doe, Jane" <a@example.com>'
    # Two spaces would collapse between atoms, so the name is quoted to keep them.
    assert Mailbox("A  B", "a@example.com").formatted == '"A  B" <a@example.com>'
    # Readers decode "=?...?=" even inside quotes, so such a name is encoded instead.
    assert Mailbox("=?x?q?y?=", "a@example.com").formatted.startswith("=?utf-8?b?")
    encoded = Mailbox("Jörg", "a@example.com").formatted
    assert encoded.isascii() and encoded.startswith("=?utf-8?")
    assert Mailbox("x", "a@sub.example.com").domain == "sub.example.com"


# What parse_mailbox keeps: outer whitespace is trimmed, controls and line breaks refused.
_NAMES = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=200).filter(
    lambda s: s == s.strip()
)


@given(name=_NAMES)
def test_formatted_decodes_back_to_the_same_mailbox(name: str) -> None:
    mailbox = Mailbox(name, "someone@example.com")
    formatted = mailbox.formatted
    assert formatted.isascii()
    # A reader decodes the RFC 2047 words (if any), then parses the mailbox.
    decoded = str(make_header(decode_header(formatted)))
    assert parse_mailbox(decoded, "from") == mailbox


def test_display_name_length_is_limited() -> None:
    assert parse_mailbox(f"{'n' * 200} <a@example.com>", "from").display_name == "n" * 200
    with pytest.raises(Unprocessable) as caught:
        parse_mailbox(f"{'n' * 201} <a@example.com>", "from")
    assert "at most 200" in caught.value.errors[0].message


def test_recipients_from_a_string_use_the_plain_field_name() -> None:
    assert parse_recipients("a@example.com", "to") == [Mailbox("", "a@example.com")]
    with pytest.raises(Unprocessable) as caught:
        parse_recipients("nope", "cc")
    assert caught.value.errors[0].field == "cc"


def test_recipients_report_every_bad_index() -> None:
    with pytest.raises(Unprocessable) as caught:
        parse_recipients(["a@example.com", "bad", "b@example.com", "x@@y"], "to")
    error = caught.value
    assert error.code == "invalid_email"
    assert [e.field for e in error.errors] == ["to[1]", "to[3]"]
    assert {e.code for e in error.errors} == {"invalid_email"}


def test_recipients_drop_case_insensitive_duplicates_keeping_the_first() -> None:
    result = parse_recipients(
        ["First <A@Example.com>", "b@example.com", "Second <a@EXAMPLE.com>", "B@example.com"],
        "bcc",
    )
    assert result == [Mailbox("First", "A@example.com"), Mailbox("", "b@example.com")]


def test_recipient_count_limit_counts_entries_as_sent() -> None:
    assert len(parse_recipients([f"u{i}@example.com" for i in range(3)], "to", max_count=3)) == 3
    with pytest.raises(Unprocessable) as caught:
        parse_recipients(["a@example.com"] * 4, "to", max_count=3)
    assert caught.value.code == "validation_failed"
    assert [(e.field, e.code) for e in caught.value.errors] == [("to", "too_many_recipients")]


def test_default_recipient_limit_is_fifty() -> None:
    assert len(parse_recipients([f"u{i}@example.com" for i in range(50)], "to")) == 50
    with pytest.raises(Unprocessable):
        parse_recipients([f"u{i}@example.com" for i in range(51)], "to")


@pytest.mark.parametrize(("value", "code"), [([], "required"), (7, "invalid_type")])
def test_recipient_shape_errors(value: object, code: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        parse_recipients(value, "to")  # type: ignore[arg-type]
    assert caught.value.code == "validation_failed"
    assert [(e.field, e.code) for e in caught.value.errors] == [("to", code)]


def test_non_string_list_items_are_field_errors() -> None:
    with pytest.raises(Unprocessable) as caught:
        parse_recipients(["a@example.com", None], "to")  # type: ignore[list-item]
    assert [e.field for e in caught.value.errors] == ["to[1]"]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "News",
        "Doe, Jane",
        'A "quoted" name',
        "back\\slash",
        "Zoë Müller",
        "José",
        "名前",
        "=?x?=",
        "a=?b",
        "Ünïcödé " * 12,
    ],
)
def test_a_stored_mailbox_reads_back_as_it_was(name: str) -> None:
    """What content_to_json stores (formatted, names in encoded words where needed) reads
    back as the same mailbox, so a later rendering encodes the name once."""
    mailbox = Mailbox(name, "zoe@xn--bcher-kva.example")
    assert stored_mailbox(mailbox.formatted) == mailbox
    assert stored_mailbox(mailbox.formatted).formatted == mailbox.formatted


def test_a_stored_non_ascii_name_arrives_decoded() -> None:
    """An email to a non-ASCII name, stored and rendered for sending, shows the name."""
    content = EmailContent(
        sender=parse_mailbox("Zoë's Shop <shop@example.com>", "from"),
        to=(parse_mailbox("Zoë Müller <zoe@example.com>", "to"),),
        cc=(),
        bcc=(),
        reply_to=None,
        subject="Hello",
        text="Hi",
        html=None,
        headers=(),
        attachments=(),
    )
    stored = content_from_json(content_to_json(content, tags=[], tracking={}))
    assert stored == content
    sent = message_from_bytes(
        render_bytes(build_message(stored, message_id="msg_x", date=datetime.now(UTC))),
        policy=policy.default,
    )
    assert sent["To"].addresses[0].display_name == "Zoë Müller"
    assert sent["From"].addresses[0].display_name == "Zoë's Shop"
