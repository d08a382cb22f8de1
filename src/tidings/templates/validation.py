"""WhatsApp's rules for a new template, each broken rule named by its field.

Checked: the name (lowercase letters, digits and underscores, at most 512), the
language (:data:`~tidings.templates.languages.LANGUAGES`), exactly one BODY (at
most 1,024 characters, not starting or ending with a parameter), at most one
HEADER (TEXT: at most 60 characters and one parameter; IMAGE/DOCUMENT/VIDEO: no
text), FOOTER (at most 60 characters, no parameters), BUTTONS (at most 10: up to
10 QUICK_REPLY kept together, 2 URL, 1 PHONE_NUMBER, 1 COPY_CODE; OTP only, and
exactly one, in AUTHENTICATION templates, which have no header and one body
parameter, the code). Placeholders are ``{{1}}``.. numbered from 1 without gaps
in each component, or named ``{{first_name}}``, never both in one template.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from tidings.core.errors import FieldError, Unprocessable
from tidings.templates.languages import LANGUAGES
from tidings.templates.schemas import ButtonIn, ComponentIn, TemplateCreate
from tidings.templates.shape import (
    MEDIA_FORMATS,
    NAMED,
    PLACEHOLDER,
    distinct_names,
    is_positional,
    placeholders,
)

NAME = re.compile(r"[a-z0-9_]+")
MAX_NAME = 512
MAX_BODY = 1024
MAX_HEADER = 60
MAX_FOOTER = 60
MAX_BUTTONS = 10
MAX_BUTTON_TEXT = 25
MAX_URL = 2000
MAX_CODE_EXAMPLE = 15
PHONE = re.compile(r"\+?[0-9]{5,20}")
BUTTON_LIMITS = {"QUICK_REPLY": 10, "URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1, "OTP": 1}
ORDER = ("HEADER", "BODY", "FOOTER", "BUTTONS")


@dataclass(frozen=True, slots=True)
class CheckedTemplate:
    """A template that follows the rules, its components ready to store."""

    name: str
    language: str
    category: str
    parameter_format: str
    components: list[dict[str, Any]]


class _Check:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, field: str, code: str, message: str) -> None:
        self.errors.append(FieldError(field, code, message))

    def text(
        self, field: str, text: str | None, *, limit: int, what: str, required: bool = True
    ) -> str | None:
        if text is None or not text.strip():
            if required:
                self.fail(field, "missing", f"{what} needs a text.")
            return None
        if len(text) > limit:
            self.fail(field, "too_long", f"{what} may have at most {limit} characters.")
        return text

    def placeholders(self, field: str, text: str, what: str) -> tuple[str, ...]:
        """The parameters ``text`` takes; reports malformed ones and numbering gaps."""
        if "{{" in PLACEHOLDER.sub("", text) or "}}" in PLACEHOLDER.sub("", text):
            self.fail(field, "malformed_parameter", f"{what} has unbalanced {{{{ }}}} braces.")
        bad = [n for n in placeholders(text) if not is_positional(n) and not NAMED.fullmatch(n)]
        for name in bad:
            self.fail(
                field,
                "invalid_parameter",
                f"{{{{{name}}}}} is not a parameter: use {{{{1}}}}, {{{{2}}}}... or a "
                "lowercase name such as {{first_name}}.",
            )
        names = distinct_names(text)
        numbers = sorted(int(n) for n in names if is_positional(n))
        if numbers and numbers != list(range(1, len(numbers) + 1)):
            self.fail(
                field,
                "parameter_numbering",
                f"{what} numbers its parameters {numbers}; number them 1 to "
                f"{len(numbers)} with no gaps.",
            )
        return tuple(n for n in names if n not in bad)


def check_template(request: TemplateCreate) -> CheckedTemplate:
    """The template ready to store, or 422 naming every broken rule."""
    check = _Check()
    name = request.name.strip()
    if not name or len(name) > MAX_NAME or not NAME.fullmatch(name):
        check.fail(
            "name",
            "invalid_template_name",
            f"Use 1 to {MAX_NAME} lowercase letters, digits and underscores.",
        )
    language = request.language.strip()
    if language not in LANGUAGES:
        check.fail(
            "language",
            "unknown_language",
            f"{language!r} is not a WhatsApp template language; use a code such as "
            "en, en_US, it or pt_BR.",
        )
    components = _check_components(check, request)
    names = [n for c in components if c["type"] in ("HEADER", "BODY") for n in _text_names(c)]
    named = [n for n in names if not is_positional(n)]
    parameter_format = "NAMED" if named else "POSITIONAL"
    if named and len(named) != len(names):
        check.fail(
            "components",
            "mixed_parameter_formats",
            "Use either positional parameters ({{1}}) or named ones ({{first_name}}), not both.",
        )
    elif (
        request.parameter_format is not None
        and names
        and request.parameter_format != parameter_format
    ):
        check.fail(
            "parameterFormat",
            "parameter_format_mismatch",
            f"parameterFormat is {request.parameter_format} but the text uses "
            f"{parameter_format.lower()} parameters.",
        )
    if check.errors:
        fields = ", ".join(dict.fromkeys(error.field for error in check.errors))
        raise Unprocessable(
            f"The template does not follow WhatsApp's rules: {fields}.", errors=check.errors
        )
    return CheckedTemplate(
        name=name,
        language=language,
        category=request.category,
        parameter_format=request.parameter_format
        if not names and request.parameter_format
        else parameter_format,
        components=components,
    )


def _text_names(component: dict[str, Any]) -> tuple[str, ...]:
    if component.get("format") in MEDIA_FORMATS:
        return ()
    return distinct_names(str(component.get("text") or ""))


def _check_components(check: _Check, request: TemplateCreate) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    authentication = request.category == "AUTHENTICATION"
    for index, component in enumerate(request.components):
        field = f"components.{index}"
        if component.type in found:
            check.fail(
                f"{field}.type",
                "duplicate_component",
                f"A template has at most one {component.type} component.",
            )
            continue
        if component.format is not None and component.type != "HEADER":
            check.fail(f"{field}.format", "not_allowed", "Only a HEADER has a format.")
        if component.buttons is not None and component.type != "BUTTONS":
            check.fail(f"{field}.buttons", "not_allowed", "Only a BUTTONS component has buttons.")
        if component.type == "HEADER":
            if authentication:
                check.fail(
                    f"{field}.type",
                    "header_not_allowed",
                    "AUTHENTICATION templates have no header.",
                )
            found["HEADER"] = _header(check, field, component)
        elif component.type == "BODY":
            found["BODY"] = _body(check, field, component, authentication)
        elif component.type == "FOOTER":
            text = check.text(f"{field}.text", component.text, limit=MAX_FOOTER, what="The footer")
            if text and placeholders(text):
                check.fail(
                    f"{field}.text", "parameters_not_allowed", "A footer takes no parameters."
                )
            found["FOOTER"] = {"type": "FOOTER", "text": text or ""}
        else:
            found["BUTTONS"] = _buttons(check, field, component.buttons or [], authentication)
    if "BODY" not in found:
        check.fail("components", "body_required", "A template needs exactly one BODY component.")
    if authentication and "BUTTONS" not in found:
        check.fail(
            "components", "otp_button_required", "AUTHENTICATION templates need one OTP button."
        )
    return [found[kind] for kind in ORDER if kind in found]


def _header(check: _Check, field: str, component: ComponentIn) -> dict[str, Any]:
    header_format = component.format or "TEXT"
    stored: dict[str, Any] = {"type": "HEADER", "format": header_format}
    if header_format in MEDIA_FORMATS:
        if component.text:
            check.fail(
                f"{field}.text",
                "not_allowed",
                f"An {header_format} header has no text: its media is given at send time.",
            )
    else:
        text = check.text(f"{field}.text", component.text, limit=MAX_HEADER, what="The header")
        if text:
            if len(check.placeholders(f"{field}.text", text, "The header")) > 1:
                check.fail(
                    f"{field}.text", "too_many_parameters", "A header takes at most 1 parameter."
                )
            stored["text"] = text
    if component.example:
        stored["example"] = component.example
    return stored


def _body(
    check: _Check, field: str, component: ComponentIn, authentication: bool
) -> dict[str, Any]:
    text = check.text(f"{field}.text", component.text, limit=MAX_BODY, what="The body")
    stored: dict[str, Any] = {"type": "BODY", "text": text or ""}
    if text:
        names = check.placeholders(f"{field}.text", text, "The body")
        stripped = text.strip()
        # WhatsApp writes authentication bodies itself ("{{1}} is your verification code").
        if not authentication and (stripped.startswith("{{") or stripped.endswith("}}")):
            check.fail(
                f"{field}.text",
                "parameter_at_edge",
                "The body may not start or end with a parameter; add text around it.",
            )
        if authentication and len(names) != 1:
            check.fail(
                f"{field}.text",
                "otp_body_parameter",
                "An AUTHENTICATION body takes exactly one parameter, the code.",
            )
    if component.example:
        stored["example"] = component.example
    return stored


def _buttons(
    check: _Check, field: str, buttons: list[ButtonIn], authentication: bool
) -> dict[str, Any]:
    if not buttons:
        check.fail(f"{field}.buttons", "missing", "A BUTTONS component needs 1 to 10 buttons.")
    if len(buttons) > MAX_BUTTONS:
        check.fail(f"{field}.buttons", "too_many_buttons", "A template has at most 10 buttons.")
    counts: dict[str, int] = {}
    for button in buttons:
        counts[button.type] = counts.get(button.type, 0) + 1
    for kind, count in counts.items():
        if count > BUTTON_LIMITS[kind]:
            check.fail(
                f"{field}.buttons",
                "too_many_buttons",
                f"A template has at most {BUTTON_LIMITS[kind]} {kind} button(s); this has {count}.",
            )
    kinds = [button.type == "QUICK_REPLY" for button in buttons]
    if sum(kinds) and sum(1 for a, b in itertools.pairwise(kinds) if a != b) > 1:
        check.fail(
            f"{field}.buttons",
            "quick_replies_not_grouped",
            "Put the QUICK_REPLY buttons together, before or after the others.",
        )
    if authentication and (counts.get("OTP") != 1 or len(buttons) != 1):
        check.fail(
            f"{field}.buttons",
            "otp_button_required",
            "An AUTHENTICATION template has exactly one button, of type OTP.",
        )
    if not authentication and counts.get("OTP"):
        check.fail(
            f"{field}.buttons", "otp_not_allowed", "OTP buttons are for AUTHENTICATION templates."
        )
    stored = [_button(check, f"{field}.buttons.{i}", b) for i, b in enumerate(buttons)]
    return {"type": "BUTTONS", "buttons": stored}


def _button(check: _Check, field: str, button: ButtonIn) -> dict[str, Any]:
    stored: dict[str, Any] = {"type": button.type}
    label_required = button.type in ("QUICK_REPLY", "URL", "PHONE_NUMBER")
    text = check.text(
        f"{field}.text",
        button.text,
        limit=MAX_BUTTON_TEXT,
        what=f"A {button.type} button",
        required=label_required,
    )
    if text:
        if placeholders(text):
            check.fail(f"{field}.text", "parameters_not_allowed", "A button's label is fixed.")
        stored["text"] = text
    if button.type == "URL":
        stored["url"] = _url(check, f"{field}.url", button.url)
    elif button.type == "PHONE_NUMBER":
        number = (button.phone_number or "").strip()
        if not PHONE.fullmatch(number):
            check.fail(
                f"{field}.phoneNumber",
                "invalid_phone_number",
                "A PHONE_NUMBER button needs a number of up to 20 digits, e.g. +393331234567.",
            )
        stored["phoneNumber"] = number
    elif button.type == "COPY_CODE":
        example = button.example if isinstance(button.example, str) else None
        if example is not None and len(example) > MAX_CODE_EXAMPLE:
            check.fail(f"{field}.example", "too_long", "A code has at most 15 characters.")
    elif button.type == "OTP":
        stored["otpType"] = button.otp_type or "COPY_CODE"
        if stored["otpType"] != "COPY_CODE":
            check.fail(
                f"{field}.otpType",
                "unsupported_otp_type",
                "Only COPY_CODE OTP buttons are supported (one-tap needs an Android app).",
            )
    if button.example is not None:
        stored["example"] = button.example
    return stored


def _url(check: _Check, field: str, url: str | None) -> str:
    url = (url or "").strip()
    if not re.match(r"https?://[^\s/{}]+", url):
        check.fail(field, "invalid_url", "A URL button needs an http(s) URL.")
        return url
    if len(url) > MAX_URL:
        check.fail(field, "too_long", f"A URL has at most {MAX_URL} characters.")
    names = placeholders(url)
    if names and (names != ["1"] or not url.endswith("}}")):
        check.fail(
            field,
            "invalid_url_parameter",
            "A URL takes at most one parameter, {{1}}, at its end "
            "(e.g. https://example.com/orders/{{1}}).",
        )
    return url
