"""Coverage read from real engine traces; ``expect.states`` with re-entries and ``expect.visits``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowengine.flow.loader import load_flow_or_raise
from flowengine.flow.model import Flow
from flowengine.scenarios.coverage import fired_in, measure, transitions_of
from flowengine.scenarios.model import Expectation, Scenario, ScenarioError, parse_scenario
from flowengine.scenarios.runner import ScenarioResult, check_expectations, states_entered
from flowengine.scenarios.suite import unknown_states
from flowengine.testing import Advance, drive, event

CALLER = "caller-1"

MENU = """\
flow: menu
version: 1
initial: menu
vars: {tries: 0}
on:
  call.finished: {target: done, when: "event.call == 'caller'"}
states:
  menu:
    entry:
      - set: {tries: "{{ vars.tries + 1 }}"}
    on:
      dtmf.captured:
        - {target: sales, when: "event.digits == '1'"}
        - {when: "event.digits == '0'", actions: [{log: {message: operator}}]}
        - {target: menu, when: "vars.tries < 3"}
        - done
    after:
      20s: done
  sales:
    on:
      call.finished: done
  done:
    type: final
"""


@pytest.fixture
def flow() -> Flow:
    return load_flow_or_raise(MENU)


def press(digits: str) -> Any:
    return event("dtmf.captured", call_id=CALLER, digits=digits)


async def trace_of(flow: Flow, *steps: Any) -> dict[str, Any]:
    driver = await drive(flow, [event("call.received", call_id=CALLER), *steps])
    return driver.session.to_json()


def test_every_written_transition_is_an_item_with_its_line(flow: Flow) -> None:
    refs = {ref.key: ref for ref in transitions_of(flow)}
    assert list(refs) == [
        "on.call.finished[0]",
        "states.menu.on.dtmf.captured[0]",
        "states.menu.on.dtmf.captured[1]",
        "states.menu.on.dtmf.captured[2]",
        "states.menu.on.dtmf.captured[3]",
        "states.menu.after.20s[0]",
        "states.sales.on.call.finished[0]",
    ]
    assert refs["states.menu.on.dtmf.captured[2]"].label == (
        "menu: dtmf.captured [when vars.tries < 3] -> menu (line 15)"
    )
    assert refs["states.menu.on.dtmf.captured[1]"].label.startswith(
        "menu: dtmf.captured [when event.digits == '0'] -> (stays: actions only)"
    )
    assert refs["on.call.finished[0]"].label.startswith("(any state): call.finished")


async def test_the_choice_of_a_guarded_list_that_fired_is_the_one_covered(flow: Flow) -> None:
    # 5 (no guard holds: re-enter), 0 (internal), 5 again (re-enter), 5 (tries == 3: the unguarded last).
    session = await trace_of(flow, press("5"), press("0"), press("5"), press("5"))
    entered, fired = fired_in(flow, session)
    assert entered == ["menu", "menu", "menu", "done"]
    assert fired == [
        "states.menu.on.dtmf.captured[2]",
        "states.menu.on.dtmf.captured[1]",
        "states.menu.on.dtmf.captured[2]",
        "states.menu.on.dtmf.captured[3]",
    ]


async def test_timers_and_flow_level_handlers_count_and_nothing_else_does(flow: Flow) -> None:
    timed_out = await trace_of(flow, Advance(21))
    hung_up = await trace_of(
        flow, press("1"), event("call.finished", call_id=CALLER), event("call.finished", call_id=CALLER)
    )
    assert fired_in(flow, timed_out)[1] == ["states.menu.after.20s[0]"]
    # The second call.finished arrives after the end: it fires nothing (the trace notes why).
    assert fired_in(flow, hung_up)[1] == [
        "states.menu.on.dtmf.captured[0]", "states.sales.on.call.finished[0]",
    ]
    unmatched = await trace_of(flow, event("say.finished", call_id=CALLER))
    assert fired_in(flow, unmatched) == (["menu"], [])

    coverage = measure(flow, [timed_out, hung_up, unmatched])
    assert coverage.states_missed == []
    assert [t.key for t in coverage.transitions_missed] == [
        "on.call.finished[0]",
        "states.menu.on.dtmf.captured[1]",
        "states.menu.on.dtmf.captured[2]",
        "states.menu.on.dtmf.captured[3]",
    ]
    assert coverage.state_percent == 100.0
    assert coverage.transition_percent == pytest.approx(300 / 7)
    assert coverage.below(50) and not coverage.below(42)
    doc = coverage.to_json()
    assert doc["transitions"]["covered"] == 3 and doc["transitions"]["total"] == 7
    assert doc["transitions"]["missed"][0]["key"] == "on.call.finished[0]"


async def test_a_flow_level_handler_fired_from_any_state_covers_it(flow: Flow) -> None:
    session = await trace_of(flow, event("call.finished", call_id=CALLER))
    assert fired_in(flow, session) == (["menu", "done"], ["on.call.finished[0]"])


async def test_states_lists_every_entry_and_visits_counts_them(flow: Flow) -> None:
    session = await trace_of(flow, press("5"), press("0"), press("5"), press("5"))
    assert states_entered(session) == ["menu", "menu", "menu", "done"]

    def problems(**expect: Any) -> list[str]:
        scenario = parse_scenario("s", {"expect": expect})
        result = ScenarioResult(scenario, "infobip", session, [], [], 0.0, 1.0, 0.1)
        return check_expectations(result)

    assert problems(states=["menu", "menu", "menu", "done"], visits={"menu": 3, "sales": 0}) == []
    assert problems(states=["menu", "done"]) == [
        "went through states ['menu', 'menu', 'menu', 'done'], expected ['menu', 'done']"
    ]
    assert problems(visits={"menu": 1, "sales": 2, "done": 1}) == [
        'entered state "menu" 3 times, expected once',
        'entered state "sales" never, expected twice',
    ]


@pytest.mark.parametrize("visits", [{"menu": -1}, {"menu": "3"}, ["menu"], {"menu": True}])
def test_visits_must_be_counts(visits: Any) -> None:
    with pytest.raises(ScenarioError, match=r"expect\.visits must map state names to counts"):
        parse_scenario("s", {"expect": {"visits": visits}}, where="f.yaml: scenario s")


def test_expectations_naming_states_the_flow_lacks_are_reported(flow: Flow) -> None:
    scenario: Scenario = parse_scenario(
        "s", {"expect": {"state": "dne", "states": ["menu", "sale"], "visits": {"menu": 1, "sale": 0}}}
    )
    assert scenario.expect == Expectation("dne", None, None, ("menu", "sale"), {"menu": 1, "sale": 0})
    assert unknown_states(flow, scenario) == [
        'expect names state "dne", which the flow does not have',
        'expect names state "sale", which the flow does not have',
    ]


def test_the_published_schema_describes_visits_and_re_entries() -> None:
    import json

    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "flow.schema.json").read_text())
    expect = schema["properties"]["scenarios"]["additionalProperties"]["properties"]["expect"]["properties"]
    assert "entered again" in expect["states"]["description"]
    assert expect["visits"]["additionalProperties"] == {"type": "integer", "minimum": 0}
