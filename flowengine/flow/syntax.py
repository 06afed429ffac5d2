"""YAML syntax errors in our words: what went wrong, where it really is, and how to fix it.

libyaml reports where it gave up, which is often a line after the mistake (an unclosed ``{`` shows up at
the next key) and in parser terms ("did not find expected key"). Each reading below recognises one
common mistake from the error and the text around it, and says it at the mistake's own line:col. What no
reading recognises keeps the library's words (``invalid YAML: …``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from flowengine.flow.diagnostics import quote

_QUOTE_IT = 'quote text that holds ",", ": ", "{", "}", "[" or "]"'


@dataclass(frozen=True, slots=True)
class Hint:
    line: int  # 1-based
    col: int
    message: str


@dataclass(frozen=True, slots=True)
class _Error:
    problem: str
    context: str
    line: int  # the problem's, 0-based
    col: int
    context_line: int | None
    context_col: int | None
    lines: list[str]

    def text(self, line: int) -> str:
        return self.lines[line] if 0 <= line < len(self.lines) else ""

    @property
    def here(self) -> str:
        return self.text(self.line)[self.col:]

    def hint(self, message: str, line: int | None = None, col: int | None = None) -> Hint:
        line = self.line if line is None else line
        return Hint(line + 1, (self.col if col is None else col) + 1, message)


def syntax_hint(exc: yaml.MarkedYAMLError, text: str) -> Hint:
    """The error as a hint at the mistake (1-based line:col)."""
    problem, context = exc.problem_mark, exc.context_mark
    error = _Error(
        exc.problem or "", exc.context or "",
        problem.line if problem else 0, problem.column if problem else 0,
        context.line if context else None, context.column if context else None, text.splitlines(),
    )
    for reading in _READINGS:
        hint = reading(error)
        if hint is not None:
            return _within(hint, text)
    return _within(error.hint("invalid YAML: " + _library_words(exc)), text)


_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # YAML's line breaks, as the library counts lines


def _within(hint: Hint, text: str) -> Hint:
    """``hint``, moved to the end of the text when it lies past it: at the end of a text with no final
    line break the library counts one line more than there is (an unclosed ``{`` on the last line)."""
    breaks = list(_BREAK.finditer(text))
    if hint.line <= len(breaks) + 1:
        return hint
    last_start = breaks[-1].end() if breaks else 0
    return Hint(len(breaks) + 1, len(text) - last_start + 1, hint.message)


def reader_hint(exc: yaml.reader.ReaderError, text: str) -> Hint:
    """A character the reader refuses, at its place (the reader gives an offset, not a mark)."""
    line = text.count("\n", 0, exc.position) + 1
    col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    message = (
        f"invalid character #x{exc.character:04x}: {exc.reason}"
        if isinstance(exc.character, int)
        else f"invalid input: {exc.reason}"
    )
    return Hint(line, col, message)


class TextIndex:
    """Offsets into a text from 0-based line and column (the C parser's own index counts bytes in some
    releases)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts: list[int] | None = None

    def at(self, line: int, column: int) -> int:
        if self._starts is None:
            self._starts = [0]
            for piece in self.text.splitlines(keepends=True):
                self._starts.append(self._starts[-1] + len(piece))
        return self._starts[min(line, len(self._starts) - 1)] + column


def template_at(text: str, spot: tuple[int, int]) -> str | None:
    """The ``{{ ... }}`` written unquoted at ``spot`` (1-based): YAML reads it as a mapping in a mapping."""
    lines = text.splitlines()
    line = lines[spot[0] - 1][spot[1] - 1:] if 0 < spot[0] <= len(lines) and spot[1] > 0 else ""
    end = line.find("}}")
    return line[: end + 2] if line.startswith("{{") and end > 0 else None


def no_colon_after(text: str, index: int) -> bool:
    """The key ending at ``index`` is not followed by ":" (``{text: Hello, world}``'s "world")."""
    return text[index:].lstrip(" \t\r\n")[:1] in (",", "}")


def valueless_key(text: str, name: str, before: tuple[str, int] | None) -> tuple[str, str]:
    """The message and rule for a key without ":" in ``{...}``; ``before``: the entry ahead of it, when its
    value is plain text (its key, and where the value starts), which the comma cut short."""
    if before is None:
        return f'{quote(name)} has no value: inside {{...}} write "name: value", with ": " between them', \
            "syntax"
    key, begin = before
    whole = text[begin: text.find(name, begin) + len(name)]
    return (f"{quote(whole)} is cut at the comma: inside {{...}} a comma starts the next entry, so "
            f'{quote(name)} reads as a key; quote the text: {key}: "{whole}"', "flow-comma")


def _tab(error: _Error) -> Hint | None:
    if error.here[:1] == "\t":
        return error.hint("invalid YAML: a tab character; YAML indents with spaces only")
    return None


def _unclosed_flow(error: _Error) -> Hint | None:
    """``{`` or ``[`` never closed: libyaml notices at the next line; the mistake is the opening one."""
    found = re.match(r"did not find expected ',' or '([}\]])'", error.problem)
    if found is None or error.context_line is None or error.context_col is None:
        return None
    close = found[1]
    opened = "{" if close == "}" else "["
    if error.line > error.context_line:
        return error.hint(f"{quote(opened)} is not closed: add {quote(close)} at the end of line "
                          f"{error.context_line + 1}", error.context_line, error.context_col)
    if error.here[:1] == ":" and close == "}":
        return error.hint(f'": " inside unquoted text in {{...}} starts a new key: quote the text, as in '
                          f"{_quoted_entry(error.text(error.line), error.col)}")
    return error.hint(f'expected "," or {quote(close)} here: inside {opened}...{close} entries are separated '
                      f"by commas; {_QUOTE_IT}")


def _quoted_entry(line: str, col: int) -> str:
    """``key: "text"`` for the unquoted entry of a ``{...}`` holding the ``:`` at ``col``."""
    start = max(line.rfind(",", 0, col), line.rfind("{", 0, col)) + 1
    key, _, text = line[start:].partition(":")
    ends = [i for i in (text.find(","), text.find("}")) if i >= 0]
    return f'{key.strip()}: "{text[: min(ends, default=len(text))].strip()}"'


def _second_colon(error: _Error) -> Hint | None:
    """``text: Press 1: sales``: the value's own ": " reads as a second key on the line."""
    if not error.problem.startswith("mapping values are not allowed"):
        return None
    line = error.text(error.line)
    first = line.find(": ")
    if first < 0 or first >= error.col:
        return None
    key, _, value = line.strip().removeprefix("- ").partition(": ")
    return error.hint(f'": " inside an unquoted value starts a mapping: quote the value, as in '
                      f'{key}: "{value.strip()}"')


def _no_colon_above(error: _Error) -> Hint | None:
    """A line with no ":" (``start`` for ``start:``), so YAML reads the next lines as more of its text; or a
    key indented under one that already has a value. libyaml complains at the next ": "."""
    if not error.problem.startswith("mapping values are not allowed"):
        return None
    above = _previous(error, error.line)
    if above is None:
        return None
    text = error.lines[above]
    word = text.strip()
    if ":" not in word and not word.startswith(("-", "#")):
        return error.hint(f'{quote(word)} has no ":" after it: write "{word}:" (or, if it goes on with the '
                          "line above, quote that value)", above, _indent(text))
    _, colon, value = word.removeprefix("- ").partition(": ")
    current = error.text(error.line)
    if colon and value.strip() and _indent(current) > _indent(text):
        return error.hint("this line is indented more than the line above it, which already has a value: "
                          f"align it with the keys of line {above + 1}", error.line, _indent(current))
    return None


def _missing_key(error: _Error) -> Hint | None:
    """"did not find expected key": a list item under a mapping, a stray closing bracket, text after a
    quoted value, or a line indented to match nothing above it."""
    if error.problem != "did not find expected key":
        return None
    here, line = error.here, error.text(error.line)
    if here[:1] == "-":
        return _list_item(error)
    if here[:1] in "}]":
        return error.hint(f"{quote(here[:1])} closes nothing: remove it, or open it earlier")
    if line[: error.col].rstrip().endswith(('"', "'")):
        return error.hint("text after the closing quote: put the whole value inside the quotes")
    if error.context_line is None:
        return None
    keys = _key_columns(error, error.context_line)
    return error.hint(f"this line's indentation (column {_indent(line) + 1}) matches no key above it: "
                      f"align it with the keys at {keys}", error.line, _indent(line))


def _list_item(error: _Error) -> Hint:
    above = _previous(error, error.line)
    line = error.text(error.line)
    if above is not None and error.lines[above].lstrip().startswith("- "):
        items = _indent(error.lines[above])
        if items != _indent(line):
            return error.hint(f'this list item\'s "-" is at column {_indent(line) + 1}, the items above at '
                              f"column {items + 1} (line {above + 1}): align it with them")
    return error.hint('a list item where a key was expected: a mapping cannot also hold list items; put '
                      'the list under a key of its own, each item starting with "- "')


def _key_columns(error: _Error, first: int) -> str:
    """``column 3 (line 4) or column 7 (line 5)``: where the keys of the mappings from ``first`` on start."""
    found: dict[int, int] = {}
    for index in range(first, error.line):
        text = error.lines[index]
        if re.match(r"^\s*[^\s#\-][^:]*:(\s|$)", text):
            found.setdefault(_indent(text), index)
    shown = [f"column {indent + 1} (line {index + 1})" for indent, index in sorted(found.items())]
    return " or ".join(shown) or f"column {(error.context_col or 0) + 1}"


def _list_indent(error: _Error) -> Hint | None:
    if not error.problem.startswith("did not find expected '-'") or error.context_line is None:
        return None
    column = (error.context_col or 0) + 1
    return error.hint('this line is indented differently from the list above it: start it with "- " at '
                      f"column {column}, as on line {error.context_line + 1}", error.line,
                      _indent(error.text(error.line)))


def _unclosed_quote(error: _Error) -> Hint | None:
    if "quoted scalar" not in error.context or error.context_line is None or error.context_col is None:
        return None
    mark = error.text(error.context_line)[error.context_col: error.context_col + 1] or '"'
    return error.hint(f"this {mark} is never closed: end the text with a matching {mark} on the same line",
                      error.context_line, error.context_col)


def _bad_start(error: _Error) -> Hint | None:
    if not error.problem.startswith("found character that cannot start any token"):
        return None
    char = error.here[:1]
    return error.hint(f"a value cannot start with {quote(char)} in YAML: quote it") if char else None


def _simple_key(error: _Error) -> Hint | None:
    if not error.problem.startswith("could not find expected ':'"):
        return None
    line = error.context_line if error.context_line is not None else error.line
    return error.hint('a key needs ": " after it (or quote the text if it is a value)', line,
                      _indent(error.text(line)))


def _previous(error: _Error, line: int) -> int | None:
    for index in range(line - 1, -1, -1):
        if error.lines[index].strip() and not error.lines[index].lstrip().startswith("#"):
            return index
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _library_words(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or "invalid YAML"
    marks = exc.context_mark, exc.problem_mark
    if exc.context and marks[0] and marks[1] and marks[0].line != marks[1].line:
        problem = f"{problem} ({exc.context} at line {marks[0].line + 1})"
    elif exc.context:
        problem = f"{exc.context}: {problem}"
    return problem[:1].lower() + problem[1:]


_READINGS: tuple[Callable[[_Error], Hint | None], ...] = (
    _tab, _unclosed_flow, _unclosed_quote, _second_colon, _no_colon_above, _missing_key, _list_indent,
    _bad_start, _simple_key,
)
