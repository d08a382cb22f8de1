"""The fast path of phone validation gives phonenumbers' answers, and is taken."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberFormat, PhoneNumberType

from tidings.channels.phone import fast_valid, to_e164
from tidings.core.errors import Unprocessable


def reference(e164: str) -> str | None:
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def example_numbers() -> list[str]:
    found = []
    for regions in COUNTRY_CODE_TO_REGION_CODE.values():
        for region in regions:
            for kind in (
                PhoneNumberType.MOBILE,
                PhoneNumberType.FIXED_LINE,
                PhoneNumberType.TOLL_FREE,
                PhoneNumberType.VOIP,
            ):
                example = phonenumbers.example_number_for_type(region, kind)
                if example is not None:
                    found.append(phonenumbers.format_number(example, PhoneNumberFormat.E164))
    return found


def test_every_example_number_is_accepted_as_phonenumbers_writes_it() -> None:
    examples = example_numbers()
    fast = [number for number in examples if fast_valid(number)]
    assert all(reference(number) == number for number in fast)
    assert all(to_e164(number) == reference(number) for number in examples)
    # The fast path is the usual one, not a rarity.
    assert len(fast) > 0.9 * len(examples)


numbers = st.builds(
    lambda cc, rest: f"+{cc}{rest}",
    st.sampled_from(sorted(COUNTRY_CODE_TO_REGION_CODE)),
    st.text("0123456789", min_size=2, max_size=15),
)


@settings(max_examples=3000, deadline=None)
@given(numbers)
def test_fast_acceptance_implies_phonenumbers_acceptance(number: str) -> None:
    if fast_valid(number):
        assert reference(number) == number


@settings(max_examples=500, deadline=None)
@given(numbers)
def test_to_e164_agrees_with_phonenumbers(number: str) -> None:
    expected = reference(number)
    if expected is None:
        with pytest.raises(Unprocessable):
            to_e164(number)
    else:
        assert to_e164(number) == expected
