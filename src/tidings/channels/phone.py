"""Phone numbers: validated with phonenumbers and stored as E.164 (``+393331234567``).

A number may be given with or without its ``+``; national formats are refused,
since the API has no default country. ``extra_valid`` lets an environment accept
numbers outside the numbering plan: the sandbox's magic test numbers.

phonenumbers decides validity, but its ``parse`` and ``is_valid_number`` cost
about 40 us a number, most of it trying a dozen patterns one by one: 4 s for a
bulk request of 100,000. :class:`_FastPlan` answers the common case (a number
already in international form, with nothing to strip) with one precompiled
regular expression per region built from phonenumbers' own metadata, and
defers every other case to phonenumbers. The property test in
``tests/channels/test_phone.py`` holds it to phonenumbers' answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

from tidings.core.errors import FieldError, Unprocessable

_ALLOWED = re.compile(r"^\+?[0-9][0-9 ()\-.]{3,30}$")


def invalid_phone(value: str, field: str, reason: str) -> Unprocessable:
    return Unprocessable(
        f"{value!r} is not a valid phone number: {reason}",
        code="invalid_phone_number",
        errors=[FieldError(field, "invalid_phone_number", reason)],
    )


def to_e164(value: str, field: str = "to", *, extra_valid: frozenset[str] = frozenset()) -> str:
    text = value.strip()
    if not _ALLOWED.match(text):
        raise invalid_phone(value, field, "use the international format, e.g. +393331234567.")
    digits = "+" + re.sub(r"[^0-9]", "", text)
    if digits in extra_valid:
        return digits
    if fast_valid(digits):
        return digits
    try:
        parsed = phonenumbers.parse(digits, None)
    except phonenumbers.NumberParseException:
        raise invalid_phone(value, field, "it has no valid country code.") from None
    if not phonenumbers.is_valid_number(parsed):
        raise invalid_phone(value, field, "no such number exists in its country's plan.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# The number types phonenumbers' _number_type_helper accepts as valid, in its order.
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)


def _desc_pattern(desc: object) -> str | None:
    """A regular expression for one PhoneNumberDesc: its possible lengths as a
    lookahead, then its national number pattern, as phonenumbers matches them."""
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None
    lengths = [n for n in getattr(desc, "possible_length", None) or () if n > 0]
    guard = f"(?=(?:{'|'.join(f'[0-9]{{{n}}}' for n in lengths)})\\Z)" if lengths else ""
    return f"{guard}(?:{pattern})"


@dataclass(frozen=True, slots=True)
class _RegionRules:
    general: re.Pattern[str]
    typed: re.Pattern[str]
    leading_digits: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None

    def valid(self, nsn: str) -> bool:
        return bool(self.general.fullmatch(nsn) and self.typed.fullmatch(nsn))


@cache
def _region_rules(region: str) -> _RegionRules | None:
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None:
        return None
    general = _desc_pattern(metadata.general_desc)
    descs = [getattr(metadata, name) for name in _TYPES]
    if not metadata.same_mobile_and_fixed_line_pattern:
        descs.append(metadata.mobile)
    typed = [p for p in (_desc_pattern(d) for d in descs) if p]
    if general is None or not typed:
        return None
    prefix = metadata.national_prefix_for_parsing
    return _RegionRules(
        general=re.compile(general),
        typed=re.compile("|".join(f"(?:{p})" for p in typed)),
        leading_digits=re.compile(metadata.leading_digits) if metadata.leading_digits else None,
        national_prefix=re.compile(prefix) if prefix else None,
    )


def fast_valid(e164: str) -> bool:
    """True when ``+digits`` is certainly a valid number that phonenumbers would
    write exactly so; False means "ask phonenumbers", not "invalid"."""
    digits = e164[1:]
    for size in (1, 2, 3):
        regions = COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:size]))
        if regions:
            break
    else:
        return False
    nsn = digits[size:]
    if not 2 <= len(nsn) <= 17 or "001" in regions:
        return False
    for region in regions:
        rules = _region_rules(region)
        if rules is None:
            return False
        if rules.national_prefix is not None and rules.national_prefix.match(nsn):
            # phonenumbers might strip a national prefix here: its answer, then.
            return False
        if rules.leading_digits is not None:
            if rules.leading_digits.match(nsn):
                return rules.valid(nsn)
        elif rules.valid(nsn):
            return True
    return False
