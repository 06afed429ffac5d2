"""Reporters: diagnostics as text (for people), JSON (for tools) or GitHub workflow commands.

Each reporter is a plain function registered in ``REPORTERS`` by format name. ``sources`` maps a
diagnostic's path to its text, for the source line and caret the text reporter shows in colour mode.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from flowengine.flow.diagnostics import Diagnostic

Reporter = Callable[[Sequence[Diagnostic], Mapping[str, str], bool], str]

_RED, _YELLOW, _BOLD, _DIM, _CYAN, _RESET = (
    "\x1b[31m",
    "\x1b[33m",
    "\x1b[1m",
    "\x1b[2m",
    "\x1b[36m",
    "\x1b[0m",
)


def report_text(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str], color: bool) -> str:
    """``path:line:col: error: message [rule]`` per line; in colour, the source line and a caret too."""
    return "".join(_text_one(d, sources, color) for d in diagnostics)


def _text_one(d: Diagnostic, sources: Mapping[str, str], color: bool) -> str:
    if not color:
        return f"{d.path}:{d.line}:{d.col}: {d.severity}: {d.message} [{d.rule}]\n"
    tint = _RED if d.severity == "error" else _YELLOW
    head = (
        f"{_BOLD}{d.path}:{d.line}:{d.col}:{_RESET} {tint}{_BOLD}{d.severity}:{_RESET} {d.message} "
        f"{_DIM}[{d.rule}]{_RESET}\n"
    )
    lines = sources.get(d.path, "").splitlines()
    if not 0 < d.line <= len(lines):
        return head
    text = lines[d.line - 1].replace("\t", " ")
    gutter, pad = f"{d.line:>5} | ", "      | "
    return f"{head}{_DIM}{gutter}{_RESET}{text}\n{_DIM}{pad}{_RESET}{' ' * (d.col - 1)}{tint}^{_RESET}\n"


def report_json(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str], color: bool) -> str:
    """A JSON array of {path, line, col, severity, message, rule} objects."""
    rows = [
        {
            "path": d.path,
            "line": d.line,
            "col": d.col,
            "severity": d.severity,
            "message": d.message,
            "rule": d.rule,
        }
        for d in diagnostics
    ]
    return json.dumps(rows, indent=2) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def report_github(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str], color: bool) -> str:
    """GitHub Actions workflow commands: the problems show as annotations on the pull request."""
    out = []
    for d in diagnostics:
        props = (
            f"file={_escape_property(d.path)},line={d.line},col={d.col},"
            f"title={_escape_property(f'flowengine [{d.rule}]')}"
        )
        out.append(f"::{d.severity} {props}::{_escape_data(d.message)}\n")
    return "".join(out)


REPORTERS: dict[str, Reporter] = {"text": report_text, "json": report_json, "github": report_github}
