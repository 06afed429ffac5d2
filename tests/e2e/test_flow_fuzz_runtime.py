"""Nothing a flow can contain crashes the engine: Hypothesis writes flows (valid-ish YAML with random
actions, parameters and expressions), each is validated, and each that validates is played for a short
while on a simulated platform, in process, through the real HTTP stack.

No exception may escape ``load_flow`` or the scenario run, and nothing may be logged with a traceback
(an exception caught by aiohttp's request handler, or by the engine's own last-resort handlers).
Bounded: a fixed number of examples, each scenario capped at 2 virtual minutes and 10 real seconds.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from flowengine.flow.loader import load_flow
from flowengine.providers import platform
from flowengine.scenarios.model import load_scenarios
from flowengine.scenarios.runner import Limits, run_scenario

AGENT = "447400000001"


def _rarely(usual: st.SearchStrategy[str], rare: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``rare`` once in 150 draws: a flow holds some 100 of them, so most flows validate and get played."""
    return st.integers(0, 149).flatmap(lambda draw: rare if draw == 0 else usual)


# Now and then what must not validate (``| uppper``, ``=``, a variable nothing sets).
ATOMS = _rarely(st.sampled_from([
    "vars.n", "vars.s", "vars.items", "vars.items[0]", "vars.items[9]", "vars.s.upper()", "event.digits",
    "event.reason", "event.data", "event.name", "session.id", "session.state", "caller.state", "caller.id",
    "1", "0", "-3", "2.5", "'x'", "'12'", "none", "true", "[1, 2]", "{'a': 1}", "range(3) | list",
    "room.id", "agent.state",
]), st.just("vars.m"))
FILTERS = _rarely(st.sampled_from([
    "upper", "lower", "length", "default(0)", "int", "float", "string", "join(',')", "first", "last",
    "round", "abs", "list", "sort", "reverse", "replace('1', '2')", "truncate(5)", "trim", "title",
    "tojson", "e", "wordcount", "center(5)", "sum", "min", "max", "unique | list", "select('odd') | list",
    "map('string') | list", "batch(2) | list", "int(0)", "attr('x')", "dictsort", "items | list",
]), st.sampled_from(["uppper", "lenght"]))
TESTS = _rarely(st.sampled_from(["odd", "even", "defined", "undefined", "number", "string", "none",
                                 "divisibleby(2)"]), st.just("oddd"))
OPERATORS = _rarely(st.sampled_from(["+", "-", "*", "/", "//", "%", "~", "==", "!=", "<", ">=", "and", "or",
                                     "in"]), st.just("="))


def _expressions() -> st.SearchStrategy[str]:
    return st.recursive(
        ATOMS,
        lambda inner: st.one_of(
            st.builds(lambda a, op, b: f"({a} {op} {b})", inner, OPERATORS, inner),
            st.builds(lambda a, f: f"({a} | {f})", inner, FILTERS),
            st.builds(lambda a, t: f"({a} is {t})", inner, TESTS),
            st.builds(lambda a, c, b: f"({a} if {c} else {b})", inner, inner, inner),
            st.builds(lambda a: f"(not {a})", inner),
        ),
        max_leaves=5,
    )


EXPRESSION = _expressions()
TEMPLATE = st.one_of(
    EXPRESSION.map(lambda e: "{{ " + e + " }}"),
    st.builds(lambda a, b: f"Hi {{{{ {a} }}}} and {{{{ {b} }}}}", EXPRESSION, EXPRESSION),
    st.sampled_from(["plain text", "{% for i in vars.items %}{{ i }}{% endfor %}", "{{ vars.n + }}"]),
)
STATE_NAMES = ["s0", "s1", "s2", "done"]
TARGET = st.sampled_from(STATE_NAMES)
DURATION = st.sampled_from(["0ms", "1s", "5s", "30s", "2m"])


def _action(name: str, params: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    options = {"if": EXPRESSION, "on_error": st.sampled_from(["fail", "continue"])}
    extras = st.fixed_dictionaries({}, optional=options)
    return extras.map(lambda options: {name: {**params, **options}})


def _with(name: str, **strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(strategies).flatmap(lambda params: _action(name, params))


ACTIONS = st.one_of(
    _with("answer", call=st.just("caller")),
    _with("say", call=st.just("caller"), text=TEMPLATE),
    _with("log", message=TEMPLATE),
    _with("set", n=st.one_of(TEMPLATE, st.integers(-5, 5)), s=TEMPLATE),
    _with("capture_dtmf", call=st.just("caller"),
          max_digits=st.one_of(st.integers(1, 4), EXPRESSION.map(lambda e: "{{ " + e + " }}")),
          timeout=DURATION),
    _with("play", call=st.just("caller"), url=st.one_of(st.just("https://files.example/a.wav"), TEMPLATE)),
    _with("record", call=st.just("caller")),
    _with("send_dtmf", call=st.just("caller"), digits=TEMPLATE),
    _with("conference_create", **{"as": st.just("room")}),
    _with("conference_join", conference=st.just("room"), call=st.just("caller")),
    _with("conference_dial", conference=st.just("room"), to=st.just({"phone": AGENT}),
          timeout=st.just("10s"), **{"as": st.just("agent")}),
    _with("dial", to=st.one_of(st.just({"phone": AGENT}), TEMPLATE.map(lambda t: {"phone": t})),
          timeout=DURATION, **{"as": st.just("agent")}),
    _with("hangup", call=st.sampled_from(["caller", "agent"])),
    _with("conference_hangup", conference=st.just("room")),
)
EVENTS = st.sampled_from(["call.answered", "call.finished", "dtmf.captured", "say.finished",
                          "participant.joined", "call.failed", "action.failed", "recording.ready"])
BRANCH = st.one_of(
    TARGET,
    st.fixed_dictionaries({"target": TARGET}, optional={"when": EXPRESSION,
                                                       "actions": st.lists(ACTIONS, max_size=2)}),
)


# Every state is reached through a timer chain s0 -> s1 -> s2 -> done, and s0 binds the roles first.
OPENING = [{"answer": {"call": "caller"}}, {"conference_create": {"as": "room"}},
           {"dial": {"to": {"phone": AGENT}, "timeout": "10s", "as": "agent"}}]


def _state(name: str, following: str) -> st.SearchStrategy[dict[str, Any]]:
    first = OPENING if name == "s0" else []
    return st.fixed_dictionaries(
        {"entry": st.lists(ACTIONS, max_size=4).map(lambda actions: [*first, *actions]),
         "after": st.just({"5s": following})},
        optional={"on": st.dictionaries(EVENTS, st.one_of(BRANCH, st.lists(BRANCH, min_size=1, max_size=2)),
                                        max_size=3),
                  "exit": st.lists(ACTIONS, max_size=2),
                  "always": st.lists(st.fixed_dictionaries({"target": TARGET, "when": EXPRESSION}),
                                     min_size=1, max_size=1)},
    )


FLOWS = st.fixed_dictionaries({
    "flow": st.just("fuzzed"),
    "vars": st.fixed_dictionaries({"n": st.integers(-3, 3), "s": st.text("ab1 ", max_size=4),
                                   "items": st.lists(st.integers(0, 3), max_size=3)}),
    "initial": st.just("s0"),
    "on": st.just({"call.finished": {"target": "done", "when": "event.call == 'caller'"}}),
    "states": st.fixed_dictionaries({"s0": _state("s0", "s1"), "s1": _state("s1", "s2"),
                                     "s2": _state("s2", "done"), "done": st.just({"type": "final"})}),
})
SCENARIO = {"caller": {"hangup_after": "40s", "press": [["3s", "1"]]},
            "parties": {AGENT: {"answer_after": "2s", "hangup_after": "20s"}}}


class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None:
            self.records.append(record)


SEEN = {"flows": 0, "played": 0}


# No shrinking: a failing run is replayed a few hundred times by it (minutes); the message holds the flow.
@settings(max_examples=60, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(FLOWS, st.sampled_from(["infobip", "sinch"]))
async def test_no_flow_crashes_validate_or_a_run(tmp_path: Path, flow: dict[str, Any], provider: str) -> None:
    path = tmp_path / "fuzzed.yaml"
    text = yaml.safe_dump({**flow, "scenarios": {"fuzz": SCENARIO}}, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    loaded = load_flow(path)  # no exception, whatever the flow holds
    SEEN["flows"] += 1
    if loaded.flow is None:
        return
    # What the platform cannot run (an answer outside Sinch's ICE reply) serve refuses too: not played.
    if load_flow(path, platform=platform(provider)).flow is None:
        return
    SEEN["played"] += 1
    caught = _Tracebacks()
    logging.getLogger().addHandler(caught)
    try:
        (scenario,) = load_scenarios(path).values()
        result = await run_scenario(provider, path, scenario, store="memory://", limits=Limits(120, 10))
    finally:
        logging.getLogger().removeHandler(caught)
    assert result.session, f"no session was started on {provider} for:\n{text}"
    assert not caught.records, [caught.format(r) for r in caught.records] + [provider, text]


def test_most_fuzzed_flows_validated_and_were_played() -> None:
    """The run above tested something: a generator whose flows never validate would pass it vacuously."""
    if SEEN["flows"] == 0:
        pytest.skip("the fuzzing test did not run in this session")
    assert SEEN["played"] >= SEEN["flows"] // 4, SEEN
