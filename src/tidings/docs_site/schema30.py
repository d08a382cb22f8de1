"""Rewrite one JSON Schema 2020-12 schema (what pydantic 2 emits) as an OpenAPI 3.0 Schema.

OpenAPI 3.0's Schema Object is a fixed subset of JSON Schema draft 4/5 plus ``nullable``,
``discriminator`` and ``example``; its meta-schema rejects every other keyword. So the
conversion rewrites what has a 3.0 spelling and drops the rest:

===============================================  ==========================================
2020-12 (pydantic 2, FastAPI)                    OpenAPI 3.0
===============================================  ==========================================
``anyOf``/``oneOf`` with a ``{"type": "null"}``  the other branches + ``nullable: true``
  branch (one branch left: merged into parent)     (a lone ``$ref`` becomes ``allOf: [$ref]``)
``type: ["string", "null"]``                     ``type: string`` + ``nullable: true``
``type: "null"``                                 ``enum: [null]`` + ``nullable: true``
``$ref`` with sibling keywords                   ``allOf: [{$ref}]`` + the siblings
``const: v``                                     ``enum: [v]``
``examples: [a, ...]``                           ``example: a``
numeric ``exclusiveMinimum: n``                  ``minimum: n`` + ``exclusiveMinimum: true``
``contentEncoding: base64``                      ``format: byte``
``contentMediaType`` (not text/JSON)             ``format: binary``
``prefixItems`` (tuples)                         ``items`` (the one schema or their ``anyOf``)
``patternProperties``                            ``additionalProperties``
``true`` / ``false`` schemas                     ``{}`` / ``{"not": {}}``
``if``/``then``/``else``, ``dependent*``,        dropped (no 3.0 equivalent)
  ``propertyNames``, ``unevaluated*``, ``$defs``,
  ``$id``, ``$comment``, ``contentSchema``, ...
===============================================  ==========================================

The function is pure: it never mutates its argument.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeGuard

_SCHEMA_KEYS = frozenset(
    {
        "$ref", "title", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
        "uniqueItems", "maxProperties", "minProperties", "required", "enum", "type", "not",
        "allOf", "oneOf", "anyOf", "items", "properties", "additionalProperties",
        "description", "format", "default", "nullable", "discriminator", "readOnly",
        "writeOnly", "xml", "externalDocs", "example", "deprecated",
    }
)  # fmt: skip
# Keywords that describe rather than constrain: when a single remaining anyOf branch is
# merged into its parent, the parent's (the field's) annotations win without changing
# what validates.
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "example", "deprecated", "readOnly", "writeOnly"}
)
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
_COMBINATORS = ("allOf", "anyOf", "oneOf")


def convert_schema(schema: object) -> dict[str, Any]:
    """The OpenAPI 3.0 form of one 2020-12 schema (and of everything nested in it)."""
    if schema is False:
        return {"not": {}}
    if not isinstance(schema, Mapping):  # `true`, or nothing a schema can be
        return {}
    s: dict[str, Any] = dict(schema)
    nullable = s.pop("nullable", False) is True
    stripped = _strip_null_branches(s)
    nullable = _convert_type(s) or stripped or nullable
    if "const" in s:
        s["enum"] = [s.pop("const")]
    if isinstance(s.get("enum"), list) and None in s["enum"]:
        nullable = True
    _fold_prefix_items(s)
    _fold_pattern_properties(s)
    _convert_children(s)
    _convert_bounds(s)
    _convert_examples(s)
    _convert_content(s)
    s = {k: v for k, v in s.items() if k in _SCHEMA_KEYS or k.startswith("x-")}
    if s.get("type") == "array" and "items" not in s:
        s["items"] = {}  # 3.0 requires items on every array
    if "required" in s and not s["required"]:
        del s["required"]  # 3.0 requires a non-empty list
    if stripped:
        s = _collapse_single_branch(s)
    if s.get("default", 0) is None:
        # pydantic allows `x: int = None`; the value really can be null then, and the
        # 3.0 validator checks defaults against the schema.
        nullable = True
    if nullable:
        s["nullable"] = True
        if isinstance(s.get("enum"), list) and None not in s["enum"]:
            # In 3.0 an enum restricts nullable too: null must be listed to be allowed.
            s["enum"] = [*s["enum"], None]
    return _wrap_ref_with_siblings(s)


def _is_null_schema(branch: object) -> bool:
    if not isinstance(branch, Mapping):
        return False
    if branch.get("type") == "null":
        return True
    return branch.get("const", 0) is None or branch.get("enum") == [None]


def _strip_null_branches(s: dict[str, Any]) -> bool:
    stripped = False
    for key in ("anyOf", "oneOf"):
        branches = s.get(key)
        if not isinstance(branches, list):
            continue
        kept = [b for b in branches if not _is_null_schema(b)]
        if len(kept) != len(branches):
            stripped = True
            if kept:
                s[key] = kept
            else:
                del s[key]
    return stripped


def _convert_type(s: dict[str, Any]) -> bool:
    """Rewrite ``type``; answer whether it admitted null."""
    t = s.get("type")
    if isinstance(t, list):
        types = [x for x in t if x in _TYPES]
        if len(types) == 1:
            s["type"] = types[0]
        else:
            del s["type"]
            if types:
                branches = [{"type": x} for x in types]
                if "anyOf" in s:
                    s["allOf"] = [*s.get("allOf", []), {"anyOf": branches}]
                else:
                    s["anyOf"] = branches
        return "null" in t
    if t == "null":
        del s["type"]
        if "enum" not in s and "const" not in s:
            s["enum"] = [None]
        return True
    if t is not None and t not in _TYPES:
        del s["type"]
    return False


def _distinct(schemas: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for schema in schemas:
        seen.setdefault(json.dumps(schema, sort_keys=True, default=str), schema)
    return list(seen.values())


def _one_or_any_of(schemas: list[Any]) -> Any:
    distinct = _distinct(schemas)
    return distinct[0] if len(distinct) == 1 else {"anyOf": distinct}


def _fold_prefix_items(s: dict[str, Any]) -> None:
    # A tuple has no 3.0 spelling; an array of "any of the positions" is the closest
    # honest description (min/maxItems, which pydantic emits, keep the length).
    prefix = s.pop("prefixItems", None)
    if isinstance(s.get("items"), list):  # draft-4 tuple spelling
        prefix, s["items"] = s["items"], False
    if not isinstance(prefix, list):
        return
    extra = s.pop("items", False)
    candidates = [*prefix]
    if extra is True:
        candidates = [{}]
    elif isinstance(extra, Mapping):
        candidates.append(extra)
    s["items"] = _one_or_any_of(candidates) if candidates else {}


def _fold_pattern_properties(s: dict[str, Any]) -> None:
    patterns = s.pop("patternProperties", None)
    if not isinstance(patterns, Mapping) or not patterns:
        return
    additional = s.get("additionalProperties")
    if additional is True:
        return
    candidates = list(patterns.values())
    if isinstance(additional, Mapping):
        candidates.append(additional)
    s["additionalProperties"] = _one_or_any_of(candidates)


def _convert_children(s: dict[str, Any]) -> None:
    if isinstance(s.get("properties"), Mapping):
        s["properties"] = {name: convert_schema(v) for name, v in s["properties"].items()}
    for key in _COMBINATORS:
        if isinstance(s.get(key), list):
            s[key] = [convert_schema(branch) for branch in s[key]]
    for key in ("items", "not"):
        if key in s:
            s[key] = convert_schema(s[key])
    if isinstance(s.get("additionalProperties"), Mapping):
        s["additionalProperties"] = convert_schema(s["additionalProperties"])


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _convert_bounds(s: dict[str, Any]) -> None:
    for exclusive, inclusive, lower in (
        ("exclusiveMinimum", "minimum", True),
        ("exclusiveMaximum", "maximum", False),
    ):
        value = s.get(exclusive)
        if not _is_number(value):
            continue  # absent, or already 3.0's boolean form
        bound = s.get(inclusive)
        if _is_number(bound) and (bound > value if lower else bound < value):
            del s[exclusive]  # the inclusive bound is already the stricter one
            continue
        s[inclusive] = value
        s[exclusive] = True


def _convert_examples(s: dict[str, Any]) -> None:
    examples = s.pop("examples", None)
    if isinstance(examples, list) and examples and "example" not in s:
        s["example"] = examples[0]


def _is_textual(media_type: str) -> bool:
    essence = media_type.split(";", 1)[0].strip().lower()
    return essence.startswith("text/") or essence.endswith(("json", "xml"))


def _convert_content(s: dict[str, Any]) -> None:
    encoding = s.pop("contentEncoding", None)
    media_type = s.pop("contentMediaType", None)
    s.pop("contentSchema", None)
    if "format" in s:
        return
    if encoding == "base64":
        s["format"] = "byte"
    elif encoding is None and isinstance(media_type, str) and not _is_textual(media_type):
        s["format"] = "binary"


def _merge_into(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    clash = (set(parent) & set(child)) - _ANNOTATIONS
    if set(child) == {"$ref"} or clash:
        return {**parent, "allOf": [child, *parent.get("allOf", [])]}
    return {**child, **parent}


def _collapse_single_branch(s: dict[str, Any]) -> dict[str, Any]:
    # `X | None` arrives as anyOf [X, null]; with null gone, X alone belongs in the
    # parent so that `nullable` sits next to X's type, where 3.0 tools look for it.
    for key in ("anyOf", "oneOf"):
        branches = s.get(key)
        if isinstance(branches, list) and len(branches) == 1 and "discriminator" not in s:
            rest = {k: v for k, v in s.items() if k != key}
            return _merge_into(rest, branches[0])
    return s


def _wrap_ref_with_siblings(s: dict[str, Any]) -> dict[str, Any]:
    # A 3.0 Reference Object ignores its siblings; allOf keeps them meaningful.
    if "$ref" not in s or len(s) == 1:
        return s
    rest = {k: v for k, v in s.items() if k != "$ref"}
    return {**rest, "allOf": [{"$ref": s["$ref"]}, *rest.get("allOf", [])]}
