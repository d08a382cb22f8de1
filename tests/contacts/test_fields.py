"""Field checks of contacts: the fast email pattern agrees with email_validator,
and variables are bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.channels.email.addresses import parse_mailbox
from tidings.contacts.fields import (
    MAX_VARIABLES,
    SIMPLE_EMAIL,
    Rejection,
    check_email,
    check_phone,
    check_variables,
)

_ATOM = st.text("abcXYZ09_+=-", min_size=1, max_size=8)
_LABEL = st.text("abZ09-", min_size=1, max_size=10)
_TLD = st.text("abcdefghijklmnopqrstuvwxyzXY", min_size=2, max_size=6)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    local = ".".join(draw(st.lists(_ATOM, min_size=1, max_size=3)))
    labels = draw(st.lists(_LABEL, min_size=1, max_size=3))
    return f"{local}@{'.'.join([*labels, draw(_TLD)])}"


@settings(max_examples=500)
@given(addresses())
def test_fast_emails_are_ones_email_validator_accepts(address: str) -> None:
    """Whatever the fast pattern accepts, email_validator accepts, written alike."""
    if SIMPLE_EMAIL.fullmatch(address):
        assert check_email(address) == parse_mailbox(address, "email").address.lower()


def test_emails_outside_the_fast_pattern_go_to_email_validator() -> None:
    assert check_email("Ada@B.C") == "ada@b.c"
    assert isinstance(check_email("a..b@example.com"), Rejection)
    assert isinstance(check_email("Ada <ada@example.com>"), Rejection)
    assert isinstance(check_email("ada@"), Rejection)


def test_phones_are_e164() -> None:
    assert check_phone("393331234567", frozenset()) == "+393331234567"
    rejected = check_phone("+12", frozenset())
    assert isinstance(rejected, Rejection) and rejected.code == "invalid_phone_number"


def test_variables_are_bounded() -> None:
    assert check_variables({"name": "Ada", "_x1": ""}) == {"name": "Ada", "_x1": ""}
    bad_name = check_variables({"1st": "x"})
    assert isinstance(bad_name, Rejection) and bad_name.code == "invalid_variable_name"
    too_long = check_variables({"name": "x" * 1025})
    assert isinstance(too_long, Rejection) and too_long.code == "invalid_variable"
    too_many = check_variables({f"v{i}": "x" for i in range(MAX_VARIABLES + 1)})
    assert isinstance(too_many, Rejection) and too_many.code == "too_many_variables"
