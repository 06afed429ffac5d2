"""Phone numbers out of log lines: ``+447911123489`` is logged as ``+4479******89``.

Numbers reach the logs from many places (a refused webhook's reason, a platform's error text, a
traceback), so the masking is a ``logging.Filter`` on the service's log handlers rather than a rule at
each call site. What counts as a number: a run of 7 to 15 digits (E.164's longest), with or without a
leading ``+``, that is not part of a longer word, id or decimal (``1767225600.5``, ``a1b2c3d4e5f6``,
``12345678-90ab`` stay as they are). The first 4 digits (the country and area) and the last 2 are kept.
"""

from __future__ import annotations

import logging
import re

# Not inside a word, id or decimal: no letter, digit, "-", "+" or "<digit>." before it, and no letter,
# digit, "-" or ".<digit>" after it (a full stop ending a sentence is fine). Written to begin with its
# first character ("+" or a digit), the lookbehinds looking past it (".": that character), so the
# engine skips straight to the "+"s and digits of a text instead of trying both lookbehinds at every
# position: half the time on a log line. The same matches as the plain statement of the rule,
# ``(?<![\w+-])(?<!\d\.)(\+?)(\d{7,15})(?![\w-])(?!\.\d)`` (``test_masking`` compares them); no groups:
# ``number_parts`` splits a match.
NUMBER = re.compile(r"[+\d](?<![\w+-].)(?<!\d\..)(?:(?<=\+)\d{7,15}|(?<!\+)\d{6,14})(?![\w-])(?!\.\d)")
KEEP_HEAD, KEEP_TAIL = 4, 2
# An ASCII text's characters as what the start of a number needs: "0" a digit, "a" what may not come
# before one (a letter, "_", "-"), " " anything else. A number starts after a " " (or at the start) with
# seven digits or more, so a text without " 0000000" in that view (after a " " put first) has none; most
# log lines have none, and this costs a tenth of ``NUMBER``'s scan (its "\d" is a Unicode lookup at every
# character). Non-ASCII text has other digits: ``NUMBER`` reads it all.
_STARTS = bytes(
    ord("0") if chr(byte).isdigit() else ord("a") if chr(byte).isalpha() or chr(byte) in "_-" else ord(" ")
    for byte in range(128)
).ljust(256, b" ")
_START_OF_NUMBER = b" " + b"0" * 7


def mask_number(digits: str) -> str:
    """``447911123489`` -> ``4479******89``."""
    hidden = len(digits) - KEEP_HEAD - KEEP_TAIL
    return digits[:KEEP_HEAD] + "*" * hidden + digits[-KEEP_TAIL:]


def number_parts(match: re.Match[str]) -> tuple[str, str]:
    """A ``NUMBER`` match's leading ``+`` (or "") and its digits."""
    found = match[0]
    return ("+", found[1:]) if found[0] == "+" else ("", found)


def mask_numbers(text: str) -> str:
    """``text`` with every phone number in it masked."""
    if text.isascii() and _START_OF_NUMBER not in b" " + text.encode().translate(_STARTS):
        return text
    return NUMBER.sub(_masked, text)


def _masked(match: re.Match[str]) -> str:
    plus, digits = number_parts(match)
    return plus + mask_number(digits)


class NumberMask(logging.Filter):
    """Masks phone numbers in a record's message and in its traceback, once, before any formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_numbers(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_numbers(record.exc_text)
        return True


def mask_handlers(logger: logging.Logger | None = None) -> None:
    """Put a ``NumberMask`` on every handler of ``logger`` (the root by default) that has none."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, NumberMask) for f in handler.filters):
            handler.addFilter(NumberMask())
