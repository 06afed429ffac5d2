"""Property tests: whatever the input, the loader answers with diagnostics, never an exception."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowengine.flow.loader import LoadResult, load_flow
from flowengine.flow.vocabulary import ACTIONS, EVENTS

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(result: LoadResult) -> None:
    assert isinstance(result, LoadResult)
    assert (result.flow is None) == bool(result.errors)
    for d in result.diagnostics:
        assert d.line >= 1 and d.col >= 1 and d.rule and d.message
        assert d.message == d.message.strip()


YAMLISH = st.lists(
    st.sampled_from([*"ab01 :-_.,[]{}&*!|>'\"#?%@`\t\n", "on", "{{", "}}", "<<", "---"]), max_size=60
).map("".join)


@FAST
@given(YAMLISH)
def test_arbitrary_yamlish_text(text: str) -> None:
    _check(load_flow(text, source="fuzz.yaml"))


@FAST
@given(st.text(max_size=80))
def test_arbitrary_unicode_text(text: str) -> None:
    _check(load_flow("flow: x\n" + text, source="fuzz.yaml"))


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["yes", "no", "on", "10s", "{{ vars.x }}", "{{ 1 +", "caller", "done"]),
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)


@FAST
@given(DATA)
def test_arbitrary_nested_data_dumped_as_yaml(data: Any) -> None:
    _check(load_flow(yaml.safe_dump(data), source="fuzz.yaml"))


# Flow-shaped documents reach the semantic rules, not just the schema check.
NAMES = st.sampled_from(["a", "b", "done", "caller", "callee", "room", "vars", "nowhere"])
PARAM_VALUES = st.one_of(NAMES, SCALARS, st.just({"phone": "1"}), st.just(["x"]))
ACTION = st.builds(
    lambda name, params: {name: params},
    st.sampled_from([*ACTIONS, "bogus"]),
    st.dictionaries(
        st.sampled_from(
            ["call", "conference", "as", "to", "text", "timeout", "url", "max_digits", "message", "attempts"]
        ),
        PARAM_VALUES,
        max_size=4,
    ),
)
BRANCH = st.one_of(
    NAMES,
    st.fixed_dictionaries(
        {},
        optional={
            "target": NAMES,
            "when": st.sampled_from(["event.call == 'callee'", "vars.n > 1", "event.reason ==", "x"]),
            "actions": st.lists(ACTION, max_size=2),
        },
    ),
)
TRANSITION = st.one_of(BRANCH, st.lists(BRANCH, max_size=3))
STATE = st.fixed_dictionaries(
    {},
    optional={
        "type": st.just("final"),
        "entry": st.lists(ACTION, max_size=3),
        "exit": st.lists(ACTION, max_size=2),
        "on": st.dictionaries(st.sampled_from([*EVENTS, "bogus.event"]), TRANSITION, max_size=3),
        "after": st.dictionaries(st.sampled_from(["1s", "10", "2m"]), TRANSITION, max_size=2),
    },
)
FLOW = st.fixed_dictionaries(
    {
        "flow": st.just("fuzz"),
        "initial": NAMES,
        "states": st.dictionaries(NAMES, STATE, min_size=1, max_size=5),
    },
    optional={
        "vars": st.one_of(st.dictionaries(st.sampled_from(["n", "x", "1st"]), SCALARS, max_size=2), DATA),
        "version": SCALARS,
        "description": DATA,
        "on": st.dictionaries(st.sampled_from(list(EVENTS)[:4]), TRANSITION, max_size=2),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FLOW)
def test_flow_shaped_documents(doc: dict[str, Any]) -> None:
    result = load_flow(yaml.safe_dump(doc, sort_keys=False), source="fuzz.yaml")
    _check(result)
