"""What every webhook body must meet before an adapter looks inside it, for every provider.

A webhook is the one door strangers can push bytes through, so nothing in a body may cost more than its
size says: nesting is measured on the raw bytes before the JSON parser (which recurses) sees them,
text must be UTF-8 that can be encoded again (a lone surrogate escape such as ``"\\ud800"`` parses
but breaks every later ``encode``), numbers must be finite (``NaN`` and ``1e999`` are not JSON), and one
body may carry only a few events. Each refusal is a ``WebhookError`` (4xx) with a short reason.

The service applies the configured limits (``webhook.max_depth``, ``webhook.max_events``); an adapter
parsing a body on its own still never parses deeper than ``DEPTH_CEILING``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from array import array
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NoReturn

import orjson

from flowengine.errors import WebhookError
from flowengine.plainjson import may_hold_long_integer

MAX_DEPTH = 32  # default of webhook.max_depth: the platforms' bodies nest 5 levels at most
DEPTH_CEILING = 128  # the most anything may be set to: far below the interpreter's recursion limit
MAX_EVENTS = 10  # default of webhook.max_events

# A JSON string, escapes included; one left open runs to the end. Possessive, so each byte is looked at
# once whatever the input (no backtracking, no restart at every quote).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# '[' and '{' -> +1, ']' and '}' -> -1 (as a signed byte)
_STEPS = bytes.maketrans(b"[{]}", bytes([1, 1, 255, 255]))
# Where a surrogate may hide: only an escape can carry one past strict UTF-8 decoding.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    max_depth: int = MAX_DEPTH
    max_events: int = MAX_EVENTS


def nesting_depth(body: bytes) -> int:
    """How deep arrays and objects nest in ``body`` (exact for valid JSON), without parsing it."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(array("b", brackets.translate(_STEPS))), default=0)


# The body that last passed ``check_depth`` and the limit it passed. The service checks every webhook's
# body against its ``max_depth``, then the adapter's ``load_json`` checks the same body against
# ``DEPTH_CEILING``; a body known to pass a limit passes any higher one without its bytes being counted
# again (two passes over the body, ~1 % of a whole call). The same object only: bytes never change.
_passed: list[tuple[bytes, int]] = [(b"", sys.maxsize)]


def check_depth(body: bytes, max_depth: int) -> None:
    """``WebhookError`` (400) if arrays and objects in ``body`` nest deeper than ``max_depth``."""
    last, limit = _passed[0]
    if body is last and max_depth >= limit:
        return
    # cannot be deeper than it has brackets: no scan needed
    if body.count(b"[") + body.count(b"{") > max_depth and nesting_depth(body) > max_depth:
        raise WebhookError(f"the JSON nests deeper than {max_depth} levels")
    _passed[0] = (body, max_depth)


def check_events(count: int, max_events: int) -> None:
    """``WebhookError`` (413) if one body carries more events than ``max_events``."""
    if count > max_events:
        raise WebhookError(f"{count} events in one webhook body; at most {max_events} are taken", status=413)


def load_json(body: bytes, what: str, max_depth: int = DEPTH_CEILING) -> Any:
    """The JSON value in ``body``; ``WebhookError`` (400) naming ``what`` if it is not usable JSON.

    orjson reads it when it can: it refuses what this refuses (bytes that are not UTF-8, NaN, numbers out
    of range, lone surrogates), at a fraction of the cost. A body it refuses, or one with a long integer,
    goes the standard library's way below, whose refusals say precisely what is wrong."""
    check_depth(body, max_depth)
    if not may_hold_long_integer(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookError(f"{what} is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        value = json.loads(text, parse_constant=not_a_number, parse_float=finite_float)
    except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
        raise WebhookError(f"{what} is not valid JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(body):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise WebhookError(f"{what} holds invalid Unicode (a lone surrogate escape)") from None
    return value


# The standard library's JSON hooks for reading strictly (webhook bodies, the write API's): NaN and
# Infinity are refused, and so are numbers out of range (1e999), so a stored session holds finite ones only.
def not_a_number(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is out of range")
    return number
