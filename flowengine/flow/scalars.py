"""Plain scalars under the YAML 1.2 core schema: only ``true``/``false`` are booleans (``on``, ``yes``,
``no`` and ``off`` stay strings), ``~``/``null`` and the empty scalar are null, and numbers are read as
YAML 1.2 writes them. A scalar written with a tag (``!!int 5``) must be what its tag says; collections take
only the plain tags."""

from __future__ import annotations

import math
import re
import sys
from typing import Any

from flowengine.flow.diagnostics import quote

_NULL = re.compile(r"(?:~|null|Null|NULL|)\Z")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+\Z|0o[0-7]+\Z|0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_TAG = "tag:yaml.org,2002:"
_TAG_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool, "null": type(None)}
_SPECIAL_FLOATS = {
    **{
        sign + spelling: math.copysign(math.inf, -1.0 if sign == "-" else 1.0)
        for sign in ("", "+", "-")
        for spelling in (".inf", ".Inf", ".INF")
    },
    **{spelling: math.nan for spelling in (".nan", ".NaN", ".NAN")},
}


# Every non-text reading starts with one of these (null, a boolean, a number, .inf/.nan): text starting
# otherwise, most of a flow's scalars, is returned without trying the patterns.
_NOT_TEXT_STARTS = frozenset("~nNtTfF+-.0123456789")


class NumberTooLong(ValueError):
    """A plain integer longer than Python reads (``sys.get_int_max_str_digits``, a guard against quadratic
    conversions): the reader reports it where it stands instead of failing."""


def resolve_plain(text: str) -> Any:
    """A plain scalar under the YAML 1.2 core schema."""
    if text and text[0] not in _NOT_TEXT_STARTS:
        return text
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        try:
            if text.startswith(("0o", "0x")):
                return int(text[2:], 8 if text[1] == "o" else 16)
            return int(text, 10)
        except ValueError as exc:  # the pattern matched: only the digit limit refuses it
            limit = sys.get_int_max_str_digits()
            raise NumberTooLong(f"a number of {len(text):,} characters: flows take integers of at most"
                                f" {limit:,} digits") from exc
    if _FLOAT.match(text):
        return float(text)
    return _SPECIAL_FLOATS.get(text, text)


def resolve_tagged(tag: str, text: str) -> tuple[Any, str | None]:
    """A scalar written with a tag other than ``!``: its value, or its text and why the tag is refused."""
    kind = tag[len(_TAG) :] if tag.startswith(_TAG) else ""
    expected = _TAG_TYPES.get(kind)
    if expected is None:
        return text, f"unsupported tag {quote(tag)}; flows use plain YAML values"
    value: Any = text if kind == "str" else resolve_plain(text)
    if expected is float and type(value) is int:
        return float(value), None
    if type(value) is not expected:
        return text, f"{quote(text)} is not a valid {kind}"
    return value, None


def collection_tag_problem(tag: str | None) -> str | None:
    """Why a mapping's or a list's tag is refused, or None for the plain ones."""
    if tag not in (None, "!", _TAG + "map", _TAG + "seq"):
        return f"unsupported tag {quote(tag)}; flows use plain YAML values"
    return None


def key_text(value: Any) -> str:
    """The text of a mapping key that is no string scalar (an alias to a number, null or a boolean)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
