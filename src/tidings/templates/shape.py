"""Which parameters a template takes, read from its components.

Placeholders are WhatsApp's: positional ``{{1}}``, ``{{2}}``... or named
``{{first_name}}`` (lowercase letters, digits and underscores). A TEXT header and
the body take their placeholders; a media header (IMAGE, DOCUMENT, VIDEO) takes
one parameter, the media to show; a URL button with a ``{{1}}`` suffix takes the
suffix; a COPY_CODE button takes the code to copy. The footer and the other
buttons take none; an OTP button copies the body's code (see
:mod:`tidings.templates.rendering`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
POSITIONAL = re.compile(r"[1-9][0-9]*")
NAMED = re.compile(r"[a-z][a-z0-9_]*")
MEDIA_FORMATS = ("IMAGE", "DOCUMENT", "VIDEO")


def placeholders(text: str) -> list[str]:
    """Every placeholder of ``text``, in order, as written between the braces."""
    return [match.group(1).strip() for match in PLACEHOLDER.finditer(text)]


def is_positional(name: str) -> bool:
    return POSITIONAL.fullmatch(name) is not None


def distinct_names(text: str) -> tuple[str, ...]:
    """The parameters ``text`` takes: positional ones by number, named ones in the
    order they first appear (a placeholder used twice is one parameter)."""
    names = list(dict.fromkeys(placeholders(text)))
    if names and all(is_positional(name) for name in names):
        names.sort(key=int)
    return tuple(names)


@dataclass(frozen=True, slots=True)
class ButtonShape:
    index: int  # the button's position among all buttons, as WhatsApp counts them
    type: str
    text: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Shape:
    parameter_format: str  # POSITIONAL or NAMED
    header_format: str | None
    header_text: str | None
    header: tuple[str, ...]
    body_text: str
    body: tuple[str, ...]
    footer_text: str | None
    buttons: tuple[ButtonShape, ...]

    @property
    def button_parameters(self) -> tuple[ButtonShape, ...]:
        """The buttons that take a parameter, in order: one value each at send time."""
        return tuple(button for button in self.buttons if button.names)


def button_names(button: dict[str, Any]) -> tuple[str, ...]:
    kind = str(button.get("type", ""))
    if kind == "URL":
        return distinct_names(str(button.get("url") or ""))
    if kind == "COPY_CODE":
        return ("coupon_code",)
    return ()


def component_names(component: dict[str, Any]) -> tuple[str, ...]:
    kind = component.get("type")
    if kind == "HEADER":
        header_format = str(component.get("format") or "TEXT")
        if header_format in MEDIA_FORMATS:
            return (header_format.lower(),)
        return distinct_names(str(component.get("text") or ""))
    if kind == "BODY":
        return distinct_names(str(component.get("text") or ""))
    if kind == "BUTTONS":
        return tuple(
            name for button in component.get("buttons") or [] for name in button_names(button)
        )
    return ()


def parameter_format_of(components: list[dict[str, Any]]) -> str:
    for component in components:
        if component.get("type") in ("HEADER", "BODY"):
            text = str(component.get("text") or "")
            if any(not is_positional(name) for name in placeholders(text)):
                return "NAMED"
    return "POSITIONAL"


def shape_of(components: list[dict[str, Any]]) -> Shape:
    """The shape of stored (already validated) components."""
    by_type = {str(component.get("type")): component for component in components}
    header = by_type.get("HEADER")
    footer = by_type.get("FOOTER")
    body = by_type.get("BODY", {})
    buttons = tuple(
        ButtonShape(
            index=index,
            type=str(button.get("type")),
            text=str(button.get("text") or ""),
            names=button_names(button),
        )
        for index, button in enumerate(by_type.get("BUTTONS", {}).get("buttons") or [])
    )
    return Shape(
        parameter_format=parameter_format_of(components),
        header_format=str(header.get("format") or "TEXT") if header else None,
        header_text=str(header["text"]) if header and header.get("text") else None,
        header=component_names(header) if header else (),
        body_text=str(body.get("text") or ""),
        body=component_names(body) if body else (),
        footer_text=str(footer["text"]) if footer and footer.get("text") else None,
        buttons=buttons,
    )
