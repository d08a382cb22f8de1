"""The small tables: a relay's replies -> the delivery error tree, VERP addresses, the
resolver setting, DSN's xtext and the ids given to recipients."""

from __future__ import annotations

import pytest

from tidings.domains.resolver import parse_nameservers
from tidings.domains.verp import Verp
from tidings.providers.errors import (
    ConfigurationError,
    ConnectionDown,
    PermanentDeliveryError,
    RetryableDeliveryError,
    ThrottledError,
)
from tidings.providers.smtp.errors import Reply, error_for
from tidings.providers.smtp.refs import MAX_REF, ref_id, xtext


@pytest.mark.parametrize(
    ("code", "text", "stage", "kind", "error_code"),
    [
        (
            535,
            "5.7.8 Authentication credentials invalid",
            "auth",
            ConfigurationError,
            "credentials_refused",
        ),
        (530, "5.7.0 Authentication required", "mail", ConfigurationError, "auth_required"),
        (421, "4.4.2 Closing connection", "rcpt", ConnectionDown, "relay_unavailable"),
        (
            454,
            "Throttling failure: Maximum sending rate exceeded",
            "mail",
            ThrottledError,
            "throttled",
        ),
        (
            451,
            "4.7.28 Rate limited for spam, try again in 2 minutes",
            "rcpt",
            ThrottledError,
            "throttled",
        ),
        (451, "4.2.0 Mailbox busy", "rcpt", RetryableDeliveryError, "relay_deferred"),
        (550, "5.1.1 User unknown", "rcpt", PermanentDeliveryError, "recipient_unknown"),
        (
            553,
            "5.1.8 Sender domain does not exist",
            "mail",
            PermanentDeliveryError,
            "relay_rejected",
        ),
        (554, "5.7.1 Rejected by policy", "rcpt", PermanentDeliveryError, "relay_rejected"),
        (552, "5.3.4 Message too big", "data", PermanentDeliveryError, "relay_rejected"),
    ],
)
def test_replies(code: int, text: str, stage: str, kind: type, error_code: str) -> None:
    error = error_for(Reply(code, text), stage=stage)
    assert type(error) is kind
    assert error.code == error_code
    assert error.message.endswith(f"{code} {text}")


def test_a_named_wait_is_the_retry_hint() -> None:
    error = error_for(Reply(451, "4.7.28 try again in 2 minutes"), stage="rcpt")
    assert isinstance(error, RetryableDeliveryError) and error.retry_after == 120.0


def test_hard_bounce_is_5_1_x_only() -> None:
    assert Reply(550, "5.1.1 no such user").hard_bounce
    assert Reply(550, "5.1.10 null MX").hard_bounce
    assert not Reply(550, "5.7.1 policy").hard_bounce
    assert not Reply(550, "No such user").hard_bounce
    assert not Reply(450, "4.1.1 try later").hard_bounce


def test_verp_addresses_are_signed() -> None:
    verp = Verp(b"k" * 32, "Bounces.Example.COM.")
    address = verp.address("msg_01JD8X3V7K2M4N6P8Q0R2S4T6V")
    local, _, domain = address.partition("@")
    assert domain == "bounces.example.com" and len(local) <= 64
    assert verp.message_of(address) == "msg_01JD8X3V7K2M4N6P8Q0R2S4T6V"
    assert verp.message_of(f"<{address.lower()}>") == "msg_01JD8X3V7K2M4N6P8Q0R2S4T6V"
    assert verp.message_of(address.replace("b-msg_01J", "b-msg_01K")) is None
    assert verp.message_of(address.replace("bounces.example.com", "other.example")) is None
    assert Verp(b"j" * 32, "bounces.example.com").message_of(address) is None
    assert verp.message_of("fbl@bounces.example.com") is None


def test_nameservers_setting() -> None:
    assert parse_nameservers("") == []
    assert parse_nameservers("127.0.0.1:5353, 192.0.2.53") == [
        ("127.0.0.1", 5353),
        ("192.0.2.53", 53),
    ]
    assert parse_nameservers("[::1]:5353,[2001:db8::53]") == [("::1", 5353), ("2001:db8::53", 53)]


def test_xtext_and_ref_ids() -> None:
    assert xtext("a+b=c@example.org") == "a+2Bb+3Dc@example.org"
    assert xtext("é") == "+C3+A9"
    assert ref_id("msg_1", " Bob@Example.ORG ") == "msg_1:bob@example.org"
    long = "x" * 200 + "@example.org"
    assert len(ref_id("msg_1", long)) <= MAX_REF
    assert ref_id("msg_1", long) == ref_id("msg_1", long.upper())
