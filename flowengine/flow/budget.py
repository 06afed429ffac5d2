"""Budgets on the raw text, checked before any YAML library reads it.

Hostile input (``[[[[…`` a hundred thousand deep, thousands of aliases) must get flowengine's own
diagnostic, at its line:col, whatever the installed YAML library does: libyaml's scanner, for one,
buffers a whole run of flow openers looking for a simple key and, since PyYAML 6.0.4, stops at its own
nesting limit before our event builder sees a single event. So this module over-estimates, with a small
tokenizer, how deep flow collections nest and how many aliases the text holds, and stops the load when
either is over budget. The event builder (``source``) keeps the exact checks: block nesting and the
node budget counting every alias expansion.

The estimate never misses a real opener outside quotes and comments; it may count a ``[`` in unquoted
text as one (``say: press [1`` unbalanced), which only matters after ``MAX_DEPTH`` of them.
"""

from __future__ import annotations

import re

MAX_DEPTH = 64  # collections inside collections; a flow needs fewer than 10
MAX_ALIASES = 10_000  # ``*name`` references in one document
RULE = "limits"
TOO_DEEP = f"the document is nested more than {MAX_DEPTH} levels deep"

# Openers, quotes and aliases count where a YAML token may start: at a line start, after white space
# or after a flow indicator; openers glued to text (``x[``, ``a:[``) are text. Closers count anywhere
# outside quotes and comments. The pattern starts with the class of every token's first character and
# each alternative looks behind at it (and further back), so the regular expression engine skips plain
# text in one C loop instead of trying eight alternatives at every character (issue 15: this pass was
# a sixth, then a twelfth of validating a 1,000-state flow); quoted text is read a run at a time (not a
# character at a time through an alternation). A run of openers glued to text is text
# (``glued``), but text after a closing quote is not (``"a"[[``: the second opener counts) nor an
# alias's name (``*a[[``: ``after`` holds the run, whose openers count from the second on).
_TOKEN = re.compile(
    r"""
    [#|>"'*\[\]{}]
    (?:
        (?<=\#)(?<!\S\#)(?P<comment>[^\n]*)
       |(?<=[|>])(?<!\S[|>])(?P<block>[0-9+-]*[ \t]*(?:\#[^\n]*)?$)
       |(?<=")(?<![^\s\[{,]")(?P<dq>[^"\\]*(?:\\.[^"\\]*)*"?)
       |(?<=')(?<![^\s\[{,]')(?P<sq>[^']*(?:''[^']*)*'?)
       |(?<=\*)(?<![^\s\[{,]\*)(?P<alias>[^\s,\[\]{}]+(?P<after>[\[{]*))
       |(?<=[\[{])(?<![^\s\[{,][\[{])(?P<open>)
       |(?<=[\[{])(?<=[^\s\[\]{},"'][\[{])(?P<glued>[\[{]*)
       |(?<=[\]}])(?P<close>)
    )
    """,
    re.MULTILINE | re.VERBOSE,
)
_INDENT = re.compile(r"[ ]*")


def over_budget(text: str) -> tuple[int, int, str] | None:
    """``(line, col, message)`` where the text first goes over a budget (1-based), else None."""
    depth = aliases = 0
    pos: int | None = 0
    while pos is not None:
        start, pos = pos, None
        for match in _TOKEN.finditer(text, start):
            kind = match.lastgroup
            if kind == "open":
                depth += 1
                if depth > MAX_DEPTH:
                    return (*_spot(text, match.start()), TOO_DEEP)
            elif kind == "close":
                depth = max(depth - 1, 0)
            elif kind == "alias":
                aliases += 1
                if aliases > MAX_ALIASES:
                    return (*_spot(text, match.start()), f"the document uses more than {MAX_ALIASES} aliases")
                for at in range(match.start("after") + 1, match.end("after")):
                    depth += 1
                    if depth > MAX_DEPTH:
                        return (*_spot(text, at), TOO_DEEP)
            elif kind == "block":  # its content is skipped: the scan goes on after it
                pos = _block_end(text, match.start(), match.end())
                break
    return None


def _block_end(text: str, header: int, pos: int) -> int:
    """Where a block scalar (``|`` or ``>`` ending a line) ends: at the first non-blank line indented no
    deeper than the line holding its header. Its content is text, not YAML, so it is skipped."""
    line_start = text.rfind("\n", 0, header) + 1
    parent = len(_INDENT.match(text, line_start).group())  # type: ignore[union-attr]
    while pos < len(text):
        start = pos + 1  # pos is at the newline ending the previous line
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line = text[start:end]
        if line.strip() and len(line) - len(line.lstrip(" ")) <= parent:
            return pos
        pos = end
    return pos


def _spot(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1
