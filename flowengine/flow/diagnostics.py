"""Diagnostics: what ``validate`` reports, one finding at one source position.

House style for messages: lower case, names in double quotes, and the valid alternatives or a
"did you mean" when there is a close match, so a reader can fix the flow without opening the docs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    path: str  # the file as the user named it, or "<stdin>"
    line: int  # 1-based
    col: int  # 1-based
    severity: Severity
    message: str
    rule: str

    def format(self) -> str:
        """``path:line:col: message [rule]`` (the text reporter adds the severity)."""
        return f"{self.path}:{self.line}:{self.col}: {self.message} [{self.rule}]"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def sort_key(self) -> tuple[str, int, int, str, str, str]:
        return (self.path, self.line, self.col, self.rule, self.severity, self.message)


def sort_unique(diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Sorted by (path, line, col, rule) and without repeats."""
    return tuple(sorted(set(diagnostics), key=Diagnostic.sort_key))


def quote(name: object) -> str:
    return f'"{name}"'


def quoted_list(names: Iterable[object], conjunction: str = "or") -> str:
    """``"a", "b" or "c"``."""
    items = [quote(n) for n in names]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``name``, if one is close enough to be a likely typo."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, candidates: Iterable[str], prefix: str = "") -> str:
    """``; did you mean "x"?`` (with ``prefix`` before the suggestion), or "" when nothing is close."""
    close = closest(name, candidates)
    return f'; did you mean "{prefix}{close}"?' if close else ""


def alternatives(name: str, candidates: Iterable[str], limit: int = 16) -> str:
    """A did-you-mean when something is close, else the list of valid names (when it is short)."""
    options = sorted(candidates)
    hint = did_you_mean(name, options)
    if hint:
        return hint
    if not options:
        return ""
    if len(options) > limit:
        return ""  # too many to list usefully
    return f"; expected {quoted_list(options)}"
