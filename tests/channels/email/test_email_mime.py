"""Message building: MIME structure, headers, attachments, HTML to text, and a real SMTP hop.

Built messages are parsed back with ``email.policy.default``, as a receiving client would.
Bodies are compared after the documented normalisation (CRLF and CR become LF, a final
line break is added); subjects after theirs (line breaks become spaces, outer whitespace
trimmed).
"""

from __future__ import annotations

import base64
import email
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.message import EmailMessage, MIMEPart
from email.policy import default
from email.utils import parsedate_to_datetime
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidings.channels.email.addresses import Mailbox, parse_mailbox
from tidings.channels.email.html_text import html_to_text
from tidings.channels.email.mime import (
    POLICY,
    Attachment,
    EmailContent,
    _forced_cte,
    _plain_bytes,
    _set_plain_text,
    build_message,
    decode_attachments,
    envelope_recipients,
    normalise_body,
    normalise_subject,
    render_bytes,
    validate_custom_headers,
)
from tidings.core.errors import Unprocessable

WHEN = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _content(**changes: Any) -> EmailContent:
    base = EmailContent(
        sender=parse_mailbox("News <news@example.com>", "from"),
        to=(parse_mailbox("Ann <ann@example.org>", "to"),),
        cc=(),
        bcc=(),
        reply_to=None,
        subject="Hello",
        text="Hi Ann,\nwelcome.\n",
        html=None,
        headers=(),
        attachments=(),
    )
    return replace(base, **changes)


def _roundtrip(content: EmailContent, **kwargs: Any) -> EmailMessage:
    raw = render_bytes(build_message(content, message_id="msg_01TEST", date=WHEN, **kwargs))
    parsed = email.message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _text(part: MIMEPart) -> str:
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


# --- structure ---------------------------------------------------------------------------


def test_text_only_is_a_single_text_plain_part() -> None:
    msg = _roundtrip(_content())
    assert msg.get_content_type() == "text/plain"
    assert not msg.is_multipart()
    assert _text(msg) == "Hi Ann,\nwelcome.\n"
    assert msg["MIME-Version"] == "1.0"


def test_html_only_gets_a_generated_text_alternative() -> None:
    html = '<p>Read <a href="https://example.com/post?a=1&amp;b=2">the post</a> &eacute;</p>'
    msg = _roundtrip(_content(text=None, html=html))
    assert msg.get_content_type() == "multipart/alternative"
    plain, rich = msg.iter_parts()
    assert (plain.get_content_type(), rich.get_content_type()) == ("text/plain", "text/html")
    assert _text(plain) == "Read the post (https://example.com/post?a=1&b=2) é\n"
    assert _text(rich) == html + "\n"


def test_text_and_html_are_alternatives_in_that_order() -> None:
    msg = _roundtrip(_content(text="plain words", html="<b>rich words</b>"))
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert [_text(p) for p in msg.iter_parts()] == ["plain words\n", "<b>rich words</b>\n"]


def test_attachments_wrap_the_alternative_in_multipart_mixed() -> None:
    blob = bytes(range(256)) * 3
    attachments = (
        Attachment("report.pdf", "application/pdf", blob),
        Attachment("Übersicht.csv", "text/csv", b"a,b\r\n1,2\r\n"),
    )
    msg = _roundtrip(_content(html="<p>x</p>", attachments=attachments))
    assert msg.get_content_type() == "multipart/mixed"
    body, pdf, csv = msg.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert (pdf.get_content_type(), pdf.get_filename()) == ("application/pdf", "report.pdf")
    assert pdf.get_content_disposition() == "attachment"
    assert pdf.get_payload(decode=True) == blob
    assert csv.get_filename() == "Übersicht.csv"
    assert csv.get_payload(decode=True) == b"a,b\r\n1,2\r\n"


def test_text_only_with_attachment_is_mixed_text_then_file() -> None:
    msg = _roundtrip(_content(attachments=(Attachment("a.bin", "application/zip", b"PK"),)))
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "application/zip"]


def test_no_body_at_all_still_builds_an_empty_text_part() -> None:
    msg = _roundtrip(_content(text=None, html=None))
    assert msg.get_content_type() == "text/plain"
    assert _text(msg) == "\n"


def test_mime_version_appears_only_at_the_top() -> None:
    content = _content(html="<p>x</p>", attachments=(Attachment("a", "text/plain", b"a"),))
    raw = render_bytes(build_message(content, message_id="m1", date=WHEN))
    assert raw.count(b"MIME-Version:") == 1


def test_control_characters_in_a_body_force_quoted_printable() -> None:
    raw = render_bytes(build_message(_content(text="a\x00b\x07c"), message_id="m", date=WHEN))
    assert b"Content-Transfer-Encoding: quoted-printable" in raw
    assert b"\x00" not in raw
    assert _text(_roundtrip(_content(text="a\x00b\x07c"))) == "a\x00b\x07c\n"


# --- headers -----------------------------------------------------------------------------


def test_standard_headers() -> None:
    content = _content(
        sender=parse_mailbox("Jörg Müller <jorg@münchen.de>", "from"),
        cc=(parse_mailbox("Cé <c@example.org>", "cc"),),
        reply_to=parse_mailbox("Support <help@example.com>", "replyTo"),
        subject="Grüße aus München — ½ price 🎉",
    )
    raw = render_bytes(build_message(content, message_id="msg_01X", date=WHEN))
    assert raw.isascii()
    msg = email.message_from_bytes(raw, policy=default)
    assert msg["Subject"] == "Grüße aus München — ½ price 🎉"
    assert msg["From"].addresses[0].display_name == "Jörg Müller"
    assert msg["From"].addresses[0].addr_spec == "jorg@xn--mnchen-3ya.de"
    assert msg["To"] == "Ann <ann@example.org>"
    assert msg["Cc"].addresses[0].display_name == "Cé"
    assert msg["Reply-To"] == "Support <help@example.com>"
    assert msg["Message-ID"] == "<msg_01X@xn--mnchen-3ya.de>"
    assert parsedate_to_datetime(msg["Date"]) == WHEN


def test_date_keeps_its_offset() -> None:
    cet = datetime(2026, 1, 2, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    msg = build_message(_content(), message_id="m", date=cet)
    assert msg["Date"] == "Fri, 02 Jan 2026 09:30:00 +0100"


def test_bcc_is_never_a_header_but_is_in_the_envelope() -> None:
    bcc = (parse_mailbox("Hidden <hidden@example.net>", "bcc[0]"),)
    content = _content(bcc=bcc, cc=(Mailbox("", "ANN@example.org"), Mailbox("", "c@x.org")))
    raw = render_bytes(build_message(content, message_id="m", date=WHEN))
    assert b"hidden@example.net" not in raw
    assert email.message_from_bytes(raw, policy=default)["Bcc"] is None
    # ANN@ duplicates ann@ case-insensitively, so it is sent once.
    assert envelope_recipients(content) == ["ann@example.org", "c@x.org", "hidden@example.net"]


def test_custom_and_extra_headers_are_written() -> None:
    headers = validate_custom_headers(
        {"X-Campaign": "spring sale", "In-Reply-To": "<a@b.example>", "X-Note": "café"}
    )
    extra = [("List-Unsubscribe", "<https://u.example.com/unsub/TOKEN>")]
    msg = _roundtrip(_content(headers=headers), extra_headers=extra)
    assert msg["X-Campaign"] == "spring sale"
    assert msg["In-Reply-To"] == "<a@b.example>"
    assert msg["X-Note"] == "café"
    assert msg["List-Unsubscribe"] == "<https://u.example.com/unsub/TOKEN>"


@pytest.mark.parametrize(
    "subject",
    ["Say =?utf-8?q?hi?= literally", "=?utf-8?b?SGk=?=", "Grüße =?x?q?y?= " + "long " * 40],
)
def test_subjects_that_look_like_encoded_words_arrive_literally(subject: str) -> None:
    assert _roundtrip(_content(subject=subject))["Subject"] == subject.strip()


def test_line_breaks_in_a_subject_cannot_inject_headers() -> None:
    msg = _roundtrip(_content(subject="Hi\r\nBcc: evil@x.com"))
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Hi Bcc: evil@x.com"


def test_header_injection_in_a_custom_header_is_refused() -> None:
    with pytest.raises(Unprocessable) as caught:
        validate_custom_headers({"X-Test": "a\r\nBcc: evil@x.com"})
    error = caught.value
    assert (error.status, error.code) == (422, "validation_failed")
    assert [(e.field, e.code) for e in error.errors] == [("headers.X-Test", "invalid_header")]


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x85b", "a\u2028b", "a\x00b"])
def test_header_values_with_breaks_or_controls_are_refused(value: str) -> None:
    with pytest.raises(Unprocessable):
        validate_custom_headers({"X-Test": value})


@pytest.mark.parametrize(
    "name",
    [
        "From",
        "to",
        "BCC",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "content-transfer-encoding",
        "DKIM-Signature",
        "Return-Path",
        "Reply-To",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Resent-To",
        "X-Tidings-Message-Id",
    ],
)
def test_headers_we_own_are_refused(name: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        validate_custom_headers({name: "x"})
    assert caught.value.errors[0].field == f"headers.{name}"
    assert "set by Tidings" in caught.value.errors[0].message


@pytest.mark.parametrize("name", ["", "X Test", "X:Test", "X-Tést", "X" * 77])
def test_bad_header_names_are_refused(name: str) -> None:
    with pytest.raises(Unprocessable):
        validate_custom_headers({name: "x"})


def test_header_errors_are_all_reported() -> None:
    with pytest.raises(Unprocessable) as caught:
        validate_custom_headers(
            {"X-Ok": "fine", "From": "x", "x-dup": "1", "X-Dup": "2", "X-Num": 3}
        )
    assert [e.field for e in caught.value.errors] == [
        "headers.From",
        "headers.X-Dup",
        "headers.X-Num",
    ]


def test_unparseable_structured_header_is_refused_not_sent_empty() -> None:
    with pytest.raises(Unprocessable):
        validate_custom_headers({"Orig-Date": "garbage"})


def test_allowed_headers_keep_their_order_and_long_values_fold() -> None:
    headers = {"References": " ".join(f"<id{i}@example.com>" for i in range(60)), "X-B": "b" * 1500}
    assert [n for n, _ in validate_custom_headers(headers)] == ["References", "X-B"]
    raw = render_bytes(
        build_message(_content(headers=tuple(headers.items())), message_id="m", date=WHEN)
    )
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


@pytest.mark.parametrize(
    ("message_id", "date"),
    [("msg 1", WHEN), ("<x@y>", WHEN), ("", WHEN), ("m", datetime(2026, 1, 1))],
)
def test_build_refuses_programming_errors(message_id: str, date: datetime) -> None:
    with pytest.raises(ValueError):
        build_message(_content(), message_id=message_id, date=date)


# --- attachments -------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_attachments_decode() -> None:
    items = [
        {"filename": "a.pdf", "contentType": "Application/PDF", "content": _b64(b"%PDF-1.4")},
        # Line-wrapped base64, as MIME encoders write it, is accepted.
        {"filename": "b.bin", "contentType": "application/octet-stream", "content": "AAEC\r\nAw=="},
    ]
    assert decode_attachments(items, max_total_bytes=100) == (
        Attachment("a.pdf", "application/pdf", b"%PDF-1.4"),
        Attachment("b.bin", "application/octet-stream", b"\x00\x01\x02\x03"),
    )


@pytest.mark.parametrize("content", ["not base64!", "Q", "QUJ", "QU-_", "QU\x00J", 17, None])
def test_bad_base64_is_a_field_error(content: object) -> None:
    items = [{"filename": "a", "contentType": "text/plain", "content": _b64(b"ok")}]
    items.append({"filename": "b", "contentType": "text/plain", "content": content})  # type: ignore[dict-item]
    with pytest.raises(Unprocessable) as caught:
        decode_attachments(items, max_total_bytes=100)
    assert [(e.field, e.code) for e in caught.value.errors] == [
        ("attachments[1].content", "invalid_base64")
    ]


@pytest.mark.parametrize(
    "content_type",
    ["pdf", "text/", "text/plain; charset=utf-8", "multipart/mixed", "message/rfc822", 5],
)
def test_bad_content_types_are_refused(content_type: object) -> None:
    with pytest.raises(Unprocessable) as caught:
        decode_attachments(
            [{"filename": "a", "contentType": content_type, "content": ""}], max_total_bytes=10
        )
    assert caught.value.errors[0].field == "attachments[0].contentType"


def test_every_bad_field_is_reported() -> None:
    with pytest.raises(Unprocessable) as caught:
        decode_attachments(
            [{"filename": " ", "contentType": "x", "content": "!"}, {}], max_total_bytes=10
        )
    assert [e.field for e in caught.value.errors] == [
        f"attachments[{i}].{f}" for i in (0, 1) for f in ("filename", "contentType", "content")
    ]


def test_wrong_shapes_are_field_errors_not_crashes() -> None:
    with pytest.raises(Unprocessable) as caught:
        decode_attachments(["a.pdf"], max_total_bytes=10)  # type: ignore[list-item]
    assert [(e.field, e.code) for e in caught.value.errors] == [("attachments[0]", "invalid_type")]
    with pytest.raises(Unprocessable) as caught:
        validate_custom_headers(["X-A: b"])  # type: ignore[arg-type]
    assert [(e.field, e.code) for e in caught.value.errors] == [("headers", "invalid_type")]


@pytest.mark.parametrize(
    ("given_name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("in\x00voice\r\n.pdf", "invoice.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        (".bashrc", "bashrc"),
        ("name. . .", "name"),
        ("..", "attachment"),
        ("dir/", "attachment"),
        ("Übersicht 2026.xlsx", "Übersicht 2026.xlsx"),
    ],
)
def test_filenames_are_sanitised(given_name: str, safe: str) -> None:
    items = [{"filename": given_name, "contentType": "application/pdf", "content": ""}]
    assert decode_attachments(items, max_total_bytes=0)[0].filename == safe


@pytest.mark.parametrize("stem", ["a" * 400, "é" * 300])
def test_long_filenames_are_cut_to_255_bytes_keeping_the_extension(stem: str) -> None:
    items = [{"filename": stem + ".pdf", "contentType": "application/pdf", "content": ""}]
    name = decode_attachments(items, max_total_bytes=0)[0].filename
    assert len(name.encode()) <= 255
    assert name.endswith(".pdf")
    assert name.startswith(stem[:100])


def test_total_size_limit() -> None:
    items = [
        {"filename": f"{i}", "contentType": "application/octet-stream", "content": _b64(b"x" * 60)}
        for i in range(2)
    ]
    assert len(decode_attachments(items, max_total_bytes=120)) == 2
    with pytest.raises(Unprocessable) as caught:
        decode_attachments(items, max_total_bytes=119)
    error = caught.value
    assert (error.status, error.code) == (422, "attachments_too_large")
    assert [e.field for e in error.errors] == ["attachments"]


# --- HTML to text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Tom &amp; Jerry &lt;3 &#8364;5&nbsp;off</p>", "Tom & Jerry <3 €5\xa0off"),
        ("<head><title>T</title><style>p{}</style></head><script>x()</script>Hi", "Hi"),
        ('<a href="https://e.com/x">Click   here</a>', "Click here (https://e.com/x)"),
        ('<a href="https://e.com/x">https://e.com/x</a>', "https://e.com/x"),
        ('<a href="mailto:a@e.com">a@e.com</a>', "a@e.com"),
        ('<a href="javascript:evil()">no</a> <a href="#top">top</a>', "no top"),
        ('<a href="https://e.com/i"><img src="x.png"></a>', "https://e.com/i"),
        ('<img alt="Logo"> text', "Logo text"),
        ("<ul>\n <li>one</li>\n <li>two</li>\n</ul><p>after</p>", "- one\n- two\n\nafter"),
        ("<h1>Title</h1><p>a<br>b</p><div>c</div>d", "Title\n\na\nb\n\nc\nd"),
        ("<pre>  keep\n    indent</pre>", "  keep\n    indent"),
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


# --- properties --------------------------------------------------------------------------

_ATTACHMENT = st.builds(
    Attachment,
    filename=st.text(min_size=1, max_size=30).map(
        lambda s: "f" + "".join(c for c in s if c.isalnum())
    ),
    content_type=st.sampled_from(["application/octet-stream", "image/png", "text/plain"]),
    content=st.binary(max_size=2000),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(),
    subject=st.text(),
    html=st.none() | st.text(),
    attachments=st.lists(_ATTACHMENT, max_size=2),
)
def test_build_and_parse_round_trip(
    text: str, subject: str, html: str | None, attachments: list[Attachment]
) -> None:
    content = _content(text=text, subject=subject, html=html, attachments=tuple(attachments))
    raw = render_bytes(build_message(content, message_id="msg_1", date=WHEN))
    # RFC 5322 section 2.1.1: at most 998 octets per line, CRLF excluded; and 7-bit clean.
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii()

    msg = email.message_from_bytes(raw, policy=default)
    assert isinstance(msg, EmailMessage)
    assert msg["Subject"] == normalise_subject(subject)
    parts = [p for p in msg.walk() if not p.is_multipart()]
    bodies = [
        _text(p) for p in parts if p.get_content_maintype() == "text" and not p.get_filename()
    ]
    expected = [normalise_body(text)] + ([normalise_body(html)] if html is not None else [])
    assert bodies == expected
    files = [(p.get_filename(), p.get_payload(decode=True)) for p in parts if p.get_filename()]
    assert files == [(a.filename, a.content) for a in attachments]


_NAMES = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=200).filter(
    lambda s: s == s.strip()
)


@settings(max_examples=300, deadline=None)
@given(sender=_NAMES, first=_NAMES, second=_NAMES)
def test_display_names_survive_folding(sender: str, first: str, second: str) -> None:
    """Checked with decode_header: policy.default's own parser collapses whitespace runs in
    display names when reading, which says nothing about what was on the wire."""
    content = _content(
        sender=Mailbox(sender, "news@example.com"),
        to=(Mailbox(first, "a@example.org"), Mailbox(second, "b@example.org")),
    )
    raw = render_bytes(build_message(content, message_id="m", date=WHEN))
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    legacy = email.message_from_bytes(raw)
    decoded = str(make_header(decode_header(legacy["From"])))
    assert parse_mailbox(decoded, "from") == content.sender
    parsed = email.message_from_bytes(raw, policy=default)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["a@example.org", "b@example.org"]


@given(st.text())
def test_normalise_body_only_touches_line_endings(text: str) -> None:
    result = normalise_body(text)
    assert "\r" not in result
    assert result.endswith("\n")
    assert result.replace("\n", "") == text.replace("\r", "").replace("\n", "")
    assert normalise_body(result) == result


# --- a real SMTP hop ---------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp_sink() -> Iterator[tuple[_Sink, int]]:
    sink = _Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


async def test_send_through_a_real_smtp_server(smtp_sink: tuple[_Sink, int]) -> None:
    sink, port = smtp_sink
    content = _content(
        cc=(parse_mailbox("cc@example.org", "cc"),),
        bcc=(parse_mailbox("Secret <secret@example.net>", "bcc"),),
        # A line starting with "." exercises SMTP dot-stuffing on both sides.
        text=".leading dot\n..two dots\nend",
        subject="Grüße",
    )
    payload = render_bytes(build_message(content, message_id="msg_smtp", date=WHEN))
    await aiosmtplib.send(
        payload,
        sender="bounces@example.com",
        recipients=envelope_recipients(content),
        hostname="127.0.0.1",
        port=port,
    )
    [(mail_from, rcpt_tos, data)] = sink.envelopes
    assert mail_from == "bounces@example.com"
    assert rcpt_tos == ["ann@example.org", "cc@example.org", "secret@example.net"]
    assert data == payload
    received = email.message_from_bytes(data, policy=default)
    assert received["Bcc"] is None
    assert b"secret@example.net" not in data
    assert _text(received) == ".leading dot\n..two dots\nend\n"


PLAIN_BODIES = [
    "",
    "hello\n",
    "a\r\nb\r\n",
    "a\rb",
    "line\n\n\nend",
    " lead\ttab \n",
    ".\n..\n",
    "a" * 78,
    "a" * 79,
    "caf\u00e9",
    "nul\x00x",
    "del\x7f",
    "trailing   \n  ",
    "x\x0cy",
    "\r\n",
]


@pytest.mark.parametrize("text", PLAIN_BODIES)
def test_a_plain_text_body_is_the_one_set_content_writes(text: str) -> None:
    """The text-only shortcut (``_set_plain_text``) writes what ``set_content``
    writes, byte for byte, or declines (long lines, non-ASCII, controls)."""

    def headed() -> EmailMessage:
        msg = EmailMessage(policy=POLICY)
        msg["From"] = "news@example.com"
        msg["Subject"] = "Hi"
        return msg

    shortcut, reference = headed(), headed()
    reference.set_content(text, subtype="plain", cte=_forced_cte(text))
    if _set_plain_text(shortcut, text):
        assert render_bytes(shortcut) == render_bytes(reference)
    else:
        assert not text.isascii() or len(text) > 78 or _forced_cte(text) is not None
        assert "Content-Type" not in shortcut


@pytest.mark.parametrize("text", PLAIN_BODIES)
@pytest.mark.parametrize("subject", ["Hi", "Caf\u00e9", "x" * 90, "  spaced  subject"])
def test_a_message_is_written_as_the_generator_writes_it(text: str, subject: str) -> None:
    """``render_bytes`` writes plain single-part messages itself (``_plain_bytes``):
    the same bytes as the standard library's generator, whichever way it goes."""
    msg = build_message(
        _content(subject=subject, text=text, html=None),
        message_id="msg_1",
        date=WHEN,
        extra_headers=[("X-Tidings-Message-Id", "msg_1")],
    )
    assert render_bytes(msg) == msg.as_bytes(policy=POLICY)


def test_plain_mail_takes_the_short_way() -> None:
    msg = build_message(_content(text="Hello,\n\nshipped.\n", html=None), message_id="m", date=WHEN)
    assert _plain_bytes(msg) is not None
