"""Slips of the pen: the bundled flows edited at random as a person edits YAML (a line deleted,
duplicated or re-indented, a character typed in or a few deleted), thousands of times from fixed seeds.
Whatever the edit, loading answers with diagnostics at places inside the text, never an exception.
(An unknown event whose value is no transition used to stop ``validate`` with an internal error: found
this way, about once in a thousand edits.)"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from flowengine.flow.include import is_states_file
from flowengine.flow.loader import LoadResult, load_flow
from flowengine.flow.source import parse_source

ROOT = Path(__file__).resolve().parents[2]
FLOWS = sorted([*ROOT.glob("flows/*.yaml"), *ROOT.glob("tests/testdata/ok/*.yaml")])
TYPED = [*" :-[]{}!&*|>'\"#%@`,?\t\\x0~.", "!!int", "!!str", "&a", "*a", "<<", "{{", "}}", "é", "0x", "1e999",
         "null"]
EDITS_PER_SEED = 600


def edited(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(lines))
        line = lines[at]
        cut = rng.randint(0, len(line))
        match rng.randrange(5):
            case 0 if len(lines) > 1:
                del lines[at]
            case 1:
                lines.insert(at, lines[rng.randrange(len(lines))])
            case 2:
                lines[at] = line[:cut] + rng.choice(TYPED) + line[cut:]
            case 3:
                lines[at] = line[:cut] + line[cut + rng.randint(1, 5):]
            case _:
                lines[at] = " " * rng.randint(0, 3) + line
    return "\n".join(lines)


@pytest.mark.parametrize("seed", range(4))
def test_edited_flows_get_diagnostics_never_an_exception(seed: int) -> None:
    rng = random.Random(seed)
    texts = [path.read_text(encoding="utf-8") for path in FLOWS]
    for case in range(EDITS_PER_SEED):
        text = edited(rng.choice(texts), rng)
        try:
            result = load_flow(text, source="edited.yaml")
        except Exception as exc:  # the text goes with the failure: it is the reproducer
            raise AssertionError(f"seed {seed}, edit {case}: {exc!r} on\n{text}") from exc
        assert isinstance(result, LoadResult)
        if result.flow is None and not result.errors:  # no flow, no initial: a file of shared states
            assert is_states_file(parse_source(text).doc), (seed, case, text)
        assert not (result.flow is not None and result.errors), (seed, case, result.errors)
        last_line = text.count("\n") + 1
        for diagnostic in result.diagnostics:
            assert 1 <= diagnostic.line <= last_line and diagnostic.col >= 1, (seed, case, diagnostic)
