"""WhatsApp's rules for new templates: each broken rule answers 422 naming its field
(checked on the pure function; the API test covers the HTTP side)."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.core.errors import Unprocessable
from tidings.templates.schemas import TemplateCreate
from tidings.templates.seed_data import SEED
from tidings.templates.shape import parameter_format_of
from tidings.templates.validation import check_template


def request(**overrides: Any) -> TemplateCreate:
    values: dict[str, Any] = {
        "name": "order_shipped",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped today."},
            {"type": "FOOTER", "text": "Thanks for shopping with us"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "URL", "text": "Track", "url": "https://x.example/t/{{1}}"},
                    {"type": "PHONE_NUMBER", "text": "Call us", "phoneNumber": "+393331234567"},
                ],
            },
        ],
    }
    values.update(overrides)
    return TemplateCreate.model_validate(values)


def errors_of(template: TemplateCreate) -> dict[str, str]:
    with pytest.raises(Unprocessable) as caught:
        check_template(template)
    assert caught.value.code == "validation_failed"
    return {error.field: error.code for error in caught.value.errors}


def body(text: str) -> dict[str, Any]:
    return {"type": "BODY", "text": text}


def test_a_valid_template_is_stored_in_canonical_order() -> None:
    checked = check_template(request())
    assert checked.parameter_format == "POSITIONAL"
    assert [c["type"] for c in checked.components] == ["HEADER", "BODY", "FOOTER", "BUTTONS"]
    buttons = checked.components[3]["buttons"]
    assert buttons[1] == {"type": "PHONE_NUMBER", "text": "Call us", "phoneNumber": "+393331234567"}


def test_named_parameters_make_a_named_template() -> None:
    checked = check_template(
        request(components=[body("Hello {{first_name}}, see you on {{day}} at the shop.")])
    )
    assert checked.parameter_format == "NAMED"


@pytest.mark.parametrize("seed", SEED, ids=lambda seed: f"{seed[0]}-{seed[1]}")
def test_the_sandbox_seed_follows_the_rules(seed: tuple[str, str, str, Any]) -> None:
    name, language, category, components = seed
    checked = check_template(
        TemplateCreate.model_validate(
            {"name": name, "language": language, "category": category, "components": components}
        )
    )
    assert checked.components == components
    assert checked.parameter_format == parameter_format_of(components)


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"name": "Order-Update"}, "name", "invalid_template_name"),
        ({"name": "x" * 513}, "name", "invalid_template_name"),
        ({"language": "english"}, "language", "unknown_language"),
        ({"components": [{"type": "FOOTER", "text": "x"}]}, "components", "body_required"),
        (
            {"components": [body("Hello there {{1}} friend"), body("Another body here")]},
            "components.1.type",
            "duplicate_component",
        ),
        ({"components": [body("x" * 1025)]}, "components.0.text", "too_long"),
        ({"components": [body("{{1}} is here for you")]}, "components.0.text", "parameter_at_edge"),
        ({"components": [body("Your order is {{1}}")]}, "components.0.text", "parameter_at_edge"),
        (
            {"components": [body("Hi {{1}}, order {{3}} is ready now")]},
            "components.0.text",
            "parameter_numbering",
        ),
        (
            {"components": [body("Hi {{First Name}}, your order is ready")]},
            "components.0.text",
            "invalid_parameter",
        ),
        (
            {"components": [body("Hi {{1}, your order is ready")]},
            "components.0.text",
            "malformed_parameter",
        ),
        (
            {"components": [body("Hi {{1}}, your order {{code}} is ready")]},
            "components",
            "mixed_parameter_formats",
        ),
        (
            {
                "components": [
                    {"type": "HEADER", "format": "TEXT", "text": "x" * 61},
                    body("Hello, your order is ready"),
                ]
            },
            "components.0.text",
            "too_long",
        ),
        (
            {
                "components": [
                    {"type": "HEADER", "format": "TEXT", "text": "{{1}} and {{2}}"},
                    body("Hello, your order is ready"),
                ]
            },
            "components.0.text",
            "too_many_parameters",
        ),
        (
            {
                "components": [
                    {"type": "HEADER", "format": "IMAGE", "text": "A picture"},
                    body("Hello, your order is ready"),
                ]
            },
            "components.0.text",
            "not_allowed",
        ),
        (
            {
                "components": [
                    body("Hello, your order is ready"),
                    {"type": "FOOTER", "text": "x" * 61},
                ]
            },
            "components.1.text",
            "too_long",
        ),
        (
            {
                "components": [
                    body("Hello, your order is ready"),
                    {"type": "FOOTER", "text": "Bye {{1}}"},
                ]
            },
            "components.1.text",
            "parameters_not_allowed",
        ),
        ({"parameterFormat": "NAMED"}, "parameterFormat", "parameter_format_mismatch"),
    ],
)
def test_each_rule_names_its_field(overrides: dict[str, Any], field: str, code: str) -> None:
    assert errors_of(request(**overrides)).get(field) == code


def buttons(*items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "BUTTONS", "buttons": list(items)}


QR = {"type": "QUICK_REPLY", "text": "Yes"}
URL = {"type": "URL", "text": "Open", "url": "https://x.example/a"}


@pytest.mark.parametrize(
    ("button_list", "field", "code"),
    [
        ([QR] * 11, "components.1.buttons", "too_many_buttons"),
        ([URL, URL, URL], "components.1.buttons", "too_many_buttons"),
        ([QR, URL, QR], "components.1.buttons", "quick_replies_not_grouped"),
        ([{"type": "QUICK_REPLY"}], "components.1.buttons.0.text", "missing"),
        ([{"type": "QUICK_REPLY", "text": "x" * 26}], "components.1.buttons.0.text", "too_long"),
        (
            [{"type": "URL", "text": "Open", "url": "ftp://x"}],
            "components.1.buttons.0.url",
            "invalid_url",
        ),
        (
            [{"type": "URL", "text": "Open", "url": "https://x.example/{{1}}/{{2}}"}],
            "components.1.buttons.0.url",
            "invalid_url_parameter",
        ),
        (
            [{"type": "URL", "text": "Open", "url": "https://x.example/{{1}}/end"}],
            "components.1.buttons.0.url",
            "invalid_url_parameter",
        ),
        (
            [{"type": "PHONE_NUMBER", "text": "Call", "phoneNumber": "call me"}],
            "components.1.buttons.0.phoneNumber",
            "invalid_phone_number",
        ),
        (
            [{"type": "COPY_CODE", "example": "X" * 16}],
            "components.1.buttons.0.example",
            "too_long",
        ),
        ([{"type": "OTP"}], "components.1.buttons", "otp_not_allowed"),
    ],
)
def test_button_rules(button_list: list[dict[str, Any]], field: str, code: str) -> None:
    template = request(components=[body("Hello, your order is ready"), buttons(*button_list)])
    assert errors_of(template).get(field) == code


def test_authentication_templates_need_one_otp_button_and_no_header() -> None:
    found = errors_of(
        request(
            category="AUTHENTICATION",
            components=[
                {"type": "HEADER", "format": "TEXT", "text": "Code"},
                body("{{1}} and {{2}} are your codes."),
            ],
        )
    )
    assert found == {
        "components.0.type": "header_not_allowed",
        "components.1.text": "otp_body_parameter",
        "components": "otp_button_required",
    }
    ok = check_template(
        request(
            category="AUTHENTICATION",
            components=[body("{{1}} is your verification code."), buttons({"type": "OTP"})],
        )
    )
    assert ok.components[1]["buttons"] == [{"type": "OTP", "otpType": "COPY_CODE"}]
