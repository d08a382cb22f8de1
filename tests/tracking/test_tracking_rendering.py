"""The pure parts of tracking: tokens, link rewriting, the rendered MIME."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy

from tidings.channels.email.stored import render_outbound_email
from tidings.channels.email.tracking import (
    extract_links,
    is_marketing,
    rewrite_links,
    tracking_content,
)
from tidings.core.environments import Environment
from tidings.core.ids import new_id
from tidings.providers.base import OutboundMessage
from tidings.tracking.tokens import TrackingSigner

SIGNER = TrackingSigner(b"k" * 32)


def test_tokens_round_trip_and_refuse_changes() -> None:
    message_id = new_id("msg")
    click = SIGNER.click_token(message_id, 3)
    verified = SIGNER.verify(click, "c")
    assert verified is not None and (verified.message_id, verified.link) == (message_id, 3)
    assert SIGNER.verify(click, "o") is None
    assert TrackingSigner(b"j" * 32).verify(click, "c") is None
    payload, mac = click.split(".")
    assert SIGNER.verify(payload + "." + mac[:-1], "c") is None
    assert SIGNER.verify(payload[:-1] + "." + mac, "c") is None
    assert SIGNER.verify("", "c") is None and SIGNER.verify("x" * 500, "c") is None
    opened = SIGNER.verify(SIGNER.open_token(message_id), "o")
    assert opened is not None and opened.link is None


def test_only_absolute_http_links_are_rewritten_and_escaped() -> None:
    html = (
        '<a href="https://a.example/x?q=1&amp;r=2">a</a> <A HREF=http://b.example/>b</A>'
        '<a href="javascript:alert(1)">c</a><a href="/relative">d</a>'
        '<area href=\'https://c.example/"quoted"\'><link href="https://css.example/s.css">'
    )
    assert extract_links(html) == [
        "https://a.example/x?q=1&r=2",
        "http://b.example/",
        'https://c.example/"quoted"',
    ]
    rewritten = rewrite_links(html, lambda index, url: f"https://t.example/{index}?a=<&>")
    assert 'href="https://t.example/0?a=&lt;&amp;&gt;"' in rewritten
    assert 'HREF="https://t.example/1?a=&lt;&amp;&gt;"' in rewritten
    assert 'href="javascript:alert(1)"' in rewritten and 'href="/relative"' in rewritten
    assert '<link href="https://css.example/s.css">' in rewritten


def test_marketing_rule() -> None:
    assert is_marketing({"tags": ["MARKETING"]}) and is_marketing({"tags": ["bulk"]})
    assert is_marketing({"tags": [], "bulk": True})
    assert not is_marketing({"tags": ["receipts"]})


def _message(html: str, tags: list[str]) -> OutboundMessage:
    message_id = new_id("msg")
    content = {
        "from": "news@example.com",
        "to": ["ada@example.com"],
        "subject": "S",
        "text": None,
        "html": html,
        "tags": tags,
        "tracking": tracking_content(
            message_id=message_id,
            html=html,
            tags=tags,
            flags={"opens": True, "clicks": True},
            base_url="https://api.example.com/sandbox/",
            signer=SIGNER,
        ),
    }
    return OutboundMessage(
        id=message_id,
        account_id="acc_1",
        environment=Environment.SANDBOX,
        channel="email",
        to="ada@example.com",
        sender="news@example.com",
        body=None,
        content=content,
        attempt=1,
    )


def test_rendering_is_a_pure_function_of_the_message() -> None:
    message = _message('<html><body><a href="https://shop.example/">Shop</a></body></html>', [])
    at = datetime(2026, 11, 24, 8, tzinfo=UTC)
    first, second = render_outbound_email(message, date=at), render_outbound_email(message, date=at)
    boundary = re.compile(rb"={10,}[0-9]+==")  # the MIME boundaries are random
    assert boundary.sub(b"B", first) == boundary.sub(b"B", second)
    parsed = message_from_bytes(render_outbound_email(message, date=at), policy=policy.default)
    html = parsed.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    text = parsed.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "https://api.example.com/sandbox/t/c/" in html
    assert html.index("/t/o/") < html.index("</body>")
    assert "https://shop.example/" in text  # the text part keeps the caller's links
    assert parsed["List-Unsubscribe"] is None


def test_marketing_mail_carries_one_click_headers() -> None:
    message = _message("<p>Sale!</p>", ["marketing"])
    raw = render_outbound_email(message, date=datetime(2026, 11, 24, 8, tzinfo=UTC))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["List-Unsubscribe"].startswith("<https://api.example.com/sandbox/t/u/")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
