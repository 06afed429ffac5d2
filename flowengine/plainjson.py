"""JSON read and written fast with orjson, where it gives exactly what the standard library would.

orjson is several times faster on a session's document and a webhook's body, and it is as strict as our
readers are (UTF-8 only, no NaN, no lone surrogates, numbers in range). Where it differs, the standard
library does the work: orjson keeps integers to 64 bits (reading a longer one gives a float, writing one
fails), and it writes NaN as null where ``json.dumps(allow_nan=False)`` refuses it, so ``write_fast`` is
for values already known to be plain JSON (finite numbers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

# A run of this many digits may be an integer beyond 64 bits; shorter runs always fit. Found by mapping
# every digit to "0" and everything else to "." and looking for the run: a tenth of what a regular
# expression took (which tried a match at every digit), and less than orjson's parse itself.
_LONG_RUN = b"0" * 19
_DIGITS_ONLY = bytes(ord("0") if chr(byte).isdigit() and byte < 128 else ord(".") for byte in range(256))


def may_hold_long_integer(doc: str | bytes) -> bool:
    """True when ``doc`` has a run of digits orjson might not read as the exact integer."""
    raw = doc if isinstance(doc, bytes) else doc.encode("utf-8", "surrogatepass")
    return _LONG_RUN in raw.translate(_DIGITS_ONLY)


def load_json(doc: str | bytes) -> Any:
    """``json.loads(doc)``, faster; raises ``ValueError`` (a ``json.JSONDecodeError``) as it does."""
    if may_hold_long_integer(doc):
        return json.loads(doc)
    return orjson.loads(doc)


def write_fast(value: Any) -> str | None:
    """Compact JSON text of ``value``, which must hold finite numbers only (NaN would become null); None
    when orjson refuses it (an integer beyond 64 bits, a lone surrogate, a key that is not a string),
    for the caller's strict way to say why."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return None


def json_place(path: Iterable[str | int]) -> str:
    """A place in a JSON document as messages write it: ``entries[0].event.data`` ("" for the whole)."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")
