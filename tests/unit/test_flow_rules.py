"""Semantic rules beyond the golden files: the role dataflow, flow-level handlers, quiet follow-ons."""

from __future__ import annotations

from flowengine.flow.diagnostics import Diagnostic
from flowengine.flow.loader import load_flow


def _problems(text: str) -> list[tuple[str, int, str]]:
    return [(d.rule, d.line, d.message) for d in load_flow(text).diagnostics if d.severity == "error"]


def _rules(diagnostics: tuple[Diagnostic, ...]) -> list[str]:
    return [d.rule for d in diagnostics]


HEAD = "flow: t\ninitial: a\n"


def test_a_role_bound_on_one_path_only_is_accepted() -> None:
    # "callee" is bound on the a -> b path but not on a -> c; c -> d uses it: may-be-bound is enough.
    text = (
        HEAD
        + """\
states:
  a:
    on: {call.answered: b, call.failed: c}
    after: {1s: d}
  b:
    entry: [{dial: {to: "1", as: callee}}]
    on: {call.failed: d}
    after: {1s: c}
  c:
    after: {1s: d}
  d:
    type: final
    entry: [{hangup: {call: callee}}]
"""
    )
    assert _problems(text) == []


def test_a_role_bound_only_after_its_use_is_reported() -> None:
    text = (
        HEAD
        + """\
states:
  a:
    entry: [{hangup: {call: callee}}, {dial: {to: "1", as: callee}}]
    on: {call.failed: d}
    after: {1s: d}
  d: {type: final}
"""
    )
    assert [(rule, line) for rule, line, _ in _problems(text)] == [("role", 5)]


def test_transition_actions_bind_roles_for_the_target() -> None:
    text = (
        HEAD
        + """\
states:
  a:
    on:
      call.answered: {target: b, actions: [{conference_create: {as: room}}]}
    after: {1s: b}
  b:
    type: final
    entry: [{conference_hangup: {conference: room}}]
"""
    )
    problems = _problems(text)
    # The timer path does not bind "room", but the event path does: fine on some path.
    assert problems == []


def test_internal_transitions_bind_roles_for_the_state_they_stay_in() -> None:
    text = (
        HEAD
        + """\
states:
  a:
    on:
      dtmf.captured: {actions: [{dial: {to: "1", as: helper}}]}
      call.failed: d
    exit: [{hangup: {call: helper}}]
    after: {1s: d}
  d: {type: final}
"""
    )
    assert _problems(text) == []


def test_flow_level_handlers_leave_every_state_that_does_not_override_them() -> None:
    text = (
        HEAD
        + """\
on:
  call.finished: {target: d, actions: [{conference_create: {as: room}}]}
states:
  a:
    on: {say.finished: b}
    after: {1s: b}
  b:
    on: {call.finished: c}
    after: {1s: c}
  c:
    after: {1s: a}
    on: {say.finished: a}
  d:
    type: final
    entry: [{conference_hangup: {conference: room}}]
"""
    )
    # "d" is reached through the flow-level handler (from a and c; b overrides it), so it is reachable and
    # "room" is bound on that path.
    assert _problems(text) == []


def test_an_undefined_target_does_not_cascade_into_graph_findings() -> None:
    text = (
        HEAD
        + """\
states:
  a:
    on: {call.answered: dnoe}
    after: {1s: dnoe}
  done: {type: final}
"""
    )
    assert _rules(load_flow(text).diagnostics) == ["target", "target"]


def test_a_guard_may_compare_with_roles_and_reasons_of_the_vocabulary() -> None:
    text = (
        HEAD
        + """\
states:
  a:
    entry: [{dial: {to: "1", as: callee}}]
    on:
      call.failed:
        - {target: d, when: "event.call == 'callee' and event.reason in ['busy', 'no_answer']"}
        - {target: d, when: "event.reason in ['busy', 'engaged']"}
    after: {1s: d}
  d: {type: final}
"""
    )
    assert [(rule, msg) for rule, _, msg in _problems(text)] == [
        (
            "expression",
            'unknown reason "engaged"; expected "answered", "api_hangup", "busy", "cancelled", '
            '"completed", "error", "failed", "hangup", "human", "kicked", "machine", "no_answer", '
            '"rejected", "stopped", "timeout" or "unreachable"',
        )
    ]


def test_names_bound_inside_a_template_are_not_undefined() -> None:
    text = (
        HEAD
        + """\
vars: {agents: ["1", "2"]}
states:
  a:
    entry:
      - log: {message: "{% for a in vars.agents %}{{ a }}{{ loop.index }}{% endfor %}{{ range(2) | list }}"}
    after: {1s: d}
  d: {type: final}
"""
    )
    assert _problems(text) == []


def test_an_http_or_conference_info_result_is_a_variable() -> None:
    text = (
        HEAD
        + """\
states:
  a:
    entry:
      - http: {url: "https://example.com", as: reply}
      - log: {message: "{{ vars.reply.status }} {{ vars.missing }}"}
    after: {1s: d}
  d: {type: final}
"""
    )
    assert [msg.split(";")[0] for _, _, msg in _problems(text)] == [
        'undefined variable "vars.missing" (declare it under "vars", or bind it with "set" or "as:")'
    ]


def test_a_final_state_may_have_entry_actions() -> None:
    text = HEAD + "states:\n  a:\n    type: final\n    entry: [{hangup: {call: caller}}]\n"
    assert load_flow(text).diagnostics == ()
