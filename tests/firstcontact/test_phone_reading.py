"""Phone numbers as people write them (issue 17, item 4): 00 is the international
prefix, a deployment's default country reads national numbers, a number valid both
ways is refused naming both, and refusals say what to write instead."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.databases import migrate_to_head
from tests.support.users import bearer, create_test_user, login
from tidings.app import create_app
from tidings.channels.phone import reading_country, to_e164
from tidings.core.errors import Unprocessable


def reason(value: str, **kwargs: object) -> str:
    with pytest.raises(Unprocessable) as caught:
        to_e164(value, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_phone_number"
    return caught.value.errors[0].message


def test_00_is_the_international_prefix() -> None:
    assert to_e164("00393331234567") == "+393331234567"
    assert to_e164("00 39 333 123 4567") == "+393331234567"
    message = reason("0099912")
    assert "read with 00 as the international prefix" in message and "+" in message


def test_digits_alone_stay_international_without_a_default_country() -> None:
    assert to_e164("393331234567") == "+393331234567"
    # Read as +2015291417: Egypt's, as WhatsApp would read it.
    assert to_e164("2015291417") == "+2015291417"


def test_a_default_country_reads_national_numbers() -> None:
    assert to_e164("3331234567", default_country="IT") == "+393331234567"
    assert to_e164("(415) 555-0123", default_country="US") == "+14155550123"
    assert to_e164("07400 123456", default_country="GB") == "+447400123456"
    # International forms are unaffected.
    assert to_e164("+393331234567", default_country="US") == "+393331234567"
    assert to_e164("393331234567", default_country="IT") == "+393331234567"


def test_a_number_valid_both_ways_is_refused_naming_both() -> None:
    message = reason("2015291417", default_country="US")
    assert "+2015291417 (Egypt)" in message
    assert "+12015291417 (United States)" in message
    assert "write the one you mean with +" in message


def test_the_request_context_supplies_the_country() -> None:
    with reading_country("US"):
        assert to_e164("415 555 0123") == "+14155550123"
    # Outside the block there is no country again; and +0... is never a country code.
    assert "looks like a national number" in reason("0201 555 0123")
    assert "no valid country code" in reason("+02015550123")


def test_refusals_say_what_to_write() -> None:
    national = reason("07400 123456")
    assert "looks like a national number" in national
    assert "+447400123456, not 07400123456" in national
    assert "write it with + and its country code" in reason("+999123")
    assert "neither a national number of IT" in reason("99912", default_country="IT")


async def test_a_deployment_default_country_applies_to_sends(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    settings = make_settings(
        data, (f"sqlite+aiosqlite:///{data / 't.db'}", None), phone_default_country="US"
    )
    app = create_app(settings)
    await migrate_to_head(app)
    async with app.router.lifespan_context(app):
        user = await create_test_user(app)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = bearer(await login(client, user))
            sent = await client.post(
                "/sandbox/api/v4/sms/send",
                headers=headers,
                json={"to": "(415) 555-0123", "body": "Hi"},
            )
            assert sent.status_code in (200, 202), sent.text
            assert sent.json()["to"] == "+14155550123"
            ambiguous = await client.post(
                "/sandbox/api/v4/sms/send",
                headers=headers,
                json={"to": "2015291417", "body": "Hi"},
            )
            assert ambiguous.status_code == 422
            assert ambiguous.json()["code"] == "invalid_phone_number"
            assert "+12015291417 (United States)" in ambiguous.json()["errors"][0]["message"]


async def test_an_accounts_country_wins_over_the_deployments(tmp_path: Path) -> None:
    from tidings.accounts import service
    from tidings.accounts.repository import AccountRepository

    data = tmp_path / "data"
    data.mkdir()
    settings = make_settings(
        data, (f"sqlite+aiosqlite:///{data / 't.db'}", None), phone_default_country="US"
    )
    app = create_app(settings)
    await migrate_to_head(app)
    async with app.router.lifespan_context(app):
        british = await create_test_user(app, "uk@example.com")
        american = await create_test_user(app, "us@example.com")
        async with app.state.ctx.sessions() as session:
            repo = AccountRepository(session)
            await service.set_phone_country(repo, british.account_id, "gb")
            with pytest.raises(Unprocessable) as refused:
                await service.set_phone_country(repo, british.account_id, "XX")
            assert "ISO 3166" in refused.value.detail
            await session.commit()
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def send(user: object, to: str) -> httpx.Response:
                token = await login(client, user)  # type: ignore[arg-type]
                return await client.post(
                    "/sandbox/api/v4/sms/send",
                    headers=bearer(token),
                    json={"to": to, "body": "Hi"},
                )

            uk = await send(british, "07400 123456")
            assert uk.status_code in (200, 202) and uk.json()["to"] == "+447400123456"
            us = await send(american, "07400 123456")
            assert us.status_code == 422
            assert "neither a national number of US" in us.json()["errors"][0]["message"]
            assert (await send(american, "(415) 555-0123")).json()["to"] == "+14155550123"


def test_the_fast_national_reading_agrees_with_phonenumbers() -> None:
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    from tidings.channels.phone import _fast_national

    taken = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            written = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
            digits = "".join(c for c in written if c.isdigit())
            fast = _fast_national(digits, region)
            if fast is None:
                continue
            taken += 1
            parsed = phonenumbers.parse(digits, region)
            assert phonenumbers.is_valid_number_for_region(parsed, region), (region, digits)
            assert fast == phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    assert taken > 100  # the fast path is the usual one
