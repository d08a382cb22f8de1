"""Phone numbers: validated with phonenumbers and stored as E.164 (``+393331234567``).

How a number is read:

- ``+`` and digits: international.
- ``00`` and digits: ``00`` is the international prefix (most of the world's), so
  ``00393331234567`` is ``+393331234567``.
- Digits alone: international, as WhatsApp reads them, unless the deployment sets a
  default country (``TIDINGS_PHONE_DEFAULT_COUNTRY``, made current for each request by
  :func:`reading_country`). Then a national number of that country is accepted too,
  and a number valid both ways (``2015291417``: Egypt's ``+20 1529 1417``, or the US's
  ``+1 201-529-1417``) is refused with both readings named.

Refusals say what to write instead. ``extra_valid`` lets an environment accept
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
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, geocoder

from tidings.core.errors import FieldError, Unprocessable

_ALLOWED = re.compile(r"^\+?\(?[0-9][0-9 ()\-.]{3,30}$")


def invalid_phone(value: str, field: str, reason: str) -> Unprocessable:
    return Unprocessable(
        f"{value!r} is not a valid phone number: {reason}",
        code="invalid_phone_number",
        errors=[FieldError(field, "invalid_phone_number", reason)],
    )


_COUNTRY: ContextVar[str | None] = ContextVar("phone_default_country", default=None)
_WRITE = "write it with + and its country code, e.g. +12015550123 or +393331234567"


@contextmanager
def reading_country(country: str | None) -> Iterator[None]:
    """Read national numbers as ``country``'s (an ISO 3166 code) within the block."""
    token = _COUNTRY.set(country)
    try:
        yield
    finally:
        _COUNTRY.reset(token)


def _country_name(e164: str) -> str:
    try:
        name = geocoder.country_name_for_number(phonenumbers.parse(e164, None), "en")
    except phonenumbers.NumberParseException:
        name = ""
    return name or "unknown country"


def _international(e164: str, extra_valid: frozenset[str]) -> str | None:
    if e164 in extra_valid or fast_valid(e164):
        return e164
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _national(digits: str, country: str) -> str | None:
    fast = _fast_national(digits, country)
    if fast is not None:
        return fast
    try:
        parsed = phonenumbers.parse(digits, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number_for_region(parsed, country):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _fast_national(digits: str, country: str) -> str | None:
    """The national reading without phonenumbers' parse, when nothing needs stripping
    and the country code is the country's alone (else None: ask phonenumbers)."""
    code = phonenumbers.country_code_for_region(country)
    if not code or len(COUNTRY_CODE_TO_REGION_CODE.get(code, ())) != 1:
        return None
    rules = _region_rules(country)
    if rules is None or (rules.national_prefix is not None and rules.national_prefix.match(digits)):
        return None
    candidate = f"+{code}{digits}"
    return candidate if fast_valid(candidate) else None


def to_e164(
    value: str,
    field: str = "to",
    *,
    extra_valid: frozenset[str] = frozenset(),
    default_country: str | None = None,
) -> str:
    """``value`` as E.164, or the 422 ``invalid_phone_number`` saying what to write."""
    text = value.strip()
    if not _ALLOWED.match(text):
        raise invalid_phone(value, field, f"{_WRITE}.")
    digits = re.sub(r"[^0-9]", "", text)
    if text.startswith("+"):
        found = _international("+" + digits, extra_valid)
        if found is None:
            raise invalid_phone(value, field, _why_not("+" + digits))
        return found
    if digits.startswith("00"):
        found = _international("+" + digits[2:], extra_valid)
        if found is None:
            raise invalid_phone(
                value,
                field,
                f"read with 00 as the international prefix, {_why_not('+' + digits[2:])}",
            )
        return found
    country = default_country or _COUNTRY.get()
    international = _international("+" + digits, extra_valid)
    national = _national(digits, country) if country else None
    if international and national and international != national:
        raise invalid_phone(
            value,
            field,
            f"it could be {international} ({_country_name(international)}) or "
            f"{national} ({_country_name(national)}); write the one you mean with +.",
        )
    found = international or national
    if found is not None:
        return found
    if country:
        raise invalid_phone(
            value,
            field,
            f"it is neither a national number of {country} nor, read as +{digits}, an "
            f"international one; {_WRITE}.",
        )
    if digits.startswith("0"):
        raise invalid_phone(
            value,
            field,
            "it looks like a national number (a leading 0), and this deployment has no "
            f"default country to read it in; {_WRITE} (e.g. +447400123456, not 07400123456).",
        )
    raise invalid_phone(
        value,
        field,
        f"digits without + are read as international, and +{digits} {_why_not('+' + digits)}",
    )


def _why_not(e164: str) -> str:
    try:
        phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return f"{e164} has no valid country code; {_WRITE}."
    return f"{e164} is not a number in {_country_name(e164)}'s plan; {_WRITE}."


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
    if digits.startswith("0"):
        return False  # no country code starts with 0 (int() would drop it: "+020" is not Egypt)
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
