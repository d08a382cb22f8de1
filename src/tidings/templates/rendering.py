"""Filling a template's parameters for one send.

Positional parameters are given as a list in order; named ones as an object of
name to value (a list in the template's order is accepted too). A media header
takes ``{"type": "image", "url": "https://..."}`` or just the URL. Buttons take
one value per button that has a parameter, in button order (a URL button's
``{{1}}`` suffix, a COPY_CODE button's code); an OTP button copies the body's code
and takes nothing. Any mismatch answers 422 ``template_params_mismatch`` saying
which component expected how many (and, for named templates, which names are
missing or unknown).

The result keeps the text a reader sees (header, body and footer, filled) and the
components in the form WhatsApp's Cloud API sends them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tidings.core.errors import FieldError, Unprocessable
from tidings.templates.schemas import MediaParameter, TemplateParameters
from tidings.templates.shape import PLACEHOLDER, Shape

FIELD = "template.parameters"
MAX_CODE = 15
# WhatsApp refuses text parameters with new lines, tabs or more than 4 spaces in a row.
_BAD_TEXT = re.compile(r"[\n\r\t]| {5,}")
_HTTP_URL = re.compile(r"https?://\S+")

Given = list[Any] | dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    parameters: dict[str, Any]
    components: list[dict[str, Any]]


def parse_parameters(parameters: TemplateParameters | dict[str, Any]) -> TemplateParameters:
    if isinstance(parameters, TemplateParameters):
        return parameters
    try:
        return TemplateParameters.model_validate(parameters)
    except ValidationError as exc:
        errors = [
            FieldError(
                ".".join([FIELD, *(str(part) for part in item["loc"])]),
                str(item["type"]),
                str(item["msg"]),
            )
            for item in exc.errors()
        ]
        raise Unprocessable(
            "The template parameters are not well formed: give lists or objects of text.",
            code="template_params_mismatch",
            errors=errors,
        ) from None


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _plural(count: int) -> str:
    return f"{count} parameter" + ("" if count == 1 else "s")


class _Binder:
    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.errors: list[FieldError] = []

    def mismatch(self, field: str, message: str) -> None:
        self.errors.append(FieldError(f"{FIELD}.{field}", "template_params_mismatch", message))

    def texts(self, field: str, what: str, names: tuple[str, ...], given: Given) -> dict[str, str]:
        """Name to value for a component's text parameters, or reports a mismatch."""
        named = self.shape.parameter_format == "NAMED"
        if isinstance(given, dict) and not given:
            given = None
        if isinstance(given, dict):
            if not named:
                self.mismatch(
                    field,
                    f"{what} takes positional parameters: give a list of {len(names)} values.",
                )
                return {}
            missing = [n for n in names if n not in given]
            unknown = [n for n in given if n not in names]
            if missing or unknown:
                parts = [f"{what} takes {_plural(len(names))} ({', '.join(names) or 'none'})"]
                if missing:
                    parts.append(f"missing: {', '.join(missing)}")
                if unknown:
                    parts.append(f"unknown: {', '.join(unknown)}")
                self.mismatch(field, "; ".join(parts) + ".")
                return {}
            values = {name: given[name] for name in names}
        else:
            items = list(given or [])
            if len(items) != len(names):
                self.mismatch(field, f"{what} takes {_plural(len(names))}; {len(items)} given.")
                return {}
            values = dict(zip(names, items, strict=True))
        result: dict[str, str] = {}
        for position, (name, value) in enumerate(values.items()):
            label = f"{field}.{name}" if isinstance(given, dict) else f"{field}.{position}"
            if not isinstance(value, str):
                self.mismatch(label, f"{what}'s parameter {name} is text, not media.")
            elif not value.strip():
                self.mismatch(label, f"{what}'s parameter {name} is empty.")
            elif _BAD_TEXT.search(value):
                self.mismatch(
                    label,
                    f"{what}'s parameter {name} may not hold new lines, tabs or more "
                    "than 4 spaces in a row.",
                )
            else:
                result[name] = value
        return result

    def media(self, given: Given) -> dict[str, Any] | None:
        header_format = self.shape.header_format or "IMAGE"
        wanted = header_format.lower()
        items = list(given.values()) if isinstance(given, dict) else list(given or [])
        if len(items) != 1:
            self.mismatch(
                "header",
                f"The {header_format} header takes 1 parameter, the {wanted} to show "
                f'({{"type": "{wanted}", "url": "https://..."}} or the URL); {len(items)} given.',
            )
            return None
        item = items[0]
        media = item if isinstance(item, MediaParameter) else None
        url = media.url if media is not None else str(item)
        if media is not None and media.type != wanted:
            self.mismatch(
                "header.0", f"The {header_format} header takes {_a(wanted)}, not {_a(media.type)}."
            )
            return None
        if not _HTTP_URL.fullmatch(url):
            self.mismatch("header.0", f"The header's {wanted} needs an http(s) URL.")
            return None
        value: dict[str, Any] = {"type": wanted, "url": url}
        if media is not None and media.filename:
            value["filename"] = media.filename
        return value


def _header_given(value: object) -> Given:
    if value is None or isinstance(value, list | dict):
        return value
    return [value]


def _fill(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1).strip(), match.group(0)), text)


def _text_parameters(names: tuple[str, ...], values: dict[str, str], named: bool) -> list[Any]:
    return [
        {"type": "text", "text": values[name], **({"parameter_name": name} if named else {})}
        for name in names
    ]


def render(shape: Shape, parameters: TemplateParameters | dict[str, Any]) -> Rendered:
    """The filled template, or 422 ``template_params_mismatch`` naming each problem."""
    given = parse_parameters(parameters)
    binder = _Binder(shape)
    named = shape.parameter_format == "NAMED"
    header_given = _header_given(given.header)
    components: list[dict[str, Any]] = []
    normalised: dict[str, Any] = {}
    parts: list[str] = []

    header_values: dict[str, str] = {}
    media: dict[str, Any] | None = None
    if shape.header_format is not None and shape.header_format != "TEXT":
        media = binder.media(header_given)
    else:
        header_values = binder.texts("header", "The header", shape.header, header_given)
    body_values = binder.texts("body", "The body", shape.body, given.body)

    wanted = shape.button_parameters
    button_values = list(given.buttons or [])
    if len(button_values) != len(wanted):
        described = ", ".join(
            f"button {b.index + 1} ({b.type}{' ' + repr(b.text) if b.text else ''})" for b in wanted
        )
        binder.mismatch(
            "buttons",
            f"The buttons take {_plural(len(wanted))}"
            + (f", one each for {described}" if wanted else "")
            + f"; {len(button_values)} given.",
        )
    else:
        for position, (button, value) in enumerate(zip(wanted, button_values, strict=True)):
            if not value.strip() or _BAD_TEXT.search(value):
                binder.mismatch(
                    f"buttons.{position}", f"Button {button.index + 1}'s value is empty."
                )
            elif button.type == "COPY_CODE" and len(value) > MAX_CODE:
                binder.mismatch(
                    f"buttons.{position}", f"A code to copy has at most {MAX_CODE} characters."
                )
    if binder.errors:
        raise Unprocessable(
            " ".join(error.message for error in binder.errors),
            code="template_params_mismatch",
            errors=binder.errors,
        )

    if media is not None:
        link: dict[str, Any] = {"link": media["url"]}
        if "filename" in media:
            link["filename"] = media["filename"]
        components.append(
            {"type": "header", "parameters": [{"type": media["type"], media["type"]: link}]}
        )
        normalised["header"] = [media]
    elif shape.header:
        components.append(
            {"type": "header", "parameters": _text_parameters(shape.header, header_values, named)}
        )
        normalised["header"] = header_values if named else list(header_values.values())
    if shape.header_text:
        parts.append(_fill(shape.header_text, header_values))
    parts.append(_fill(shape.body_text, body_values))
    if shape.body:
        components.append(
            {"type": "body", "parameters": _text_parameters(shape.body, body_values, named)}
        )
        normalised["body"] = body_values if named else list(body_values.values())
    if shape.footer_text:
        parts.append(shape.footer_text)

    values = iter(button_values)
    for button in shape.buttons:
        if button.type == "OTP":
            code = next(iter(body_values.values()), "")
            parameter: dict[str, Any] = {"type": "text", "text": code}
            sub_type = "url"
        elif not button.names:
            continue
        elif button.type == "COPY_CODE":
            parameter = {"type": "coupon_code", "coupon_code": next(values)}
            sub_type = "copy_code"
        else:
            parameter = {"type": "text", "text": next(values)}
            sub_type = "url"
        components.append(
            {
                "type": "button",
                "sub_type": sub_type,
                "index": str(button.index),
                "parameters": [parameter],
            }
        )
    if button_values:
        normalised["buttons"] = button_values
    return Rendered(text="\n\n".join(parts), parameters=normalised, components=components)
