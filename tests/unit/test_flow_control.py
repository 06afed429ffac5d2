"""The language side of control flow and failure semantics: ``if`` and ``on_error`` on actions, ``always``
on states, what the schema and the rules say about them, and what the model holds."""

from __future__ import annotations

import pytest

from flowengine.flow.graph import flow_graph, to_mermaid
from flowengine.flow.loader import load_flow

HEAD = "flow: t\ninitial: a\n"
TAIL = "  end: {type: final}\n"


def _load(states: str) -> tuple[list[tuple[str, int, str]], object]:
    result = load_flow(HEAD + "states:\n" + states + TAIL)
    problems = [(d.rule, d.line, d.message) for d in result.diagnostics]
    return problems, result.flow


def test_if_and_on_error_are_options_of_every_action_not_parameters() -> None:
    problems, flow = _load("""\
  a:
    entry:
      - set: {n: 1, if: "vars.n is not defined", on_error: continue}
      - hangup: {call: caller, if: "caller.state == 'up'", on_error: fail}
    always: end
""")
    assert problems == []
    set_action, hangup = flow.states["a"].entry  # type: ignore[attr-defined]
    assert (set_action.params, set_action.condition, set_action.on_error) == (
        {"vars": {"n": 1}}, "vars.n is not defined", "continue")
    assert (hangup.params, hangup.condition, hangup.on_error) == (
        {"call": "caller"}, "caller.state == 'up'", "fail")


@pytest.mark.parametrize("option, message", [
    ('on_error: skip', 'invalid value "skip" for parameter "on_error" of action "hangup"; expected'),
    ('if: ""', 'parameter "if" of action "hangup" must not be empty'),
    ('if: "{{ vars.x }}"', 'write "if" as a bare expression, without {{ }}'),
    ('if: "vars.nope"', 'undefined variable "vars.nope"'),
    ('if: "vars.n ="', 'invalid "if" expression'),
])
def test_bad_options_are_reported_at_the_option(option: str, message: str) -> None:
    problems, _ = _load(f"""\
  a:
    entry:
      - set: {{n: 1}}
      - hangup: {{call: caller, {option}}}
    always: end
""")
    assert len(problems) == 1, problems
    rule, line, text = problems[0]
    assert line == 7 and message in text, problems
    assert rule in ("action-params", "expression")


def test_action_failed_kinds_compared_in_guards_are_checked() -> None:
    problems, _ = _load("""\
  a:
    on:
      action.failed:
        - {target: end, when: "event.data.kind == 'not_found'"}
        - {target: end, when: "event.data.kind in ['timeout', 'gone']"}
    after: {1s: end}
""")
    assert [(rule, line) for rule, line, _ in problems] == [("expression", 8)]
    assert 'unknown error kind "gone"' in problems[0][2]


def test_always_edges_count_for_reachability_dead_ends_and_timers() -> None:
    problems, flow = _load("""\
  a:
    entry: [{set: {n: 1}}]
    always: [{target: b, when: "vars.n > 0"}, c]
  b:
    always: end
  c:
    on: {call.finished: end}
""")
    # a and b never wait (an unguarded branch); c does, and has no timer.
    assert [(rule, line) for rule, line, _ in problems] == [("no-timeout", 9)]
    drawn = to_mermaid(flow_graph(flow))  # type: ignore[arg-type]
    assert "a --> b: always [vars.n #62; 0]" in drawn, drawn  # Mermaid escapes ">"
    assert "a --> c: always [else]" in drawn, drawn


def test_a_final_state_cannot_have_always() -> None:
    problems, _ = _load("""\
  a:
    always: end
  f:
    type: final
    always: a
""")
    assert ("final", 8) in [(rule, line) for rule, line, _ in problems]


@pytest.mark.parametrize("states, reported", [
    # Two states bouncing with no guard: reported once, at the first state's always.
    ("  a:\n    always: b\n  b:\n    always: a\n", True),
    # The loop counts the variable its guard reads: it ends.
    ("  a:\n    entry: [{set: {n: '{{ vars.n + 1 }}'}}]\n"
     "    always: [{target: a, when: 'vars.n < 3'}, end]\n", False),
    # The guard reads a variable written outside the loop only.
    ("  a:\n    always: [{target: a, when: 'vars.n < 3'}, end]\n  b:\n    entry: [{set: {n: 1}}]\n"
     "    always: a\n", True),
    # A guard reading all of vars sees any set.
    ("  a:\n    entry: [{set: {n: 1}}]\n    always: [{target: a, when: 'vars | length < 3'}, end]\n", False),
    # The loop hangs up the role its guard reads (its state changes).
    ("  a:\n    entry: [{dial: {to: '1', as: x}}]\n    always: {target: b, when: 'x.state != \"ended\"'}\n"
     "    after: {1s: end}\n  b:\n    entry: [{hangup: {call: x}}]\n"
     "    always: {target: a, when: 'x is defined'}\n    after: {1s: end}\n", False),
    # An internal always whose actions write what the guard reads.
    ("  a:\n    always: {when: 'vars.n < 3', actions: [{set: {n: '{{ vars.n + 1 }}'}}]}\n"
     "    after: {1s: end}\n", False),
    # An internal always whose actions only log.
    ("  a:\n    always: {when: 'vars.n < 3', actions: [{log: {message: x}}]}\n    after: {1s: end}\n", True),
    # A guard on the event only: the same event every lap.
    ("  a:\n    always: [{target: b, when: 'event.name != \"x\"'}, end]\n  b:\n    always: a\n", True),
])
def test_always_loops_that_cannot_end_are_reported(states: str, reported: bool) -> None:
    text = "flow: t\ninitial: a\nvars: {n: 0}\nstates:\n" + states + TAIL
    rules = [d.rule for d in load_flow(text).diagnostics]
    assert ("always-loop" in rules) == reported, rules
    assert rules.count("always-loop") <= 1
