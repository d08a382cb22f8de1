"""Our own headers written as plain lines (``build_message``'s fast path for short
ASCII values) come out byte for byte as the header classes write them, and values
that need encoding or folding still go through the classes."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.channels.email.addresses import Mailbox
from tidings.channels.email.mime import (
    POLICY,
    EmailContent,
    EmailMessage,
    _address,
    build_message,
    normalise_subject,
    render_bytes,
)

DATE = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def through_the_classes(content: EmailContent, extra: list[tuple[str, str]]) -> bytes:
    """The headers as every one was set before the fast path: by the header classes."""
    reference = EmailMessage(policy=POLICY)
    reference["From"] = _address(content.sender)
    reference["To"] = [_address(m) for m in content.to]
    if content.cc:
        reference["Cc"] = [_address(m) for m in content.cc]
    reference["Subject"] = normalise_subject(content.subject)
    reference["Date"] = "Sun, 06 Dec 2026 10:00:00 +0000"
    reference["Message-ID"] = f"<msg_1@{content.sender.domain}>"
    for name, value in extra:
        reference[name] = value
    return reference.as_bytes(policy=POLICY)


def headers_of(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0] + b"\r\n"


names = st.sampled_from(["", "News", "Doe, Jane", "Ann O'Neil", "Zoë", "a  b", "=?x?=", "x" * 70])
subjects = st.sampled_from(
    ["Hi", "Your order 12", "  spaced  out ", "=?utf-8?q?x?=", "Grüße", "s" * 90, "a\tb", ""]
)
extras = st.sampled_from(
    [
        [],
        [("X-Tidings-Message-Id", "msg_1")],
        [("List-Unsubscribe", "<https://t.example.com/u/" + "t" * 80 + ">")],
        [("Feedback-ID", "news:acc_1:bulk:tidings")],
    ]
)


@settings(max_examples=150, deadline=None)
@given(names, names, st.lists(names, max_size=3), subjects, extras)
def test_plain_lines_equal_what_the_header_classes_write(
    sender: str, to: str, cc: list[str], subject: str, extra: list[tuple[str, str]]
) -> None:
    content = EmailContent(
        sender=Mailbox(sender, "news@example.com"),
        to=(Mailbox(to, "bob@example.org"),),
        cc=tuple(Mailbox(name, f"cc{i}@example.org") for i, name in enumerate(cc)),
        bcc=(),
        reply_to=None,
        subject=subject,
        text="hello\n",
        html=None,
        headers=(),
        attachments=(),
    )
    built = render_bytes(build_message(content, message_id="msg_1", date=DATE, extra_headers=extra))
    # Ours come first, then the body's own (MIME-Version, Content-Type...).
    assert headers_of(built).startswith(headers_of(through_the_classes(content, extra)))
