"""Every fix the validator suggests is itself valid: each suggestion in the golden error cases is applied
to the file where the diagnostic points, and the file is checked again; the diagnostic must be gone, with
nothing new on its line. A suggestion that is still invalid (``timeout: 5`` -> ``quote it: "5"``) fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from flowengine.flow.diagnostics import Diagnostic
from flowengine.flow.loader import load_flow

ERR = Path(__file__).resolve().parents[1] / "testdata" / "err"
_DIRECTIVE = re.compile(r"^# golden: (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` (written at the diagnostic's line:col) with ``new``."""

    old: str
    new: str


def _named(message: str) -> str:
    """The name the message is about: its first quoted text (``unknown action "anwser"``), or the second
    when the first names the key (``"initial" names undefined state "strat"``)."""
    quoted = re.findall(r'"([^"]*)"', message)
    return quoted[1] if message.startswith(f'"{quoted[0]}" names') else quoted[0]


def _did_you_mean(d: Diagnostic) -> Edit | None:
    found = re.search(r'did you mean "([^"]+)"\?', d.message)
    return Edit(_named(d.message), found[1]) if found else None


def _expected_first(d: Diagnostic) -> Edit | None:
    found = re.search(r'; expected "([^"]+)"', d.message)
    return Edit(_named(d.message), found[1]) if found else None


def _quote_it(d: Diagnostic) -> Edit | None:
    found = re.search(r'got the number (\S+); quote it: "([^"]+)"', d.message)
    return Edit(found[1], f'"{found[2]}"') if found else None


def _add_unit(d: Diagnostic) -> Edit | None:
    found = re.search(r"got the number (\S+): write (\S+) \(", d.message)
    return Edit(found[1], found[2]) if found else None


def _unquote(d: Diagnostic) -> Edit | None:
    found = re.search(r'got the string "([^"]+)"; write it without quotes: (\S+)', d.message)
    return Edit(f'"{found[1]}"', found[2]) if found else None


def _boolean(d: Diagnostic) -> Edit | None:
    found = re.search(r'got "([^"]+)", which YAML 1.2 reads as a string: write true or false', d.message)
    return Edit(found[1], "true" if found[1].lower() in ("yes", "on", "y") else "false") if found else None


def _equals(d: Diagnostic) -> Edit | None:
    """The message shows the whole fixed text: it replaces the text it came from."""
    found = re.search(r'write "==", as in "(.+)"$', d.message)
    return Edit(found[1], found[1]) if found else None


def _bare(d: Diagnostic) -> Edit | None:
    found = re.search(r'as a bare expression, without \{\{ \}\}: "(.+)"$', d.message)
    return Edit("", found[1]) if found else None  # "": the whole quoted value


SUGGESTIONS: tuple[Callable[[Diagnostic], Edit | None], ...] = (
    _did_you_mean, _expected_first, _quote_it, _add_unit, _unquote, _boolean, _equals, _bare,
)


def _options(text: str) -> dict[str, str]:
    match = _DIRECTIVE.search(text)
    return dict(item.split("=", 1) for item in match.group(1).split()) if match else {}


def _load(text: str, options: dict[str, str]) -> tuple[Diagnostic, ...]:
    capabilities = frozenset(options["capabilities"].split(",")) if "capabilities" in options else None
    return load_flow(text, source="case.yaml", capabilities=capabilities,
                     provider=options.get("provider")).diagnostics


def _apply(text: str, d: Diagnostic, edit: Edit) -> str:
    lines = text.split("\n")
    line = lines[d.line - 1]
    at = d.col - 1
    if edit.old == edit.new:  # the fixed text of a value holding the position: put it in the value's place
        start, end = line.rindex('"', 0, at) + 1, line.index('"', at)
        lines[d.line - 1] = line[:start] + edit.new + line[end:]
    elif edit.old == "":  # the whole quoted value that starts here
        end = line.index('"', at + 1)
        lines[d.line - 1] = line[:at] + f'"{edit.new}"' + line[end + 1:]
    else:
        assert line[at:].startswith(edit.old), f"{edit.old!r} is not written at {d.line}:{d.col}: {line!r}"
        lines[d.line - 1] = line[:at] + edit.new + line[at + len(edit.old):]
    return "\n".join(lines)


def _suggested() -> list[tuple[str, Diagnostic, Edit]]:
    cases = []
    for path in sorted(ERR.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        for d in _load(text, _options(text)):
            edits = [edit for suggest in SUGGESTIONS if (edit := suggest(d)) is not None]
            if edits:
                cases.append((path.name, d, edits[0]))
    return cases


SUGGESTED = _suggested()


def test_the_golden_cases_hold_every_kind_of_suggestion() -> None:
    kinds = {suggest.__name__ for suggest in SUGGESTIONS}
    used = {s.__name__ for _, d, _ in SUGGESTED for s in SUGGESTIONS if s(d) is not None}
    assert used == kinds


@pytest.mark.parametrize(("name", "diagnostic", "edit"), SUGGESTED,
                         ids=[f"{n}:{d.line}:{d.col}" for n, d, _ in SUGGESTED])
def test_a_suggested_fix_is_valid(name: str, diagnostic: Diagnostic, edit: Edit) -> None:
    text = (ERR / name).read_text(encoding="utf-8")
    options = _options(text)
    before = [d for d in _load(text, options) if d.line == diagnostic.line]
    after = [d for d in _load(_apply(text, diagnostic, edit), options) if d.line == diagnostic.line]
    fixed = f"{name}:{diagnostic.line}: {edit.old!r} -> {edit.new!r}"
    assert not [d for d in after if d.col == diagnostic.col and d.rule == diagnostic.rule], fixed
    assert len(after) < len(before), f"{fixed} left {[d.message for d in after]}"
