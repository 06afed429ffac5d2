"""The YAML reader: YAML 1.2 scalars, string keys, duplicate keys, anchors, positions and limits."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowengine.flow import budget
from flowengine.flow.budget import MAX_ALIASES, MAX_DEPTH
from flowengine.flow.model import Pos
from flowengine.flow.scalars import resolve_plain
from flowengine.flow.source import parse_source


@pytest.mark.parametrize("text", ["on", "off", "yes", "no", "y", "n", "Yes", "NO", "On"])
def test_yaml11_booleans_stay_strings(text: str) -> None:
    assert resolve_plain(text) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("~", None),
        ("null", None),
        ("", None),
        ("12", 12),
        ("-3", -3),
        ("0o17", 15),
        ("0x1F", 31),
        ("017", 17),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("-.inf", -math.inf),
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("12:30", "12:30"),
        ("10s", "10s"),
    ],
)
def test_plain_scalars_follow_the_yaml12_core_schema(text: str, value: object) -> None:
    assert resolve_plain(text) == value
    assert type(resolve_plain(text)) is type(value)


def test_nan_is_a_float() -> None:
    assert math.isnan(resolve_plain(".nan"))


def test_on_is_a_string_key_and_quoted_scalars_are_strings() -> None:
    parsed = parse_source('on: {a: "1", b: 1, 2: x, true: y, null: z}\n')
    assert parsed.doc == {"on": {"a": "1", "b": 1, "2": "x", "true": "y", "null": "z"}}
    assert parsed.diagnostics == ()


def test_explicit_tags_are_honoured() -> None:
    parsed = parse_source("a: !!str 5\nb: !!int '7'\nc: !!float 1\nd: ! 12\n")
    assert parsed.doc == {"a": "5", "b": 7, "c": 1.0, "d": "12"}


def test_a_tag_whose_value_does_not_fit_is_reported() -> None:
    parsed = parse_source("a: !!int seven\n", "f.yaml")
    assert [(d.line, d.col, d.rule) for d in parsed.diagnostics] == [(1, 4, "syntax")]
    assert '"seven" is not a valid int' in parsed.diagnostics[0].message


def test_duplicate_key_is_reported_at_the_second_key_and_the_first_value_kept() -> None:
    parsed = parse_source("a: 1\nb:\n  c: 2\n  c: 3\na: 4\n", "f.yaml")
    assert parsed.doc == {"a": 1, "b": {"c": 2}}
    assert [(d.line, d.col, d.rule) for d in parsed.diagnostics] == [
        (4, 3, "duplicate-key"),
        (5, 1, "duplicate-key"),
    ]
    assert parsed.diagnostics[0].format() == (
        'f.yaml:4:3: duplicate key "c": a key may appear only once in a mapping [duplicate-key]'
    )


def test_duplicate_key_value_positions_do_not_overwrite_the_first() -> None:
    parsed = parse_source("a:\n  x: 1\na:\n  x: 2\n")
    assert parsed.source_map.value_pos(("a", "x")) == Pos(2, 6)


def test_positions_of_keys_and_values_are_one_based() -> None:
    parsed = parse_source("flow: x\nstates:\n  s1:\n    entry:\n      - say: {call: caller}\n")
    source_map = parsed.source_map
    assert source_map.key_pos(("states", "s1")) == Pos(3, 3)
    assert source_map.value_pos(("states", "s1", "entry", 0)) == Pos(5, 9)
    assert source_map.key_pos(("states", "s1", "entry", 0, "say", "call")) == Pos(5, 15)
    assert source_map.value_pos(("states", "s1", "entry", 0, "say", "call")) == Pos(5, 21)
    # Unknown paths fall back to the key naming the nearest known ancestor.
    assert source_map.value_pos(("states", "s1", "entry", 0, "say", "nope")) == Pos(5, 9)


def test_find_points_inside_a_value() -> None:
    parsed = parse_source('a: "x {{ vars.b }}"\n')
    assert parsed.source_map.find(("a",), "vars.b") == Pos(1, 10)
    assert parsed.source_map.find(("a",), "absent") == Pos(1, 4)


def test_aliases_resolve_with_positions_under_the_new_path() -> None:
    parsed = parse_source("a: &x {b: [1, 2]}\nc: *x\n")
    assert parsed.doc == {"a": {"b": [1, 2]}, "c": {"b": [1, 2]}}
    assert parsed.source_map.value_pos(("c",)) == Pos(2, 4)
    assert parsed.source_map.value_pos(("c", "b", 1)) == Pos(1, 15)  # where the content is written


def test_merge_keys_fill_in_keys_not_written_explicitly() -> None:
    parsed = parse_source("base: &b {x: 1, y: 2}\nother: &o {z: 9}\nm:\n  x: 0\n  <<: [*b, *o]\n  y: 5\n")
    assert parsed.doc["m"] == {"x": 0, "y": 5, "z": 9}
    assert parsed.source_map.key_pos(("m", "y")) == Pos(6, 3)
    assert parsed.source_map.key_pos(("m", "z")) == Pos(2, 12)
    assert parsed.diagnostics == ()


def test_a_quoted_merge_key_is_an_ordinary_key() -> None:
    assert parse_source("a: &x {b: 1}\nm: {'<<': *x}\n").doc["m"] == {"<<": {"b": 1}}


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("a: [1, 2\n", 1, 4, "\"[\" is not closed: add \"]\" at the end of line 1"),
        ("a: *nope\n", 1, 4, 'unknown anchor "nope"'),
        ("a: !custom x\n", 1, 4, 'unsupported tag "!custom"'),
        ("? [1]\n: 2\n", 1, 3, "a mapping key must be a plain string"),
        ("a: 1\n---\nb: 2\n", 2, 1, "one YAML document"),
        ("a:\n\tb: 1\n", 2, 1, "a tab character"),
        ("a: \x07\n", 1, 4, "invalid character #x0007"),
    ],
)
def test_problems_become_syntax_diagnostics(text: str, line: int, col: int, message: str) -> None:
    parsed = parse_source(text, "f.yaml")
    assert parsed.doc is None
    (diagnostic,) = parsed.diagnostics
    assert (diagnostic.line, diagnostic.col, diagnostic.rule) == (line, col, "syntax")
    assert message in diagnostic.message


# Hostile input gets flowengine's own diagnostic (rule, line:col) whatever the YAML library's own limits
# are: assert the rule and the position, never a library's wording.
@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("[" * 100_000 + "]" * 100_000, 1, MAX_DEPTH + 1),  # libyaml's scanner buffers the whole run
        ("{" * 100_000, 1, MAX_DEPTH + 1),
        ("a: " + "[ " * 70 + "x" + " ]" * 70, 1, 4 + 2 * MAX_DEPTH),
        ("a: 1\nb: |\n  [ [\nc: # [\n  " + "[" * 70 + "\n", 5, 3 + MAX_DEPTH),  # text and comments skipped
        ("- " * 100_000 + "x", 1, 2 * MAX_DEPTH + 1),  # block nesting: the event builder's exact count
        ("\n".join(" " * i + "k:" for i in range(70)) + " 1\n", MAX_DEPTH + 1, MAX_DEPTH + 1),
    ],
)
def test_deep_nesting_is_a_limits_diagnostic_not_a_crash(text: str, line: int, col: int) -> None:
    parsed = parse_source(text)
    assert parsed.doc is None
    assert [(d.rule, d.line, d.col) for d in parsed.diagnostics] == [("limits", line, col)]


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("\na: " + "[" * 70, 2, 4 + MAX_DEPTH),  # positions count from the text's very first line
        # a block scalar ends at the first line indented no deeper than the line holding its header
        ("x: 1\na:\n  b: |\n    " + "[" * 70 + "\n  c: " + "[" * 70 + "\n", 5, 6 + MAX_DEPTH),
        ("\n  b: |\n    " + "[" * 70 + "\n  c: " + "[" * 70 + "\n", 4, 6 + MAX_DEPTH),
        # closers outside quotes close, one level each; unmatched ones do not make room below zero
        ("a: x]]\nb: [[]]\nc: " + "[" * 70, 3, 4 + MAX_DEPTH),
        ("a: [[[x]]," + "[" * 70, 1, 11 + MAX_DEPTH - 1),  # depth 1 left, then 64 more
        # openers glued to an alias (its name ends at one): nesting from the second on, inside a list too
        ("a: &x 1\nb: *x" + "[" * 100_000, 2, 7 + MAX_DEPTH),
        ("a: &x 1\nb: [*x" + "[" * 100_000, 2, 7 + MAX_DEPTH),
        ("a: &x 1\nb: {k: *x" + "{" * 100_000, 2, 10 + MAX_DEPTH),
    ],
)
def test_the_text_budget_reports_where_it_is_passed(text: str, line: int, col: int) -> None:
    diagnostics = parse_source(text).diagnostics
    assert [(d.rule, d.line, d.col) for d in diagnostics] == [("limits", line, col)]


def test_nesting_up_to_the_limit_loads() -> None:
    depth = MAX_DEPTH - 1  # the document's own mapping is one level
    parsed = parse_source("a: " + "[" * depth + "1" + "]" * depth + "\n")
    assert parsed.diagnostics == ()
    value = parsed.doc["a"]
    for _ in range(depth - 1):
        value = value[0]
    assert value == [1]


def test_block_text_indented_one_deeper_than_its_header_is_text() -> None:
    assert parse_source("a:\n  b: |\n   " + "[" * 70 + "\n").diagnostics == ()


def test_brackets_in_quotes_comments_and_block_text_are_not_nesting() -> None:
    opened = "[" * (MAX_DEPTH + 5)
    text = f'a: "{opened}"\nb: \'{opened}\'\nc: 1 # {opened}\nd: >\n  {opened}\n  more\ne: x{opened}\n'
    parsed = parse_source(text)
    assert parsed.diagnostics == ()
    assert parsed.doc["d"] == f"{opened} more\n"


def test_too_many_aliases_stop_before_parsing() -> None:
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    parsed = parse_source(text)
    assert parsed.doc is None
    col = len("b: [") + 1 + MAX_ALIASES * len("*a, ")
    assert [(d.rule, d.line, d.col) for d in parsed.diagnostics] == [("limits", 2, col)]


def test_alias_bombs_are_stopped() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    parsed = parse_source("\n".join(lines) + "\n")
    assert parsed.doc is None
    # at the alias whose expansion passes the node budget: a5's second *a4
    assert [(d.rule, d.line, d.col) for d in parsed.diagnostics] == [("limits", 6, 15)]


def test_empty_text_is_no_document() -> None:
    parsed = parse_source("# just a comment\n")
    assert parsed.doc is None
    assert parsed.diagnostics == ()


# The tokenizer budget.over_budget used before issue 15 made it skip plain text: the new one must stop
# every text this one stopped, at the same place or earlier (it may over-count, never under-count).
_PREVIOUS_TOKEN = re.compile(
    r"""
    (?P<comment>(?:^|(?<=\s))\#[^\n]*)
   |(?P<block>(?:^|(?<=\s))[|>][0-9+-]*[ \t]*(?:\#[^\n]*)?$)
   |(?P<dq>(?:^|(?<=[\s\[{,]))"(?:[^"\\]|\\.)*"?)
   |(?P<sq>(?:^|(?<=[\s\[{,]))'(?:[^']|'')*'?)
   |(?P<glued>[^\s\[\]{},]+[\[{]+)
   |(?P<open>(?:^|(?<=[\s\[{,]))[\[{])
   |(?P<close>[\]}])
   |(?P<alias>(?:^|(?<=[\s\[{,]))\*[^\s,\[\]{}]+)
    """,
    re.MULTILINE | re.VERBOSE,
)


def _previous_depth_at(text: str, limit: int) -> int | None:
    """Where the previous tokenizer found the text nested deeper than ``limit`` (offset), else None."""
    depth, pos = 0, 0
    while (match := _PREVIOUS_TOKEN.search(text, pos)) is not None:
        kind, pos = match.lastgroup, match.end()
        if kind == "open":
            depth += 1
            if depth > limit:
                return match.start()
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "block":
            pos = budget._block_end(text, match.start(), pos)
    return None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["[", "{", "]", "}", '"', "'", "*a", "x", " ", ",", "\n", "#", "|", "\\"]),
                max_size=80))
def test_the_budget_scan_stops_whatever_the_previous_one_stopped(pieces: list[str]) -> None:
    text = "".join(pieces)
    before = _previous_depth_at(text, 3)
    original = budget.MAX_DEPTH
    budget.MAX_DEPTH = 3
    try:
        now = budget.over_budget(text)
    finally:
        budget.MAX_DEPTH = original
    if before is not None:
        assert now is not None and (now[0], now[1]) <= budget._spot(text, before)
