"""The placeholder renderer of bulk content: ``Hello {{name}}``.

Deliberately not a template engine: a placeholder is a variable name and
nothing else (no expressions, filters, attribute access or loops), so content
written by one tenant cannot run anything, read anything, or loop forever.
A placeholder whose variable a recipient lacks rejects that recipient rather
than sending a message with a gap. Inside email HTML every value is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")


class MissingVariable(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True, slots=True)
class Template:
    """Content split once into literal text and placeholders, rendered per recipient."""

    # Even positions are literal text, odd ones variable names.
    parts: tuple[str, ...]
    escape: Callable[[str], str] | None = None

    @classmethod
    def compile(cls, text: str, *, html_escape: bool = False) -> Template:
        return cls(tuple(PLACEHOLDER.split(text)), html.escape if html_escape else None)

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(self.parts[1::2])

    @property
    def is_static(self) -> bool:
        return len(self.parts) == 1

    def render(self, variables: Mapping[str, str]) -> str:
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        out = [parts[0]]
        escape = self.escape
        for index in range(1, len(parts), 2):
            name = parts[index]
            value = variables.get(name)
            if value is None:
                raise MissingVariable(name)
            out.append(escape(value) if escape is not None else value)
            out.append(parts[index + 1])
        return "".join(out)
