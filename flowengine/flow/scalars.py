"""Plain scalars under the YAML 1.2 core schema: only ``true``/``false`` are booleans (``on``, ``yes``,
``no`` and ``off`` stay strings), ``~``/``null`` and the empty scalar are null, and numbers are read as
YAML 1.2 writes them."""

from __future__ import annotations

import math
import re
import sys
from typing import Any

_NULL = re.compile(r"(?:~|null|Null|NULL|)\Z")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+\Z|0o[0-7]+\Z|0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
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
