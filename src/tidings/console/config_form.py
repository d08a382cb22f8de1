"""A provider kind's config as an HTML form, and a posted form back as a config.

The fields come from the kind's pydantic model (:attr:`KindSpec.config`), never from
a list kept here: each field's wire name (camelCase, as the API takes it), its input
(text, number, a checkbox for a bool, a choice for a ``Literal``, a password input
for a ``SecretStr``), whether it is required, its default, its constraints and its
description. Adding a field to a kind's model adds it to the console.

Secrets are write-only: a form never carries a stored secret back to the browser,
and a secret left empty is left out of the config sent to the service, which keeps
the stored one (on an edit) or says it is missing (on a new provider).

Nothing is validated here: the service validates with the same model and its field
errors (``config.<field>``) are shown next to the inputs.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

InputKind = Literal["text", "integer", "decimal", "checkbox", "choice", "secret"]
FIELD_PREFIX = "config."


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One input of a kind's config form."""

    name: str  # the wire name, as the API takes it (``systemId``)
    label: str
    input: InputKind
    required: bool
    optional: bool  # None is a valid value (an empty input clears it)
    default: Any
    choices: tuple[str, ...]
    hint: str  # constraints and default, in words
    description: str | None

    @property
    def form_name(self) -> str:
        """The input's ``name``: prefixed, so it never meets the form's own fields."""
        return FIELD_PREFIX + self.name

    @property
    def input_id(self) -> str:
        return "cfg-" + self.name

    @property
    def is_secret(self) -> bool:
        return self.input == "secret"

    def shown(self, stored: Mapping[str, Any] | None) -> str:
        """The input's value: the stored one (an edit) or the default (a new one);
        always empty for a secret."""
        if self.is_secret:
            return ""
        if stored is not None and self.name in stored:
            value = stored[self.name]
        else:
            value = None if self.default is PydanticUndefined else self.default
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else ""
        return str(value)


def _label(python_name: str) -> str:
    return python_name.replace("_", " ").capitalize()


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``| None``, and whether None was allowed."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _input_of(annotation: Any) -> tuple[InputKind, tuple[str, ...]]:
    if annotation is SecretStr:
        return "secret", ()
    if annotation is bool:
        return "checkbox", ()
    if annotation is int:
        return "integer", ()
    if annotation is float:
        return "decimal", ()
    if get_origin(annotation) is Literal:
        return "choice", tuple(str(arg) for arg in get_args(annotation))
    return "text", ()


def _hint(info: FieldInfo, kind: InputKind) -> str:
    parts: list[str] = []
    for rule in info.metadata:
        if isinstance(rule, Ge):
            parts.append(f"at least {rule.ge}")
        elif isinstance(rule, Gt):
            parts.append(f"more than {rule.gt}")
        elif isinstance(rule, Le):
            parts.append(f"at most {rule.le}")
        elif isinstance(rule, Lt):
            parts.append(f"less than {rule.lt}")
        elif isinstance(rule, MaxLen):
            parts.append(f"up to {rule.max_length} characters")
        elif isinstance(rule, MinLen) and rule.min_length > 1:
            parts.append(f"at least {rule.min_length} characters")
    default = info.default
    if default is not PydanticUndefined and default not in (None, "") and kind != "checkbox":
        parts.append(f"default {default}")
    return ", ".join(parts)


def kind_notes(model: type[BaseModel]) -> str | None:
    """What the kind's config model says about itself (its own docstring, not one it
    inherits), as plain text."""
    doc = model.__dict__.get("__doc__")
    if not doc:
        return None
    return " ".join(doc.replace("``", "").split())


def config_fields(model: type[BaseModel]) -> list[ConfigField]:
    """The inputs of ``model``'s form, in the model's order."""
    fields = []
    for python_name, info in model.model_fields.items():
        annotation, optional = _unwrap(info.annotation)
        kind, choices = _input_of(annotation)
        fields.append(
            ConfigField(
                name=info.alias or python_name,
                label=_label(python_name),
                input=kind,
                required=info.is_required(),
                optional=optional,
                default=info.default,
                choices=choices,
                hint=_hint(info, kind),
                description=info.description,
            )
        )
    return fields


def config_from_form(
    fields: list[ConfigField], form: Mapping[str, str], *, editing: bool
) -> dict[str, Any]:
    """The config a form posted, for the service to validate.

    An empty input means: a secret's stored value (left out), ``None`` for a field
    that may be empty, the default for one that has it (left out of a new provider;
    sent on an edit, where leaving it out would keep the stored value), else the
    empty text (the service says it is missing or wrong).
    """
    config: dict[str, Any] = {}
    for field in fields:
        if field.input == "checkbox":
            config[field.name] = field.form_name in form
            continue
        raw = form.get(field.form_name, "")
        value = raw if field.is_secret else raw.strip()
        if value:
            config[field.name] = value
        elif field.is_secret:
            continue
        elif field.optional:
            config[field.name] = None
        elif field.default is not PydanticUndefined:
            if editing:
                config[field.name] = field.default
        elif field.required:
            config[field.name] = ""
    return config


def field_errors(errors: list[Any], *, prefix: str = FIELD_PREFIX) -> dict[str, str]:
    """The service's field errors, by the name the form shows them under: a config
    field by its wire name (``config.port`` → ``port``), others as they are."""
    shown: dict[str, str] = {}
    for error in errors:
        name = error.field[len(prefix) :] if error.field.startswith(prefix) else error.field
        shown.setdefault(name, error.message)
    return shown
