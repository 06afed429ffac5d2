"""A flow's version: a content hash of its resolved source.

The resolved source is the flow's document with every ``include:`` merged in, as JSON (YAML reads it
back, and it holds what the flow means, not how its files are laid out): comments, formatting and the
``scenarios:`` section do not change a version; any change to what runs does. A session keeps the version
it started on, and a store keeps each version's resolved source under its hash, so any instance can
run a session on its own version even after the files changed (``server.catalog``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import orjson

# Keys of a flow file that never reach a session: how the file is put together, and its tests.
_NOT_RUN = ("include", "scenarios")
HASH_CHARS = 16  # hex digits of SHA-256 kept: 64 bits, plenty for the versions of one deployment


# orjson does not write every float as Python's ``repr`` does (6.103515625e-05 as 0.00006103515625), so
# a document holding one goes the standard library's way. Every float orjson writes has a digit followed
# by a point or an exponent, which no integer has: found by mapping digits to "0", [.eE] to "e" and
# the rest to "." (text that only looks like it, in a string, costs just that time).
_FLOAT_MARK = bytes(ord("0") if chr(b).isdigit() and b < 128 else ord("e") if chr(b) in ".eE" else ord(".")
                    for b in range(256))


def resolved_source(doc: Mapping[str, Any]) -> str:
    """The merged document as indented JSON, keys in their written order (order can matter: handlers).

    The text is ``json.dumps(indent=1, ensure_ascii=False, allow_nan=False)``'s, byte for byte (the
    version is its hash), and raises ``ValueError`` for NaN or an infinity as that does. Written by orjson
    where it gives the same: the standard library's indenting encoder is pure Python, and was a fifteenth
    of validating a 1,000-state flow (issue 15)."""
    kept = _kept(doc)
    fast = _indented_by_orjson(kept)
    if fast is not None:
        return fast
    return json.dumps(kept, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def check_writable(doc: Mapping[str, Any]) -> None:
    """Raises ``ValueError`` where ``resolved_source(doc)`` would (a NaN or an infinity), without writing
    the indented text: orjson's compact text in a millisecond, and the standard library's compact C
    encoder only when that holds a null (orjson writes NaN and the infinities as null)."""
    kept = _kept(doc)
    try:
        raw = orjson.dumps(kept)
    except TypeError:  # what orjson refuses (an integer beyond 64 bits, ...): the standard library decides
        raw = b"null"
    if b"null" in raw:
        json.dumps(kept, allow_nan=False)


def _kept(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if key not in _NOT_RUN}


def _indented_by_orjson(kept: Mapping[str, Any]) -> str | None:
    """orjson's two-space indentation made one-space; None where orjson's text would differ."""
    try:
        raw = orjson.dumps(kept, option=orjson.OPT_INDENT_2)
    except TypeError:  # an integer beyond 64 bits, a lone surrogate, a key that is not a string
        return None
    if b"0e" in raw.translate(_FLOAT_MARK):
        return None
    if b"null" in raw:  # orjson writes NaN and the infinities as null, where json refuses them
        json.dumps(kept, allow_nan=False)  # raises ValueError for those (its compact encoder is in C)
    # Every newline is the indentation's (orjson escapes those in strings, and every control
    # character), so each line's two spaces a level become one, deepest level first; \x01 marks the
    # levels done, so a shallower level's pattern cannot match them again.
    deepest = 0
    while b"\n" + b"  " * (deepest + 1) in raw:
        deepest += 1
    for level in range(deepest, 0, -1):
        raw = raw.replace(b"\n" + b"  " * level, b"\n" + b"\x01" * level)
    return raw.replace(b"\x01", b" ").decode() + "\n"


def version_of(source: str) -> str:
    """The version (hash) of a resolved source."""
    return hashlib.sha256(source.encode()).hexdigest()[:HASH_CHARS]
